"""The event feed as the API shows it: each event's envelope exactly as delivered, plus its cursor
and watch id."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

from pydantic import Field, PlainSerializer, SkipValidation

from app.alerts.envelope import AlertData
from app.models import Event
from app.outbox.envelopes import (
    ContractModel,
    EnvelopeTime,
    EventData,
    EventId,
    WatchId,
)
from app.resources.fields import SeqCursor
from app.vocabulary import EventType
from app.watches.validation import SubscribableEvent

T = TypeVar("T")


def _as_stored(value: Any) -> Any:
    return value


#: A field described by ``T`` in the document but served exactly as it was stored: neither
#: validated nor rewritten. (``SkipValidation`` must come last: pydantic 2.14 fails to build the
#: JSON schema of a model type with the two the other way round.)
AsStored = Annotated[T, PlainSerializer(_as_stored, return_type=Any), SkipValidation]


class FeedItem(ContractModel):
    """An event of the feed: the envelope exactly as delivered, plus its cursor and watch id."""

    # The envelope's parts are the stored text's, as they are: what receivers got is what the feed
    # shows, whichever version of the bridge wrote it.

    id: AsStored[EventId]
    type: AsStored[SubscribableEvent | Literal[EventType.BRIDGE_ALERT]]
    timestamp: AsStored[EnvelopeTime] = Field(description="the event's creation time")
    data: AsStored[EventData | AlertData] = Field(
        description='a watch\'s event; for ``bridge.alert``, ``{"alert": ...}`` instead'
    )
    cursor: SeqCursor
    watch_id: WatchId


class EventList(ContractModel):
    """Events oldest first; ``next_cursor`` is the last item's cursor (``after`` on an empty page)."""

    items: list[FeedItem]
    next_cursor: SeqCursor | None


def feed_item(event: Event) -> FeedItem:
    """An event row as a feed item: its stored envelope (``id``, ``type``, ``timestamp``,
    ``data``), then its cursor and watch id."""
    # Constructed, not validated: a stored envelope is served as it is even when it does not fit
    # today's model (written by an older version, or by hand); the keys it lacks stay unset, so
    # ``as_json`` leaves them out rather than failing.
    stored = json.loads(event.body)
    return FeedItem.model_construct(**stored, cursor=str(event.seq), watch_id=event.watch_id)
