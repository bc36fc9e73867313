"""A watch's workflow: the upstream work the bridge starts for it (import, analyse, summarise) and
how far it got. One row per workflow watch; plain watches have none."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Base
from app.models.watches import ID_LENGTH


class Workflow(Base):
    """What a registration asked the bridge to start, and the step it is at.

    ``next_at`` is when the workflow job must act (null while the ordinary polls follow the analysis
    or once it is done); a worker owns the row while ``lease_expires_at`` is in the future.

    ``calling_since`` is the crash guard of the one call that must not be repeated blindly, the
    import: it is committed *before* the call, cleared with its answer. A worker that finds it set
    does not know whether the earlier call reached NCP, so it looks the object up among the
    project's assets before importing again.
    """

    __tablename__ = "workflows"
    __table_args__ = (Index("ix_workflows_next_at", "next_at"),)

    watch_id: Mapped[str] = mapped_column(
        ForeignKey("watches.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[str] = mapped_column(String(24))
    import_bucket: Mapped[str | None] = mapped_column(String(255))
    import_key: Mapped[str | None] = mapped_column(Text)
    #: The options of the analysis and summary requests, passed through as given; null: not asked.
    analyze_options: Mapped[dict[str, Any] | None]
    summarize_options: Mapped[dict[str, Any] | None]
    next_at: Mapped[datetime | None]
    #: Seconds until the next status request (import and summary status back off like polls).
    interval: Mapped[float] = mapped_column(default=0.0)
    #: Failed tries of the current step in a row (429, 5xx, network), for its back-off.
    failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(512))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    calling_since: Mapped[datetime | None]
    #: The import's answers: NCP's asset id, ``uploadStatus``, ``uploadResult``, ``metaData``.
    imported_asset_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    import_status: Mapped[str | None] = mapped_column(String(32))
    import_message: Mapped[str | None] = mapped_column(Text)
    import_metadata: Mapped[dict[str, Any] | None]
    #: The scene summary's latest status and message.
    summary_status: Mapped[str | None] = mapped_column(String(32))
    summary_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
