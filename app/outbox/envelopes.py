"""The event envelope every target receives (contract: Events): its pydantic models, and the one
function that builds its JSON text from rows.

The text is built once, stored on the event, and sent byte for byte on every attempt, so a retry
carries the same body and the same signature input. The models here are also the envelope's schema
in the OpenAPI document and the base of the API's feed items (``app.resources`` builds on this
module; the outbox sits below resources and never imports from them). So this module also holds
what every contract model shares: ``ContractModel``, ``sometimes``, the id patterns, and how a time
is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import SkipJsonSchema

from app.clock import rfc3339
from app.models import Watch
from app.vocabulary import ApiGeneration, EventType, WatchReason, WatchStage, WatchState

WatchId = Annotated[str, StringConstraints(pattern=r"^wch_[0-9A-Z]{26}$")]
EventId = Annotated[str, StringConstraints(pattern=r"^evt_[0-9A-Z]{26}$")]
Count = Annotated[int, Field(ge=0)]
#: A time in an envelope: a datetime, written as ``app.clock.rfc3339`` does (UTC, milliseconds,
#: ``Z``). The schema promises only RFC 3339, as the contract's example (no milliseconds) shows.
EnvelopeTime = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class ContractModel(BaseModel):
    """A JSON shape of the contract: unknown keys are refused, and ``as_json`` writes it.

    Every key written always is a required field (nullable where it may be null); a key written
    only sometimes is a ``sometimes`` field, left out of the JSON unless it was given. So a model
    must be built with every required field passed explicitly (which validation enforces).
    """

    # No ``from_attributes`` by default: a row has columns (a target's secret) that must never be
    # read into an answer by accident; builders pass ``from_attributes=True`` where a row's columns
    # are exactly the shape's fields.
    model_config = ConfigDict(extra="forbid")

    def as_json(self) -> Any:
        """JSON-ready data in field order: enums as their values, times as ``rfc3339`` writes
        them, ``sometimes`` keys present only when they were set (to a value or to ``None``)."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def sometimes(description: str, **constraints: Any) -> Any:
    """A key that is either absent or a non-null value (the schema shows no ``null`` and no default)."""
    return Field(
        default=None, description=description, json_schema_extra=_no_default, **constraints
    )


class EnvelopeWatch(ContractModel):
    """The watch an event is about; ``reason`` only in ``watch.error`` and ``watch.expired``;
    ``stage`` only for a watch with a workflow (import, analyze or summarize)."""

    id: WatchId
    labels: dict[str, str]
    reason: WatchReason | SkipJsonSchema[None] = sometimes("why the watch ended")
    stage: WatchStage | SkipJsonSchema[None] = sometimes(
        "the workflow's stage when the event was written (done once the watch ended)"
    )


class EnvelopeImport(ContractModel):
    """A workflow's import: the object and how it went (``uploadStatus``, ``uploadResult``)."""

    bucket_name: str
    key: str
    status: str | None
    message: str | None


class EnvelopeSummary(ContractModel):
    """A workflow's scene summary: its status (``SUMMARIZE_COMPLETED``...) and message."""

    status: str | None
    message: str | None


class EnvelopeAsset(ContractModel):
    """The upstream asset, in the endpoint generation the watch uses."""

    workspace: str
    project_id: str
    asset_id: str | None = Field(description="null only before an import gave the asset its id")
    api: ApiGeneration


class EnvelopeAnalysis(ContractModel):
    """The analysis status (the last known one for ``watch.*`` and ``bridge.test``)."""

    status: str | None
    previous_status: str | None
    index_id: int | None
    message: str | None


class EnvelopeDetection(ContractModel):
    """When the watch was registered and the change detected, and after how many polls."""

    registered_at: EnvelopeTime
    detected_at: EnvelopeTime
    poll_count: Count


class EventData(ContractModel):
    """The ``data`` of an event; ``import`` and ``summary`` for a workflow that asked for them."""

    watch: EnvelopeWatch
    asset: EnvelopeAsset
    analysis: EnvelopeAnalysis
    detection: EnvelopeDetection
    import_: EnvelopeImport | SkipJsonSchema[None] = sometimes(
        "the object a workflow imports and how its import went", alias="import"
    )
    summary: EnvelopeSummary | SkipJsonSchema[None] = sometimes(
        "the scene summary a workflow asked for"
    )


class EventEnvelope(ContractModel):
    """The body of every webhook (Standard Webhooks 1.0); the same bytes on every attempt."""

    id: EventId
    type: EventType
    timestamp: EnvelopeTime = Field(description="the event's creation time")
    data: EventData


@dataclass(frozen=True)
class Analysis:
    """The analysis part of an event: the status it reports and the one before it."""

    status: str | None
    previous_status: str | None
    index_id: int | None
    message: str | None


#: The events whose envelope carries the watch's ``reason`` (null if it has none).
_WITH_REASON = frozenset({EventType.WATCH_ERROR, EventType.WATCH_EXPIRED})


def event_body(
    event_id: str,
    event_type: str,
    watch: Watch,
    analysis: Analysis,
    created_at: datetime,
    detected_at: datetime | None = None,
) -> str:
    """The JSON text of one event (``timestamp`` is the event's creation time).

    Compact separators and raw non-ASCII text: these bytes are stored, signed and sent as they are,
    so the format must never change for events already written.
    """
    # ``reason`` and ``stage`` are given only where the envelope has them, so ``as_json`` leaves
    # them out elsewhere.
    about: dict[str, Any] = {"id": watch.id, "labels": watch.labels}
    if event_type in _WITH_REASON:
        about["reason"] = watch.reason
    data: dict[str, Any] = {
        "asset": EnvelopeAsset.model_validate(watch, from_attributes=True),
        "analysis": EnvelopeAnalysis.model_validate(analysis, from_attributes=True),
        "detection": EnvelopeDetection(
            registered_at=watch.created_at,
            detected_at=detected_at or created_at,
            poll_count=watch.poll_count,
        ),
    }
    if watch.stage is not None:  # only workflow watches have a stage: a plain one loads nothing
        about["stage"] = WatchStage.DONE if watch.state != WatchState.WATCHING else watch.stage
        data.update(_workflow_facts(watch))
    envelope = EventEnvelope(
        id=event_id,
        type=event_type,
        timestamp=created_at,
        data=EventData.model_validate({"watch": EnvelopeWatch(**about), **data}),
    )
    return json.dumps(envelope.as_json(), ensure_ascii=False, separators=(",", ":"))


def _workflow_facts(watch: Watch) -> dict[str, Any]:
    """``import`` and ``summary`` of a workflow watch's events, as far as they are known."""
    workflow = watch.workflow
    facts: dict[str, Any] = {}
    if workflow is None:
        return facts
    if workflow.import_key is not None:
        facts["import"] = EnvelopeImport(
            bucket_name=workflow.import_bucket or "", key=workflow.import_key,
            status=workflow.import_status, message=workflow.import_message,
        )  # fmt: skip
    if workflow.summarize_options is not None:
        facts["summary"] = EnvelopeSummary(
            status=workflow.summary_status, message=workflow.summary_message
        )
    return facts
