"""Recording a delivery attempt and deciding what happens next (per the contract's Events section)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.models import Delivery, DeliveryAttempt, Target
from app.notify.results import DeliveryResult
from app.outbox import endpoint_health
from app.outbox.endpoint_health import DEFAULT_DISABLE_AFTER
from app.vocabulary import DeliveryOutcome, DeliveryState

log = logging.getLogger(__name__)
MAX_THROTTLE_WAIT = timedelta(hours=1)  # a Retry-After is honoured up to an hour
#: A receiver asking for less than this does not get a free attempt: "Retry-After: 0" on every
#: answer would otherwise have the bridge send once a second for ever.
THROTTLE_FLOOR = timedelta(seconds=5)
EXCERPT_CHARS, ERROR_CHARS, LAST_ERROR_CHARS, DETAIL_CHARS = 512, 2000, 512, 4000
#: Attempt outcomes that ended their delivery (a manual retry after one starts a new round).
ENDING_OUTCOMES = frozenset(
    {
        DeliveryOutcome.SUCCEEDED,
        DeliveryOutcome.GAVE_UP,
        DeliveryOutcome.DISABLE_TARGET,
        DeliveryOutcome.REFUSED,
    }
)
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
    endpoint_disable_after: float = DEFAULT_DISABLE_AFTER,
) -> None:
    """Store ``result`` as an attempt of ``delivery`` and move the delivery (and target) on.

    The attempt row's outcome says what came of it: ``retry`` only when another attempt follows,
    ``gave_up`` when the retry schedule ran out with it (the delivery is now ``dead``). A target that
    is an endpoint moves the endpoint's health on too (``endpoint_health``).
    """
    outcome = _decide(delivery, target, result, now, schedule, rng, _round_of(session, delivery))
    if target.endpoint is not None:
        endpoint_health.record_outcome(
            target.endpoint, outcome, result.error, now, endpoint_disable_after
        )
    session.add(
        DeliveryAttempt(
            delivery_seq=delivery.seq,
            at=now,
            duration_ms=result.duration_ms,
            outcome=outcome.value,
            status_code=result.status_code,
            response_excerpt=storable(result.excerpt, EXCERPT_CHARS),
            error=storable(result.error, ERROR_CHARS),
            error_detail=storable(result.error_detail, DETAIL_CHARS),
        )
    )
    if delivery.first_attempted_at is None and not _held(delivery, target, outcome):
        delivery.first_attempted_at = now
    delivery.lease_owner = delivery.lease_expires_at = None
    delivery.updated_at = now
    delivery.last_error = storable(result.error, LAST_ERROR_CHARS)
    delivery.last_error_detail = storable(result.error_detail, DETAIL_CHARS)
    for column, value in result.target_updates.items():
        setattr(target, column, value)
    if result.outcome is not DeliveryOutcome.SUCCEEDED:
        # Target ids and types only: URLs can be credentials (slack_webhook) and stay out of logs.
        log.info(
            "delivery %s to %s target %s: %s (%s), now %s",
            delivery.id, target.type, target.id, outcome.value, result.error, delivery.state,
        )  # fmt: skip


def _held(delivery: Delivery, target: Target, outcome: DeliveryOutcome) -> bool:
    """Whether this attempt left the delivery held by its disabled endpoint."""
    return outcome is DeliveryOutcome.DISABLE_TARGET and target.endpoint_id is not None


@dataclass(frozen=True)
class Round:
    """The current run of a delivery's retry schedule: every attempt since it was created, or since
    the attempt that last ended it (a manual retry starts a new round with the whole schedule)."""

    #: Attempts of this round that used up a step of the schedule.
    spent: int
    #: When this round began (for ``_spends_attempt``'s "older than its whole schedule").
    started_at: datetime | None


def _round_of(session: Session, delivery: Delivery) -> Round:
    """The delivery's current round, read before this attempt's row is added.

    ``attempt_count`` counts every attempt of the delivery's life, so it is the schedule position
    only until a manual retry; after one, the round is what follows the row that ended the delivery
    (``ENDING_OUTCOMES``), and within a round only ``retry`` rows used up a step.
    """
    attempt = DeliveryAttempt
    ending = sorted(outcome.value for outcome in ENDING_OUTCOMES)
    ended = session.scalar(
        select(func.max(attempt.pk)).where(
            attempt.delivery_seq == delivery.seq, attempt.outcome.in_(ending)
        )
    )
    if ended is None:  # never ended, so never retried by hand: the first round
        return Round(delivery.attempt_count, delivery.created_at)
    spent, started_at = session.execute(
        select(
            func.count(case((attempt.outcome == DeliveryOutcome.RETRY.value, 1))),
            func.min(attempt.at),
        ).where(attempt.delivery_seq == delivery.seq, attempt.pk > ended)
    ).one()
    return Round(spent or 0, started_at)


def _decide(
    delivery: Delivery,
    target: Target,
    result: DeliveryResult,
    now: datetime,
    schedule: tuple[float, ...],
    rng: random.Random,
    current: Round,
) -> DeliveryOutcome:
    """Move the delivery on after ``result``; returns the outcome to store for the attempt."""
    outcome = result.outcome
    if outcome is DeliveryOutcome.SUCCEEDED:
        delivery.attempt_count += 1
        delivery.state, delivery.next_attempt_at = DeliveryState.SUCCEEDED, None
    elif outcome is DeliveryOutcome.THROTTLED and not _spends_attempt(
        current, result, now, schedule
    ):
        delivery.next_attempt_at = now + _throttle_wait(result)
    elif outcome is DeliveryOutcome.HOLD:
        delivery.next_attempt_at = now + HOLD_WAIT
    elif outcome is DeliveryOutcome.DISABLE_TARGET and target.endpoint_id is not None:
        # The endpoint is disabled (record_attempt): this delivery is held with the others, due as
        # soon as the endpoint is enabled again, and in its lane's order (attempted "not yet").
        delivery.attempt_count += 1
        delivery.next_attempt_at, delivery.first_attempted_at = now, None
    elif outcome is DeliveryOutcome.DISABLE_TARGET:
        delivery.attempt_count += 1
        disable_target(target, result.error or "disabled by the receiver", now)
        delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
    elif outcome is DeliveryOutcome.REFUSED:
        delivery.attempt_count += 1
        delivery.state, delivery.next_attempt_at = DeliveryState.FAILED, None
    else:
        # A failure that uses up a step of the schedule (a throttle that spends one included).
        delivery.attempt_count += 1
        step = current.spent + 1
        if step > len(schedule):
            delivery.state, delivery.next_attempt_at = DeliveryState.DEAD, None
            return DeliveryOutcome.GAVE_UP
        delay = schedule[step - 1] * rng.uniform(1 - JITTER, 1 + JITTER)
        wait = timedelta(seconds=delay)
        if outcome is DeliveryOutcome.THROTTLED:
            wait = max(wait, _throttle_wait(result))
        delivery.next_attempt_at = now + wait
        return DeliveryOutcome.RETRY
    return outcome


def _throttle_wait(result: DeliveryResult) -> timedelta:
    return min(MAX_THROTTLE_WAIT, timedelta(seconds=result.retry_after or 0))


def _spends_attempt(
    current: Round, result: DeliveryResult, now: datetime, schedule: tuple[float, ...]
) -> bool:
    """Whether a throttled answer counts as a failed attempt after all (then stored as ``retry``).

    A ``Retry-After`` wait normally costs no attempt (the contract), but a receiver cannot keep a
    delivery alive for ever: a wait below ``THROTTLE_FLOOR``, or one asked once the round is older
    than its whole retry schedule, counts like any failure, so the delivery ends ``dead`` in time.
    """
    if _throttle_wait(result) < THROTTLE_FLOOR:
        return True
    started = current.started_at or now
    return now - started > timedelta(seconds=sum(schedule))


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


def hold_for_disabled_endpoint(delivery: Delivery, now: datetime) -> None:
    """Give back a delivery claimed just before its endpoint was disabled: it waits, unsent, with
    the endpoint's other held deliveries."""
    delivery.lease_owner = delivery.lease_expires_at = None
    delivery.updated_at = now


def fail_for_disabled_target(delivery: Delivery, target: Target, now: datetime) -> None:
    """End a delivery whose target is disabled, sending nothing."""
    delivery.state = DeliveryState.FAILED
    delivery.next_attempt_at = None
    delivery.lease_owner = delivery.lease_expires_at = None
    delivery.last_error = f"target disabled: {target.disabled_reason or 'disabled'}"[:512]
    delivery.last_error_detail = None
    delivery.updated_at = now
