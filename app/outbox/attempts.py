"""Recording a delivery attempt and deciding what happens next (per the contract's Events section)."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.models import Delivery, DeliveryAttempt, Target
from app.notify.results import DeliveryResult
from app.vocabulary import DeliveryOutcome, DeliveryState

log = logging.getLogger(__name__)
MAX_THROTTLE_WAIT = timedelta(hours=1)  # a Retry-After is honoured up to an hour
#: A receiver asking for less than this does not get a free attempt: "Retry-After: 0" on every
#: answer would otherwise have the bridge send once a second for ever.
THROTTLE_FLOOR = timedelta(seconds=5)
EXCERPT_CHARS, ERROR_CHARS, LAST_ERROR_CHARS = 512, 2000, 512
HOLD_WAIT = timedelta(seconds=60)  # bridge-wide credentials trouble: look again in a minute
JITTER = 0.1


def record_attempt(
    session: Session,
    delivery: Delivery,
    target: Target,
    result: DeliveryResult,
    now: datetime,
    schedule: tuple[float, ...],
    rng: random.Random,
) -> None:
    """Store ``result`` as an attempt of ``delivery`` and move the delivery (and target) on."""
    session.add(
        DeliveryAttempt(
            delivery_seq=delivery.seq,
            at=now,
            duration_ms=result.duration_ms,
            outcome=result.outcome.value,
            status_code=result.status_code,
            response_excerpt=storable(result.excerpt, EXCERPT_CHARS),
            error=storable(result.error, ERROR_CHARS),
        )
    )
    if delivery.first_attempted_at is None:
        delivery.first_attempted_at = now
    delivery.lease_owner = delivery.lease_expires_at = None
    delivery.updated_at = now
    delivery.last_error = storable(result.error, LAST_ERROR_CHARS)
    for column, value in result.target_updates.items():
        setattr(target, column, value)
    _decide(delivery, target, result, now, schedule, rng)
    if result.outcome is not DeliveryOutcome.SUCCEEDED:
        # Target ids and types only: URLs can be credentials (slack_webhook) and stay out of logs.
        log.info(
            "delivery %s to %s target %s: %s (%s), now %s",
            delivery.id, target.type, target.id, result.outcome.value, result.error, delivery.state,
        )  # fmt: skip


def _decide(
    delivery: Delivery,
    target: Target,
    result: DeliveryResult,
    now: datetime,
    schedule: tuple[float, ...],
    rng: random.Random,
) -> None:
    outcome = result.outcome
    if outcome is DeliveryOutcome.SUCCEEDED:
        delivery.attempt_count += 1
        delivery.state, delivery.next_attempt_at = DeliveryState.SUCCEEDED, None
    elif outcome is DeliveryOutcome.THROTTLED and not _spends_attempt(
        delivery, result, now, schedule
    ):
        delivery.next_attempt_at = now + _throttle_wait(result)
    elif outcome is DeliveryOutcome.HOLD:
        delivery.next_attempt_at = now + HOLD_WAIT
    elif outcome is DeliveryOutcome.DISABLE_TARGET:
        delivery.attempt_count += 1
        disable_target(target, result.error or "disabled by the receiver", now)
        delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
    elif outcome is DeliveryOutcome.REFUSED:
        delivery.attempt_count += 1
        delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
    else:
        delivery.attempt_count += 1
        if delivery.attempt_count > len(schedule):
            delivery.state, delivery.next_attempt_at = DeliveryState.DEAD, None
        else:
            delay = schedule[delivery.attempt_count - 1] * rng.uniform(1 - JITTER, 1 + JITTER)
            wait = timedelta(seconds=delay)
            if outcome is DeliveryOutcome.THROTTLED:
                wait = max(wait, _throttle_wait(result))
            delivery.next_attempt_at = now + wait


def _throttle_wait(result: DeliveryResult) -> timedelta:
    return min(MAX_THROTTLE_WAIT, timedelta(seconds=result.retry_after or 0))


def _spends_attempt(
    delivery: Delivery, result: DeliveryResult, now: datetime, schedule: tuple[float, ...]
) -> bool:
    """Whether a throttled answer counts as a failed attempt after all.

    A ``Retry-After`` wait normally costs no attempt (the contract), but a receiver cannot keep a
    delivery alive for ever: a wait below ``THROTTLE_FLOOR``, or one asked once the delivery is older
    than its whole retry schedule, counts like any failure, so the delivery ends ``dead`` in time.
    """
    if _throttle_wait(result) < THROTTLE_FLOOR:
        return True
    return now - delivery.created_at > timedelta(seconds=sum(schedule))


def storable(text: str | None, limit: int) -> str | None:
    """``text`` as a column can hold it: NUL removed (PostgreSQL refuses it), cut to ``limit``."""
    if text is None:
        return None
    return text.replace("\x00", "")[:limit] or None


def disable_target(target: Target, reason: str, now: datetime) -> None:
    """Stop sending to ``target``: later deliveries to it end ``failed`` without a request."""
    if not target.disabled:
        target.disabled = True
        target.disabled_reason = storable(reason, 255)
        target.disabled_at = now


def fail_for_disabled_target(delivery: Delivery, target: Target, now: datetime) -> None:
    """End a delivery whose target is disabled, sending nothing."""
    delivery.state = DeliveryState.FAILED
    delivery.next_attempt_at = None
    delivery.lease_owner = delivery.lease_expires_at = None
    delivery.last_error = f"target disabled: {target.disabled_reason or 'disabled'}"[:512]
    delivery.updated_at = now
