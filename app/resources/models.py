"""Every response model of the API, for the OpenAPI document (``app.api.openapi``).

The same models build the answers (``watch_resource``, ``delivery_list``, ``feed_item``...), so the
document describes what is sent, not a copy of it.
"""

from __future__ import annotations

from pydantic import BaseModel

from app.outbox.envelopes import EventEnvelope
from app.resources.deliveries import Delivery, DeliveryList, WatchTest
from app.resources.endpoints import Endpoint, EndpointList, Queued
from app.resources.events import EventList, FeedItem
from app.resources.health import Health, Readiness
from app.resources.preview import Preview
from app.resources.problems import Problem, ValidationProblem
from app.resources.watches import Watch, WatchList

#: Every response model, in the order the document lists them.
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Watch,
    WatchList,
    Endpoint,
    EndpointList,
    Queued,
    Delivery,
    DeliveryList,
    WatchTest,
    EventEnvelope,
    FeedItem,
    EventList,
    Preview,
    Problem,
    ValidationProblem,
    Health,
    Readiness,
)
