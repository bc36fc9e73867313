"""``bridge.test``: one event to every target of a watch, sent at once, outcomes recorded and returned."""

from __future__ import annotations

import dataclasses
import random
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Delivery, Watch
from app.notify.registry import NotifierContext, sender_for
from app.notify.results import DeliveryOutcome, DeliveryResult
from app.outbox.attempts import FAILED, SUCCEEDED
from app.outbox.emit import emit_event
from app.outbox.envelopes import Analysis
from app.outbox.sending import ClaimedDelivery, apply_results, load_claims

#: The contract's budget for the whole test, every target included.
TEST_BUDGET_SECONDS = 20.0


@dataclass(frozen=True)
class TestOutcome:
    """What one target answered to the test."""

    target_id: str
    target_type: str
    delivery_id: str
    result: DeliveryResult


def send_test(
    session: Session, watch: Watch, context: NotifierContext, now: datetime
) -> tuple[str, list[TestOutcome]]:
    """Emit a ``bridge.test`` event, send it to all targets (disabled ones too) concurrently.

    Each attempt is recorded; test deliveries end ``succeeded`` or ``failed`` (never retried). A
    success re-enables a disabled target: the receiver has been fixed. The caller commits.
    """
    analysis = Analysis(watch.status, watch.status, watch.index_id, watch.message)
    event = emit_event(session, watch, "bridge.test", f"test:{now.timestamp()}", analysis, now)
    session.flush()
    claims = load_claims(session, _delivery_seqs(session, event.id))
    bounded = dataclasses.replace(context, budget=TEST_BUDGET_SECONDS - 1)
    pool = ThreadPoolExecutor(max_workers=max(1, len(claims)), thread_name_prefix="test-send")
    futures = {claim: pool.submit(_send, bounded, claim) for claim in claims}
    done, _pending = wait(futures.values(), timeout=TEST_BUDGET_SECONDS)
    pool.shutdown(wait=False, cancel_futures=True)  # the answer does not wait past the budget
    results = []
    for claim, future in futures.items():
        if future in done:
            result = future.result()
        else:
            result = DeliveryResult(DeliveryOutcome.RETRY, error="no answer within the 20 s budget")
        results.append((claim, result))
    apply_results(session, None, results, now, (), random.Random())  # noqa: S311
    outcomes = []
    for claim, result in results:
        delivery = _delivery(session, claim.seq)
        delivery.state = SUCCEEDED if result.outcome is DeliveryOutcome.SUCCEEDED else FAILED
        delivery.next_attempt_at = None
        target = next(t for t in watch.targets if t.id == claim.target.id)
        if delivery.state == SUCCEEDED and target.disabled:
            target.disabled, target.disabled_reason, target.disabled_at = False, None, None
        outcomes.append(TestOutcome(target.id, target.type, delivery.id, result))
    return event.id, outcomes


def _send(context: NotifierContext, claim: ClaimedDelivery) -> DeliveryResult:
    sender = sender_for(claim.target.type)
    if sender is None:
        return DeliveryResult(DeliveryOutcome.RETRY, error=f"no notifier for {claim.target.type}")
    return sender(context, claim.event, claim.target)


def _delivery_seqs(session: Session, event_id: str) -> list[int]:
    return list(
        session.scalars(
            select(Delivery.seq).where(Delivery.event_id == event_id).order_by(Delivery.seq)
        )
    )


def _delivery(session: Session, seq: int) -> Delivery:
    delivery = session.get(Delivery, seq)
    assert delivery is not None
    return delivery
