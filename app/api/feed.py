"""``/api/v1/events``: the event feed, oldest first from a cursor, for consumers that tail it."""

from __future__ import annotations

import json

from flask import Response, request
from sqlalchemy import select

from app.api.blueprint import api, fail
from app.api.serializers import event_json
from app.db import db
from app.models import Event

DEFAULT_LIMIT, MAX_LIMIT = 100, 500


@api.get("/events")
def list_events() -> Response:
    """Events after ``after`` (a cursor), oldest first; ``next_cursor`` is the last item's cursor.

    ``bridge.test`` events are not in the feed.
    """
    args = request.args
    statement = select(Event).where(Event.type != "bridge.test").order_by(Event.seq)
    after = args.get("after")
    if after:
        if not after.isdigit():
            fail(400, "after must be a cursor this API returned")
        statement = statement.where(Event.seq > int(after))
    if args.get("watch_id"):
        statement = statement.where(Event.watch_id == args["watch_id"])
    limit_text = args.get("limit", str(DEFAULT_LIMIT))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        fail(400, f"limit must be an integer from 1 to {MAX_LIMIT}")
    events = db.session.scalars(statement.limit(int(limit_text))).all()
    items = [event_json(event) for event in events]
    next_cursor = items[-1]["cursor"] if items else after
    body = {"items": items, "next_cursor": next_cursor}
    return Response(json.dumps(body), mimetype="application/json")
