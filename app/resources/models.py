"""Pydantic models of what the API answers, exactly as ``serializers.py`` and the views build it.

They generate the response schemas of the OpenAPI document; no view serializes through them. Every
model forbids unknown keys, every key the serializer always writes is required (nullable where it may
be null), and keys written only sometimes are optional but never null. A schema check of a real
response therefore catches drift in either direction.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from app.vocabulary import ApiGeneration, DeliveryOutcome
from app.watches.validation import SubscribableEvent

#: How ``serializers.rfc3339`` writes every time: UTC, milliseconds, ``Z``.
Timestamp = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"),
    Field(json_schema_extra={"format": "date-time"}, examples=["2026-11-25T12:00:00.000Z"]),
]
#: An RFC 3339 time in a webhook envelope.
EnvelopeTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
WatchId = Annotated[str, StringConstraints(pattern=r"^wch_[0-9A-Z]{26}$")]
TargetId = Annotated[str, StringConstraints(pattern=r"^tgt_[0-9A-Z]{26}$")]
DeliveryId = Annotated[str, StringConstraints(pattern=r"^dlv_[0-9A-Z]{26}$")]
EventId = Annotated[str, StringConstraints(pattern=r"^evt_[0-9A-Z]{26}$")]
SeqCursor = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]
Count = Annotated[int, Field(ge=0)]

# The vocabularies of app.watches.states and the outbox (tests compare them with the code).
WatchState = Literal["watching", "completed", "failed", "cancelled", "expired", "stopped", "error"]
WatchReason = Literal[
    "expired", "asset_not_found", "stopped", "upstream_rejected", "generation_gone"
]
DeliveryState = Literal["pending", "succeeded", "failed", "dead"]
EventType = Literal[
    "analysis.completed",
    "analysis.failed",
    "analysis.cancelled",
    "analysis.status_changed",
    "watch.expired",
    "watch.error",
    "bridge.test",
]
AuthHealth = Literal["ok", "failing", "unknown"]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def sometimes(description: str, **constraints: Any) -> Any:
    """A key that is either absent or a non-null value (the schema shows no ``null`` and no default)."""
    return Field(
        default=None, description=description, json_schema_extra=_no_default, **constraints
    )


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _TargetBase(_Shape):
    id: TargetId
    disabled: bool
    disabled_reason: str | None


class WebhookTarget(_TargetBase):
    """A webhook target. ``secret`` appears only in the 201 answer that generated it (and its replay)."""

    type: Literal["webhook"]
    url: str
    secret: str | SkipJsonSchema[None] = sometimes(
        "the generated Standard Webhooks secret, shown once", pattern=r"^whsec_[A-Za-z0-9+/]+=*$"
    )


class SlackTarget(_TargetBase):
    """A Slack channel target."""

    type: Literal["slack"]
    channel: str


class SlackWebhookTarget(_TargetBase):
    """A Slack incoming-webhook target; the URL's last path segment (a credential) is ``****``."""

    type: Literal["slack_webhook"]
    url: Annotated[str, StringConstraints(pattern=r"^[^?#]*/\*\*\*\*$")]


Target = Annotated[WebhookTarget | SlackTarget | SlackWebhookTarget, Field(discriminator="type")]


class HistoryItem(_Shape):
    """One observed status (or generation) change, counted from the watch's registration."""

    status: str | None
    api: ApiGeneration
    index_id: int | None
    message: str | None
    observed_at: Timestamp


class Attempt(_Shape):
    """One try at sending a delivery, as the receiver answered it."""

    at: Timestamp
    status_code: int | None
    duration_ms: Count
    outcome: DeliveryOutcome
    error: str | None


class Delivery(_Shape):
    """One event to one target, with every attempt so far."""

    id: DeliveryId
    event_id: EventId
    event_type: EventType
    watch_id: WatchId
    target_id: TargetId
    state: DeliveryState
    attempt_count: Count
    next_attempt_at: Timestamp | None
    last_error: str | None
    created_at: Timestamp
    attempts: list[Attempt]


class Watch(_Shape):
    """A watch: its state, the last status seen, its targets, status history and deliveries."""

    id: WatchId
    state: WatchState
    workspace: str
    project_id: str
    asset_id: str
    api: ApiGeneration
    status: str | None
    index_id: int | None
    message: str | None = Field(description="the upstream's own text")
    reason: WatchReason | None = Field(description="why the watch ended or changed generation")
    labels: dict[str, str]
    events: list[SubscribableEvent]
    targets: list[Target]
    created_at: Timestamp
    updated_at: Timestamp
    deadline_at: Timestamp
    finished_at: Timestamp | None
    last_polled_at: Timestamp | None
    next_poll_at: Timestamp | None = Field(description="null once the watch has ended")
    poll_count: Count
    history: list[HistoryItem]
    deliveries: list[Delivery]


