"""The transactional outbox: events, one delivery per (event, target), and each delivery attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import utcnow
from app.models.base import Base, BigKey, PublicId, new_id


class Event(Base):
    """Something a watch's targets are told about. ``body`` is the exact JSON sent on every attempt.

    ``seq`` orders the feed; ``dedupe_key`` makes "one event per (watch, observed change)" a
    database constraint rather than a hope.
    """

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("watch_id", "dedupe_key"),)

    seq: Mapped[int] = mapped_column(BigKey, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(PublicId, unique=True, default=lambda: new_id("evt"))
    watch_id: Mapped[str] = mapped_column(ForeignKey("watches.id"))
    type: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def _target_lane(context: Any) -> str:
    """The default lane of a new delivery: its own target's."""
    return str(context.get_current_parameters()["target_id"])


_PENDING = text("state = 'pending'")
_UNATTEMPTED = text("state = 'pending' AND first_attempted_at IS NULL")


class Delivery(Base):
    """One event to one target, sent until it succeeds, runs out of attempts or its target is disabled.

    ``seq`` gives the order within a ``lane``: a later delivery waits until earlier ones of its lane
    were attempted once. The lane is the endpoint for a target that is one (every watch's deliveries
    to it in one order), else the target itself.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "target_id"),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
        Index("ix_deliveries_target_seq", "target_id", "seq"),
        Index("ix_deliveries_lane_seq", "lane", "seq"),
        # The claim's two questions, each answered without reading the backlog: which pending
        # deliveries come first (walked in order, the LIMIT stops the walk), and whether an earlier
        # one of the same lane is still unattempted (one probe).
        Index(
            "ix_deliveries_pending_order",
            "next_attempt_at",
            "seq",
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        ),
        Index(
            "ix_deliveries_lane_unattempted",
            "lane",
            "seq",
            postgresql_where=_UNATTEMPTED,
            sqlite_where=_UNATTEMPTED,
        ),
    )

    seq: Mapped[int] = mapped_column(BigKey, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(PublicId, unique=True, default=lambda: new_id("dlv"))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"))
    target_id: Mapped[str] = mapped_column(ForeignKey("targets.id"))
    watch_id: Mapped[str] = mapped_column(ForeignKey("watches.id"), index=True)
    #: The ordering lane: the endpoint id for an endpoint's target, else the target id (the default;
    #: ``outbox.emit.new_delivery`` sets the endpoint's).
    lane: Mapped[str] = mapped_column(PublicId, default=_target_lane)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempt_count: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    #: Set by the first attempt; later deliveries to the same target wait until this is set.
    first_attempted_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    #: The latest attempt's error as a short human sentence; ``last_error_detail`` is its full text.
    last_error: Mapped[str | None] = mapped_column(String(512))
    last_error_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    event: Mapped[Event] = relationship()
    attempts: Mapped[list[DeliveryAttempt]] = relationship(
        order_by="DeliveryAttempt.pk", cascade="all, delete-orphan"
    )


class DeliveryAttempt(Base):
    """One try at sending a delivery, as the receiver answered it."""

    __tablename__ = "delivery_attempts"

    pk: Mapped[int] = mapped_column(BigKey, primary_key=True, autoincrement=True)
    delivery_seq: Mapped[int] = mapped_column(BigKey, ForeignKey("deliveries.seq"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int] = mapped_column(default=0)
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None]
    response_excerpt: Mapped[str | None] = mapped_column(String(512))
    #: A short human sentence (``connection refused (203.0.113.7:443)``); ``error_detail`` is the full
    #: text it was made from.
    error: Mapped[str | None] = mapped_column(Text)
    error_detail: Mapped[str | None] = mapped_column(Text)
