"""Sending claimed deliveries and recording what came of them: shared by the worker's delivery tick
and the API's test endpoint."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Delivery, Event, Target
from app.notify.registry import NotifierContext, sender_for
from app.notify.results import DeliveryResult, EventSnapshot, TargetSnapshot
from app.outbox.attempts import fail_for_disabled_target, record_attempt
from app.worker import bridge_state


@dataclass(frozen=True)
class ClaimedDelivery:
    """A claimed delivery with what sending it needs."""

    seq: int
    event: EventSnapshot
    target: TargetSnapshot


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