class WatchList(_Shape):
    """A page of watches, newest first; pass ``next_cursor`` back as ``cursor`` (null: last page)."""

    items: list[Watch]
    next_cursor: WatchId | None


class EnvelopeWatch(_Shape):
    """The watch an event is about; ``reason`` only in ``watch.error`` and ``watch.expired``."""

    id: WatchId
    labels: dict[str, str]
    reason: WatchReason | SkipJsonSchema[None] = sometimes("why the watch ended")


class EnvelopeAsset(_Shape):
    """The upstream asset, in the endpoint generation the watch uses."""

    workspace: str
    project_id: str
    asset_id: str
    api: ApiGeneration


class EnvelopeAnalysis(_Shape):
    """The analysis status (the last known one for ``watch.*`` and ``bridge.test``)."""

    status: str | None
    previous_status: str | None
    index_id: int | None
    message: str | None


class EnvelopeDetection(_Shape):
    """When the watch was registered and the change detected, and after how many polls."""

    registered_at: EnvelopeTime
    detected_at: EnvelopeTime
    poll_count: Count


class EventData(_Shape):
    """The ``data`` of an event."""

    watch: EnvelopeWatch
    asset: EnvelopeAsset
    analysis: EnvelopeAnalysis
    detection: EnvelopeDetection


class EventEnvelope(_Shape):
    """The body of every webhook (Standard Webhooks 1.0); the same bytes on every attempt."""

    id: EventId
    type: EventType
    timestamp: EnvelopeTime = Field(description="the event's creation time")
    data: EventData


class FeedItem(EventEnvelope):
    """An event of the feed: the envelope exactly as delivered, plus its cursor and watch id."""

    type: SubscribableEvent
    cursor: SeqCursor
    watch_id: WatchId


class EventList(_Shape):
    """Events oldest first; ``next_cursor`` is the last item's cursor (``after`` on an empty page)."""

    items: list[FeedItem]
    next_cursor: SeqCursor | None


class DeliveryList(_Shape):
    """A page of deliveries, newest first; pass ``next_cursor`` back as ``cursor`` (null: last page)."""

    items: list[Delivery]
    next_cursor: SeqCursor | None


class TargetAnswer(_Shape):
    """What one target answered to a ``bridge.test`` event."""

    target_id: TargetId
    type: Literal["webhook", "slack", "slack_webhook"]
    delivery_id: DeliveryId
    ok: bool = Field(description="the target accepted it (outcome ``succeeded``)")
    outcome: DeliveryOutcome
    status_code: int | None
    duration_ms: Count
    error: str | None


class WatchTest(_Shape):
    """The ``bridge.test`` event sent to every target of a watch, and each target's answer."""

    event_id: EventId
    results: list[TargetAnswer]


class FieldError(_Shape):
    """One invalid field: a JSON pointer into the request body and what is wrong there."""

    pointer: Annotated[str, StringConstraints(pattern=r"^#(/.*)?$")]
    detail: str


class Problem(_Shape):
    """RFC 9457 problem details; ``errors`` is present only when fields were invalid."""

    type: str = Field(examples=["about:blank"])
    title: str
    status: Annotated[int, Field(ge=400, le=599)]
    detail: str
    errors: list[FieldError] | SkipJsonSchema[None] = sometimes("every invalid field")


class ValidationProblem(Problem):
    """A 422 problem: ``errors`` lists every invalid field of the body."""

    errors: list[FieldError]


class Health(_Shape):
    """``/healthz``: the process serves."""

    status: Literal["ok"]


class Readiness(_Shape):
    """``/readyz``: what the bridge needs, and the credential and rate-limit health it reports."""

    status: Literal["ready", "no_worker", "unavailable"]
    database: Literal["ok", "unreachable"]
    worker_last_seen: Timestamp | None
    upstream_auth: AuthHealth
    slack_auth: AuthHealth
    rate_limited_until: Timestamp | None


#: Every response model, in the order the document lists them.
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Watch,
    WatchList,
    Delivery,
    DeliveryList,
    WatchTest,
    EventEnvelope,
    FeedItem,
    EventList,
    Problem,
    ValidationProblem,
    Health,
    Readiness,
)
