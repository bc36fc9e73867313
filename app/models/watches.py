"""Watches, the upstream assets they share, their targets and their status history."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import utcnow
from app.models.base import Base, BigKey, PublicId, new_id
from app.models.endpoints import Endpoint
from app.vocabulary import WatchState

if TYPE_CHECKING:
    from app.models.workflows import Workflow

#: The predicate of the partial indexes on active watches, as SQL (``WATCHING_ONLY`` below is the
#: same, for queries).
_WATCHING_SQL = f"state = '{WatchState.WATCHING}'"

ID_LENGTH = 128


class Asset(Base):
    """One upstream asset in one endpoint generation: the unit that is polled (once, for all watches).

    ``next_poll_at`` is null while no active watch needs the asset. A worker owns a poll while
    ``lease_expires_at`` is in the future; the lease, not any process, is the lock.
    """

    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("workspace", "project_id", "asset_id", "api"),
        Index("ix_assets_due", "next_poll_at"),
    )

    pk: Mapped[int] = mapped_column(BigKey, primary_key=True, autoincrement=True)
    workspace: Mapped[str] = mapped_column(String(ID_LENGTH))
    project_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    asset_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    api: Mapped[str] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    index_id: Mapped[int | None] = mapped_column(BigInteger)
    next_poll_at: Mapped[datetime | None]
    interval: Mapped[float] = mapped_column(default=0.0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    last_polled_at: Mapped[datetime | None]
    poll_count: Mapped[int] = mapped_column(default=0)
    #: Failed polls since the last successful one (any kind of failure).
    consecutive_errors: Mapped[int] = mapped_column(default=0)
    #: The latest poll's failure, null once a poll succeeds. The ``last_error_*`` columns and
    #: ``failing_since`` describe it and mean nothing while ``last_error`` is null (a success clears
    #: only ``last_error``, so the hot path of quiet polls writes one column, not five). The failed
    #: poll's time is ``last_polled_at``.
    last_error: Mapped[str | None] = mapped_column(String(512))
    last_error_kind: Mapped[str | None] = mapped_column(String(16))
    last_error_status: Mapped[int | None]
    #: NCP's ``x-ncp-request-id`` of the failed answer, for a support ticket.
    last_error_request_id: Mapped[str | None] = mapped_column(String(128))
    #: The first failed poll of the current run of failures.
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Watch(Base):
    """A user's request to be told when one asset's analysis ends."""

    __tablename__ = "watches"
    __table_args__ = (
        Index("ix_watches_state_id", "state", "id"),
        Index("ix_watches_coordinates", "workspace", "project_id", "asset_id"),
        # Only active watches, for the poller's per-batch lookup and the deadline sweep: small, and
        # usable by a prepared statement's generic plan because the queries spell the state as a
        # literal (``WATCHING_ONLY``) rather than a bound parameter.
        Index(
            "ix_watches_watching_asset_pk",
            "asset_pk",
            postgresql_where=text(_WATCHING_SQL),
            sqlite_where=text(_WATCHING_SQL),
        ),
        Index(
            "ix_watches_watching_deadline_at",
            "deadline_at",
            postgresql_where=text(_WATCHING_SQL),
            sqlite_where=text(_WATCHING_SQL),
        ),
    )

    id: Mapped[str] = mapped_column(PublicId, primary_key=True, default=lambda: new_id("wch"))
    state: Mapped[str] = mapped_column(String(16), default="watching")
    workspace: Mapped[str] = mapped_column(String(ID_LENGTH))
    project_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    #: Null only while an ``import`` has not yet given the asset its id.
    asset_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    api: Mapped[str] = mapped_column(String(16))
    asset_pk: Mapped[int | None] = mapped_column(BigKey, ForeignKey("assets.pk"), index=True)
    status: Mapped[str | None] = mapped_column(String(64))
    index_id: Mapped[int | None] = mapped_column(BigInteger)
    message: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(32))
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    events: Mapped[list[str]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deadline_at: Mapped[datetime]
    #: Indexed for retention, which deletes the watches that ended longest ago first.
    finished_at: Mapped[datetime | None] = mapped_column(index=True)
    last_polled_at: Mapped[datetime | None]
    poll_count: Mapped[int] = mapped_column(default=0)
    #: For an analysis that ended: when it was seen minus the poll before (or the registration).
    detection_lag_seconds: Mapped[float | None]
    #: A workflow watch's stage while watching (``WatchStage``); null: analyzing. Ended: ``done``.
    stage: Mapped[str | None] = mapped_column(String(16))
    #: Polls of its asset count for this watch from this time on (null: from ``created_at``). A
    #: watch that requested an analysis follows its asset only once the request was answered.
    polls_from: Mapped[datetime | None]
    #: ``analysis.stalled``: after how long an unchanged status is reported, and when it falls due
    #: (null: not due, or reported already for the current status).
    stalled_after_seconds: Mapped[float | None]
    stalled_due_at: Mapped[datetime | None] = mapped_column(index=True)

    asset: Mapped[Asset | None] = relationship()
    targets: Mapped[list[Target]] = relationship(
        back_populates="watch", order_by="Target.position", cascade="all, delete-orphan"
    )
    history: Mapped[list[StatusChange]] = relationship(
        order_by="StatusChange.pk", cascade="all, delete-orphan"
    )
    #: What a registration asked the bridge to start (None for a watch that only watches).
    workflow: Mapped[Workflow | None] = relationship(
        "Workflow", uselist=False, cascade="all, delete-orphan", passive_deletes=True
    )


class Target(Base):
    """Where one watch's notifications go: a webhook, a Slack channel, a Slack incoming webhook or
    an ``http`` request built from templates."""

    __tablename__ = "targets"

    id: Mapped[str] = mapped_column(PublicId, primary_key=True, default=lambda: new_id("tgt"))
    watch_id: Mapped[str] = mapped_column(ForeignKey("watches.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    #: Set for a target that is a shared endpoint: its url, channel and secret are the endpoint's
    #: (NULL here), and so are disabling and health; ``type`` is copied from it (it never changes).
    endpoint_id: Mapped[str | None] = mapped_column(ForeignKey("endpoints.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(255))
    # Standard Webhooks secret (whsec_...): needed in clear to sign, never returned after creation.
    secret: Mapped[str | None] = mapped_column(String(128))
    disabled: Mapped[bool] = mapped_column(default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None]
    # The Slack message that follows this watch in this channel, kept so edits survive restarts.
    slack_channel_id: Mapped[str | None] = mapped_column(String(64))
    slack_ts: Mapped[str | None] = mapped_column(String(64))
    #: An ``http`` target's request: method, header value templates and body template.
    method: Mapped[str | None] = mapped_column(String(8))
    headers: Mapped[dict[str, Any] | None]
    body: Mapped[str | None] = mapped_column(Text)
    #: A ``slack``/``slack_webhook`` message template and the language of default messages.
    template: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    watch: Mapped[Watch] = relationship(back_populates="targets")
    endpoint: Mapped[Endpoint | None] = relationship(lazy="joined")


class StatusChange(Base):
    """One observed status (or generation) change of one watch, counted from its registration."""

    __tablename__ = "status_history"

    pk: Mapped[int] = mapped_column(BigKey, primary_key=True, autoincrement=True)
    watch_id: Mapped[str] = mapped_column(ForeignKey("watches.id"), index=True)
    status: Mapped[str | None] = mapped_column(String(64))
    api: Mapped[str] = mapped_column(String(16))
    index_id: Mapped[int | None] = mapped_column(BigInteger)
    message: Mapped[str | None] = mapped_column(Text)
    observed_at: Mapped[datetime] = mapped_column(default=utcnow)


#: ``watches.state = 'watching'`` with the state as a literal: the predicate of the partial indexes
#: above, so the planner can use them (a bound parameter could be any state).
WATCHING_ONLY = Watch.__table__.c.state == literal_column(f"'{WatchState.WATCHING}'")

#: The alerts' own watch (``app.alerts.watch``): ``bridge.alert`` events and their deliveries hang
#: from it. A fixed id, so concurrent first alerts create it once.
ALERTS_WATCH_ID = "wch_00000000000000000000000000"
#: Its state: none of the users' states (never polled, expired or pruned).
SYSTEM_STATE = "system"
#: ``select(Watch).where(USER_WATCHES)``: every watch but the alerts' own.
USER_WATCHES = Watch.__table__.c.state != literal_column(f"'{SYSTEM_STATE}'")
