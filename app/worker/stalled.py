"""``analysis.stalled``: a watch whose upstream status has not changed for its
``stalled_after_seconds`` is told so once, until the status changes again.

The poll's apply sets ``stalled_due_at`` at every observed change (and the first observation); this
sweep sends the event for those due and clears it, so each unchanged status is reported once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.models import WATCHING_ONLY, Watch
from app.outbox.emit import emit_event
from app.outbox.envelopes import Analysis
from app.vocabulary import EventType

BATCH = 200


def report_stalled_watches(session: Session, now: datetime) -> int:
    """Send ``analysis.stalled`` for up to a batch of due watches in one transaction; how many."""
    watches = list(
        session.scalars(
            select(Watch)
            .where(WATCHING_ONLY, Watch.stalled_due_at <= now)
            .order_by(Watch.stalled_due_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True, of=Watch)
            .options(selectinload(Watch.targets))
        )
    )
    for watch in watches:
        watch.stalled_due_at = None
        if EventType.ANALYSIS_STALLED in watch.events:
            analysis = Analysis(watch.status, watch.status, watch.index_id, watch.message)
            # One per unchanged status: the poll count names the stretch it belongs to.
            key = f"stalled:p{watch.poll_count}:{watch.status}"
            emit_event(session, watch, EventType.ANALYSIS_STALLED, key, analysis, now)
    session.commit()
    return len(watches)
