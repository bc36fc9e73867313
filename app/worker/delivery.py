"""The delivery tick: claim due deliveries with a lease, send them concurrently, record each attempt.

Per-target order: a delivery is claimable only when every earlier pending delivery to its target has
been attempted at least once (``first_attempted_at``); dead and failed ones never block.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from app.db import db
from app.models import Delivery, Event, Target
from app.notify.registry import NOTIFIERS, NotifierContext, sender_for
from app.notify.results import DeliveryResult, EventSnapshot, TargetSnapshot
from app.outbox.attempts import PENDING, fail_for_disabled_target, record_attempt
from app.worker import bridge_state
from app.worker.runtime import WorkerRuntime

BATCH_SIZE = 32
SEND_SHARE_OF_LEASE = 0.5


@dataclass(frozen=True)
class ClaimedDelivery:
    """A claimed delivery with what sending it needs."""

    seq: int
    event: EventSnapshot
    target: TargetSnapshot


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


def load_claims(session: Session, seqs: list[int]) -> list[ClaimedDelivery]:
    """Snapshots of these deliveries' events and targets, in delivery order."""
    if not seqs:
        return []
    rows = session.execute(
        select(Delivery.seq, Event, Target)
        .join(Event, Event.id == Delivery.event_id)
        .join(Target, Target.id == Delivery.target_id)
        .where(Delivery.seq.in_(seqs))
        .order_by(Delivery.seq)
    )
    return [
        ClaimedDelivery(seq, event_snapshot(event), target_snapshot(target))
        for seq, event, target in rows
    ]


def event_snapshot(event: Event) -> EventSnapshot:
    return EventSnapshot(event.id, event.type, event.body, event.created_at)


def target_snapshot(target: Target) -> TargetSnapshot:
    return TargetSnapshot(
        target.id, target.type, target.url, target.channel, target.secret, target.disabled,
        target.slack_channel_id, target.slack_ts,
    )  # fmt: skip


def send_claim(context: NotifierContext, claim: ClaimedDelivery) -> DeliveryResult | None:
    """Send one claimed delivery; None when its target is disabled (nothing is sent)."""
    if claim.target.disabled:
        return None
    sender = sender_for(claim.target.type)
    assert sender is not None  # only registered types are claimed
    return sender(context, claim.event, claim.target)


def deliver_once(runtime: WorkerRuntime) -> DeliveryReport:
    """One delivery tick: one batch, sent concurrently, applied in one transaction."""
    report = DeliveryReport()
    with runtime.delivery_lock, runtime.app.app_context():
        session = db.session
        token = runtime.next_claim_token()
        claims = claim_due_deliveries(
            session, token, runtime.clock(), runtime.settings.bridge_lease_seconds, BATCH_SIZE
        )
        session.commit()
        report.claimed = len(claims)
        if not claims:
            return report
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
        report.sent = sum(1 for _, result in results if result is not None)
        report.failed_disabled = len(results) - report.sent
    return report


def apply_results(
    session: Session,
    token: str | None,
    results: list[tuple[ClaimedDelivery, DeliveryResult | None]],
    now: datetime,
    schedule: tuple[float, ...],
    rng: random.Random,
    count: Callable[[str, str], None] | None = None,
) -> None:
    """Record every result whose lease ``token`` still holds (None: no lease to check).

    ``count(outcome, target_type)`` is told about each attempt (the worker's counters).
    """
    for claim, result in results:
        delivery = session.get(Delivery, claim.seq, with_for_update=True, populate_existing=True)
        if delivery is None or (token is not None and delivery.lease_owner != token):
            continue
        target = session.get(Target, claim.target.id)
        assert target is not None
        if result is None:
            fail_for_disabled_target(delivery, target, now)
            continue
        record_attempt(session, delivery, target, result, now, schedule, rng)
        if result.slack_auth is not None:
            bridge_state.record_slack_auth(session, result.slack_auth, result.error, now)
        if count is not None:
            count(result.outcome.value, claim.target.type)
