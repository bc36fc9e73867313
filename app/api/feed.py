"""``/api/v1/events``: the event feed, oldest first from a cursor, for consumers that tail it."""

from __future__ import annotations

import json

from flask import Response, request
from sqlalchemy import select

from app.api.blueprint import api
from app.api.params import bounded_int, id_filter, sequence_cursor
from app.db import db
from app.models import Event
from app.resources.events import EventList, feed_item

DEFAULT_LIMIT, MAX_LIMIT = 100, 500


@api.get("/events")
def list_events() -> Response:
    """Events after ``after`` (a cursor), oldest first; ``next_cursor`` is the last item's cursor.

    ``bridge.test`` events are not in the feed.
    """
    args = request.args
    statement = select(Event).where(Event.type != "bridge.test").order_by(Event.seq)
    after = sequence_cursor(args.get("after"), "after")
    if after is not None:
        statement = statement.where(Event.seq > after)
    watch_id = id_filter(args.get("watch_id"), "watch_id")
    if watch_id is not None:
        statement = statement.where(Event.watch_id == watch_id)
    limit = bounded_int(args.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    events = db.session.scalars(statement.limit(limit)).all()
    items = [feed_item(event) for event in events]
    next_cursor = items[-1].cursor if items else (str(after) if after is not None else None)
    body = EventList(items=items, next_cursor=next_cursor).as_json()
    return Response(json.dumps(body), mimetype="application/json")
