"""``bridge.test``: one event to every target of a watch, sent at once, outcomes recorded and returned.

Sending happens with no transaction open: the event and its deliveries are committed first (leased
to the test, so no worker sends them meanwhile), the sends run concurrently, each bounded by the
notifiers' total deadline, and their outcomes are recorded in a second short transaction. Every send
thread has ended when ``send_test`` returns.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import Delivery, Target, Watch
from app.notify.context import NotifierContext
from app.notify.registry import notifier_for
from app.notify.results import DeliveryResult
from app.outbox.emit import emit_event
from app.outbox.envelopes import Analysis
from app.outbox.sending import ClaimedDelivery, apply_results, load_claims
from app.vocabulary import DeliveryOutcome, DeliveryState

#: The contract's budget for the whole test, every target included.
TEST_BUDGET_SECONDS = 20.0
#: How long the test's deliveries stay reserved to it. Should the process die mid-test, a worker
#: sends them after this (at least once, never lost).
TEST_LEASE = timedelta(seconds=TEST_BUDGET_SECONDS * 3)


@dataclass(frozen=True)
class TestOutcome:
    """What one target answered to the test."""

    target_id: str
    target_type: str
    delivery_id: str
    result: DeliveryResult


def send_test(
    session: Session, watch: Watch, context: NotifierContext, clock: Callable[[], datetime]
) -> tuple[str, list[TestOutcome]]:
    """Emit a ``bridge.test`` event and send it to all targets (disabled ones too) concurrently.

    Commits twice (see the module doc). Each attempt is recorded; test deliveries end ``succeeded``
    or ``failed`` (never retried). A success re-enables a disabled target: the receiver was fixed.
    """
    now = clock()
    analysis = Analysis(watch.status, watch.status, watch.index_id, watch.message)
    event = emit_event(session, watch, "bridge.test", f"test:{now.timestamp()}", analysis, now)
    session.flush()
    event_id, token = event.id, f"test:{event.id}"
    # first_attempted_at: a test delivery never holds back the target's real ones behind it.
    session.execute(
        update(Delivery)
        .where(Delivery.event_id == event_id)
        .values(lease_owner=token, lease_expires_at=now + TEST_LEASE, first_attempted_at=now)
        .execution_options(synchronize_session=False)
    )
    claims = load_claims(session, _delivery_seqs(session, event_id), now)
    session.commit()
    results = _send_all(context, claims)
    apply_results(session, token, results, clock(), (), random.Random())  # noqa: S311
    outcomes = [_settle(session, claim, result) for claim, result in results]
    session.commit()
    return event_id, outcomes


def _send_all(
    context: NotifierContext, claims: list[ClaimedDelivery]
) -> list[tuple[ClaimedDelivery, DeliveryResult]]:
    """Send every claim at once; returns when all have ended (each within the budget)."""
    if not claims:
        return []
    bounded = dataclasses.replace(
        context, budget=min(TEST_BUDGET_SECONDS - 1, context.budget or 1e9)
    )
    with ThreadPoolExecutor(max_workers=len(claims), thread_name_prefix="test-send") as pool:
        futures = [(claim, pool.submit(_send, bounded, claim)) for claim in claims]
        return [(claim, future.result()) for claim, future in futures]


def _settle(session: Session, claim: ClaimedDelivery, result: DeliveryResult) -> TestOutcome:
    """End a test delivery by its one attempt; a success re-enables its target."""
    delivery = session.get(Delivery, claim.seq)
    target = session.get(Target, claim.target.id)
    assert delivery is not None
    assert target is not None
    succeeded = result.outcome is DeliveryOutcome.SUCCEEDED
    delivery.state = DeliveryState.SUCCEEDED if succeeded else DeliveryState.FAILED
    delivery.next_attempt_at = None
    delivery.lease_owner = delivery.lease_expires_at = None
    if delivery.state == DeliveryState.SUCCEEDED and target.disabled:
        target.disabled, target.disabled_reason, target.disabled_at = False, None, None
    return TestOutcome(target.id, target.type, delivery.id, result)


def _send(context: NotifierContext, claim: ClaimedDelivery) -> DeliveryResult:
    sender = notifier_for(claim.target.type)
    if sender is None:
        return DeliveryResult(DeliveryOutcome.RETRY, error=f"no notifier for {claim.target.type}")
    try:
        return sender(context, claim.event, claim.target)
    except Exception as exc:  # one target's surprise must not lose the others' outcomes
        return DeliveryResult(DeliveryOutcome.RETRY, error=f"internal error: {type(exc).__name__}")


def _delivery_seqs(session: Session, event_id: str) -> list[int]:
    return list(
        session.scalars(
            select(Delivery.seq).where(Delivery.event_id == event_id).order_by(Delivery.seq)
        )
    )
