"""Deadlines: watches still watching past ``deadline_at`` end as ``expired`` with ``watch.expired``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.models import WATCHING_ONLY, Watch
from app.outbox.emit import emit_event
from app.outbox.envelopes import Analysis
from app.vocabulary import WatchReason, WatchState
from app.watches.assets import unschedule_if_unwatched

BATCH = 200


def expire_due_watches(session: Session, now: datetime) -> int:
    """Expire up to a batch of overdue watches in one transaction; returns how many."""
    watches = list(
        session.scalars(
            select(Watch)
            .where(WATCHING_ONLY, Watch.deadline_at <= now)
            .order_by(Watch.deadline_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True, of=Watch)
            .options(selectinload(Watch.targets), selectinload(Watch.asset))
        )
    )
    for watch in watches:
        watch.state = WatchState.EXPIRED
        watch.reason = WatchReason.EXPIRED
        watch.finished_at = watch.updated_at = now
        if "watch.expired" in watch.events:
            analysis = Analysis(watch.status, watch.status, watch.index_id, watch.message)
            emit_event(session, watch, "watch.expired", "expired", analysis, now)
    session.flush()
    for asset in {w.asset for w in watches if w.asset is not None}:
        unschedule_if_unwatched(session, asset)
    session.commit()
    return len(watches)
