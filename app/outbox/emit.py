"""Writing events and their deliveries inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Delivery, Event, Target, Watch, new_id
from app.outbox.envelopes import Analysis, event_body
from app.vocabulary import DeliveryState


def emit_event(
    session: Session,
    watch: Watch,
    event_type: str,
    dedupe_key: str,
    analysis: Analysis,
    now: datetime,
    detected_at: datetime | None = None,
) -> Event:
    """Add one event of ``watch`` and a due delivery to each of its targets (the caller commits).

    ``dedupe_key`` is unique per watch: writing the same change twice fails the transaction instead
    of notifying twice.
    """
    serialise_event_commits(session)
    event_id = new_id("evt")
    event = Event(
        id=event_id,
        watch_id=watch.id,
        type=event_type,
        dedupe_key=dedupe_key,
        body=event_body(event_id, event_type, watch, analysis, now, detected_at),
        created_at=now,
    )
    session.add(event)
    for target in watch.targets:
        session.add(new_delivery(event_id, target, watch.id, now))
    return event


def new_delivery(event_id: str, target: Target, watch_id: str, now: datetime) -> Delivery:
    """A due delivery of one event to one target, in the target's lane (its endpoint's, if any)."""
    return Delivery(
        event_id=event_id,
        target_id=target.id,
        watch_id=watch_id,
        lane=target.endpoint_id or target.id,
        state=DeliveryState.PENDING,
        attempt_count=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


#: Advisory lock key (PostgreSQL) held by a transaction from its first event until it commits.
EVENTS_LOCK_KEY = 0x6D69_6272  # "mibr"


def serialise_event_commits(session: Session) -> None:
    """Make event ``seq`` order the commit order, so a feed consumer tailing by cursor never skips.

    Without it, a transaction holding seq 1 could commit after another committed seq 2 that a
    consumer already read past. On PostgreSQL each event-writing transaction takes one advisory
    transaction lock before its first event; SQLite serialises writers already (BEGIN IMMEDIATE).
    """
    session = getattr(session, "registry", lambda: session)()  # a scoped_session's own Session
    transaction = session.get_transaction()
    if session.get_bind().dialect.name != "postgresql" or transaction is None:
        return
    if session.info.get("events_lock_held_by") is transaction:
        return
    session.execute(select(func.pg_advisory_xact_lock(EVENTS_LOCK_KEY)))
    session.info["events_lock_held_by"] = transaction
