"""Deliveries as the API shows them: a delivery with its attempts, a page of them, and what each
target answered to a ``bridge.test``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import Field

from app.models import Delivery as DeliveryRow
from app.models import DeliveryAttempt as AttemptRow
from app.outbox.attempts import ENDING_OUTCOMES
from app.outbox.bridge_test import TestOutcome
from app.outbox.envelopes import ContractModel, Count, EventId, WatchId
from app.resources.fields import DeliveryId, SeqCursor, TargetId, Timestamp
from app.vocabulary import DeliveryOutcome, DeliveryState, EventType, TargetType


class Attempt(ContractModel):
    """One try at sending a delivery, as the receiver answered it."""

    at: Timestamp
    status_code: int | None
    duration_ms: Count
    outcome: DeliveryOutcome = Field(
        description="what came of it: ``retry`` (another attempt follows), ``gave_up`` (the retry "
        "schedule ran out with it: the delivery is ``dead``), ``throttled`` (a ``Retry-After`` "
        "waited out, no attempt used up), ``disable_target``, ``refused``, ``hold``, ``succeeded``"
    )
    final: bool = Field(
        description="this attempt ended the delivery (it succeeded, failed it or was its last)"
    )
    error: str | None = Field(
        description="a short human sentence, e.g. ``connection refused (203.0.113.7:443)``"
    )
    error_detail: str | None = Field(description="the full text ``error`` was made from")


class Delivery(ContractModel):
    """One event to one target, with every attempt so far."""

    id: DeliveryId
    event_id: EventId
    event_type: EventType
    watch_id: WatchId
    target_id: TargetId
    state: DeliveryState
    attempt_count: Count = Field(
        description="attempts over the delivery's whole life (a manual retry does not reset it; "
        "a throttled wait or a hold is not one)"
    )
    next_attempt_at: Timestamp | None
    last_error: str | None = Field(description="the latest attempt's ``error`` (short)")
    last_error_detail: str | None = Field(description="the latest attempt's ``error_detail``")
    created_at: Timestamp
    attempts: list[Attempt]


class DeliveryList(ContractModel):
    """A page of deliveries, newest first; pass ``next_cursor`` back as ``cursor`` (null: last page)."""

    items: list[Delivery]
    next_cursor: SeqCursor | None


class TargetAnswer(ContractModel):
    """What one target answered to a ``bridge.test`` event."""

    target_id: TargetId
    type: TargetType
    delivery_id: DeliveryId
    ok: bool = Field(description="the target accepted it (outcome ``succeeded``)")
    outcome: DeliveryOutcome
    status_code: int | None
    duration_ms: Count
    error: str | None
    error_detail: str | None


class WatchTest(ContractModel):
    """The ``bridge.test`` event sent to every target of a watch, and each target's answer."""

    event_id: EventId
    results: list[TargetAnswer]


def delivery_resource(delivery: DeliveryRow, event_type: str | None) -> Delivery:
    """A delivery row (its ``attempts`` loaded) and its event's type, as the API shows them."""
    return Delivery(
        id=delivery.id,
        event_id=delivery.event_id,
        event_type=event_type,
        watch_id=delivery.watch_id,
        target_id=delivery.target_id,
        state=delivery.state,
        attempt_count=delivery.attempt_count,
        next_attempt_at=delivery.next_attempt_at,
        last_error=delivery.last_error,
        last_error_detail=delivery.last_error_detail,
        created_at=delivery.created_at,
        attempts=[attempt_resource(attempt) for attempt in delivery.attempts],
    )


def attempt_resource(attempt: AttemptRow) -> Attempt:
    """An attempt row as the API shows it."""
    return Attempt(
        at=attempt.at,
        status_code=attempt.status_code,
        duration_ms=attempt.duration_ms,
        outcome=attempt.outcome,
        final=attempt.outcome in ENDING_OUTCOMES,
        error=attempt.error,
        error_detail=attempt.error_detail,
    )


def delivery_list(rows: Iterable[tuple[DeliveryRow, str]], next_cursor: str | None) -> DeliveryList:
    """A page of (delivery, event type) rows."""
    return DeliveryList(
        items=[delivery_resource(delivery, event_type) for delivery, event_type in rows],
        next_cursor=next_cursor,
    )


def watch_test(event_id: str, outcomes: Sequence[TestOutcome]) -> WatchTest:
    """The answer to ``POST /api/v1/watches/{id}/test``: each target's real outcome."""
    return WatchTest(
        event_id=event_id,
        results=[
            TargetAnswer(
                target_id=outcome.target_id,
                type=outcome.target_type,
                delivery_id=outcome.delivery_id,
                ok=outcome.result.outcome == DeliveryOutcome.SUCCEEDED,
                outcome=outcome.result.outcome,
                status_code=outcome.result.status_code,
                duration_ms=outcome.result.duration_ms,
                error=outcome.result.error,
                error_detail=outcome.result.error_detail,
            )
            for outcome in outcomes
        ],
    )
