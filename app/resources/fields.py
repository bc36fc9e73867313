"""Field types the API's resources share: how a time is written, and the id patterns.

The watch and event ids, ``Count`` and the time of an envelope live with the envelope
(``app.outbox.envelopes``), the lowest layer that describes JSON; the rest are here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import PlainSerializer, StringConstraints, WithJsonSchema

from app.clock import rfc3339

#: A time the API shows: a datetime in, written as ``app.clock.rfc3339`` does (UTC, milliseconds,
#: ``Z``); the schema states that exact form.
Timestamp = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str),
    WithJsonSchema(
        {
            "examples": ["2026-11-25T12:00:00.000Z"],
            "format": "date-time",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
            "type": "string",
        }
    ),
]
TargetId = Annotated[str, StringConstraints(pattern=r"^tgt_[0-9A-Z]{26}$")]
DeliveryId = Annotated[str, StringConstraints(pattern=r"^dlv_[0-9A-Z]{26}$")]
#: A feed or delivery-list cursor: a row's sequence number, as text.
SeqCursor = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,18}$")]
