"""The body of a ``bridge.alert`` event: the Standard Webhooks envelope with ``data.alert``."""

from __future__ import annotations

import json
from datetime import datetime

from pydantic import Field

from app.outbox.envelopes import ContractModel, EnvelopeTime, EventId
from app.vocabulary import AlertKind, AlertState, EventType


class AlertFields(ContractModel):
    """What is wrong (``kind``), whether it started or ended, since when, and in a sentence."""

    kind: AlertKind
    state: AlertState
    since: EnvelopeTime = Field(description="when the condition began")
    detail: str


class AlertData(ContractModel):
    """The ``data`` of a ``bridge.alert`` event."""

    alert: AlertFields


class AlertEnvelope(ContractModel):
    """A ``bridge.alert`` event as sent to ``BRIDGE_ALERT_TARGETS``."""

    id: EventId
    type: EventType = Field(description="always ``bridge.alert``")
    timestamp: EnvelopeTime = Field(description="the event's creation time")
    data: AlertData


def alert_body(
    event_id: str, kind: str, state: str, since: datetime, detail: str, created_at: datetime
) -> str:
    """The JSON text of one ``bridge.alert`` event (stored, signed and sent as it is)."""
    envelope = AlertEnvelope(
        id=event_id,
        type=EventType.BRIDGE_ALERT,
        timestamp=created_at,
        data=AlertData(
            alert=AlertFields(
                kind=AlertKind(kind), state=AlertState(state), since=since, detail=detail
            )
        ),
    )
    return json.dumps(envelope.as_json(), ensure_ascii=False, separators=(",", ":"))
