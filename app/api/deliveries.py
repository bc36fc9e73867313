"""Deliveries in the API: send a test to a watch's targets, list deliveries, retry a dead one."""

from __future__ import annotations

import json

from flask import Response, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.api.blueprint import api, fail
from app.api.params import bounded_int, choice, id_filters, sequence_cursor
from app.api.watches import watch_or_404
from app.db import db
from app.models import Delivery, Event
from app.outbox import retries
from app.outbox.bridge_test import send_test
from app.resources.deliveries import delivery_list, delivery_resource, watch_test
from app.services import services
from app.vocabulary import DeliveryState

DELIVERY_STATES = tuple(DeliveryState)
DEFAULT_LIMIT, MAX_LIMIT = 50, 200


@api.post("/watches/<watch_id>/test")
def test_watch(watch_id: str) -> Response:
    """Send a ``bridge.test`` event to every target of the watch now; answer each real outcome."""
    watch = watch_or_404(watch_id)
    event_id, outcomes = send_test(db.session(), watch, services().notifier, services().clock)
    body = watch_test(event_id, outcomes).as_json()
    return Response(json.dumps(body), mimetype="application/json")


@api.get("/deliveries")
def list_deliveries() -> Response:
    """Deliveries with their attempts, newest first, filtered by state, watch and target."""
    args = request.args
    statement = (
        select(Delivery, Event.type)
        .join(Event, Event.id == Delivery.event_id)
        .options(selectinload(Delivery.attempts))
        .order_by(Delivery.seq.desc())
    )
    state = choice(args.get("state"), "state", DELIVERY_STATES)
    if state is not None:
        statement = statement.where(Delivery.state == state)
    for name, value in id_filters(args, ("watch_id", "target_id")):
        statement = statement.where(getattr(Delivery, name) == value)
    cursor = sequence_cursor(args.get("cursor"), "cursor")
    if cursor is not None:
        statement = statement.where(Delivery.seq < cursor)
    limit = bounded_int(args.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    rows = db.session.execute(statement.limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = str(page[-1][0].seq) if len(rows) > limit else None
    body = delivery_list(page, next_cursor).as_json()
    return Response(json.dumps(body), mimetype="application/json")


@api.post("/deliveries/<delivery_id>/retry")
def retry_delivery(delivery_id: str) -> tuple[Response, int]:
    """Send a ``dead`` or ``failed`` delivery again (202), with the same ``webhook-id``.

    A fresh retry schedule starts; a target disabled by an earlier answer is re-enabled, since
    an operator asked to send to it. ``409`` for a delivery still pending or already succeeded.
    """
    try:
        delivery = retries.retry_delivery(db.session(), delivery_id, services().clock())
    except retries.NoSuchDelivery:
        fail(404, f"no delivery {delivery_id}")
    except retries.NotRetryable as exc:
        fail(409, str(exc))
    db.session.commit()
    event_type = db.session.scalar(select(Event.type).where(Event.id == delivery.event_id))
    body = delivery_resource(delivery, event_type).as_json()
    return Response(json.dumps(body), mimetype="application/json"), 202
