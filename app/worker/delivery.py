"""The delivery tick: claim due deliveries with a lease, send them concurrently, record each attempt.

Per-target order: a delivery is claimable only when every earlier pending delivery to its target has
been attempted at least once (``first_attempted_at``); dead and failed ones never block.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from app.db import db
from app.models import Delivery, Target
from app.notify.registry import NOTIFIERS
from app.outbox.attempts import PENDING
from app.outbox.sending import ClaimedDelivery, apply_results, load_claims, send_claim
from app.worker.runtime import WorkerRuntime

BATCH_SIZE = 32
SEND_SHARE_OF_LEASE = 0.5
#: A tick keeps claiming batches while full ones come back, for at most this long.
TICK_BUDGET_SECONDS = 5.0


@dataclass
class DeliveryReport:
    """What one delivery tick did."""

    claimed: int = 0
    sent: int = 0
    failed_disabled: int = 0


def claim_due_deliveries(
    session: Session, token: str, now: datetime, lease_seconds: float, limit: int
) -> list[ClaimedDelivery]:
    """Lease due deliveries whose turn has come (see module doc). The caller commits."""
    earlier = aliased(Delivery)
    blocked = exists().where(
        and_(
            earlier.target_id == Delivery.target_id,
            earlier.seq < Delivery.seq,
            earlier.state == PENDING,
            earlier.first_attempted_at.is_(None),
        )
    )
    lease_free = or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now)
    due = (
        select(Delivery.seq)
        .join(Target, Target.id == Delivery.target_id)
        .where(
            Delivery.state == PENDING,
            Delivery.next_attempt_at <= now,
            lease_free,
            Target.type.in_(list(NOTIFIERS)),
            ~blocked,
        )
        .order_by(Delivery.next_attempt_at, Delivery.seq)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Delivery)
    )
    claimed = session.scalars(
        update(Delivery)
        .where(Delivery.seq.in_(due.scalar_subquery()), lease_free)
        .values(lease_owner=token, lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(Delivery.seq)
        .execution_options(synchronize_session=False)
    ).all()
    return load_claims(session, list(claimed))


def deliver_once(runtime: WorkerRuntime) -> DeliveryReport:
    """One delivery tick: batches sent concurrently, each applied in one transaction.

    A full batch is followed by another (a burst of events is not drained at one batch per tick),
    for at most ``TICK_BUDGET_SECONDS``.
    """
    report = DeliveryReport()
    with runtime.delivery_lock, runtime.app.app_context():
        started = time.monotonic()
        while not runtime.stop.is_set():
            claimed = _deliver_batch(runtime, report)
            if claimed < BATCH_SIZE or time.monotonic() - started > TICK_BUDGET_SECONDS:
                break
        db.session.remove()
    return report


def _deliver_batch(runtime: WorkerRuntime, report: DeliveryReport) -> int:
    session = db.session
    token = runtime.next_claim_token()
    claims = claim_due_deliveries(
        session, token, runtime.clock(), runtime.settings.bridge_lease_seconds, BATCH_SIZE
    )
    session.commit()
    report.claimed += len(claims)
    if not claims:
        return 0
    # A send must end well inside the lease, or another worker could send it meanwhile.
    budget = runtime.settings.bridge_lease_seconds * SEND_SHARE_OF_LEASE
    context = dataclasses.replace(runtime.notifier_context, budget=budget)
    futures = [
        (claim, runtime.delivery_pool.submit(send_claim, context, claim)) for claim in claims
    ]
    results = [(claim, future.result()) for claim, future in futures]
    apply_results(
        session, token, results, runtime.clock(), runtime.settings.bridge_retry_schedule,
        runtime.rng, runtime.counters.delivery,
    )  # fmt: skip
    session.commit()
    sent = sum(1 for _, result in results if result is not None)
    report.sent += sent
    report.failed_disabled += len(results) - sent
    return len(claims)
