"""``/api/v1/endpoints``: named notification targets shared by watches, with their health."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request, url_for
from sqlalchemy import select

from app.api.blueprint import api, fail, json_body
from app.db import db
from app.endpoints import actions
from app.endpoints.health import endpoint_counts
from app.endpoints.validation import (
    EndpointChange,
    EndpointCreate,
    Replay,
    RotateSecret,
    validated,
)
from app.models import Endpoint
from app.outbox.envelopes import ContractModel
from app.resources.endpoints import EndpointList, Queued, endpoint_resource
from app.services import services
from app.watches.validation import InvalidWatch


@api.post("/endpoints")
def create_endpoint() -> Response:
    """Create a named endpoint (201); a webhook endpoint without a secret gets one, shown once."""
    spec = _valid(EndpointCreate, json_body()[0], "the endpoint is invalid")
    session = db.session()
    try:
        created = actions.create_endpoint(session, spec, services().clock())
    except actions.EndpointConflict as exc:
        fail(409, str(exc))
    body = _resource(created.endpoint, created.generated_secret)
    session.commit()
    response = _json(body, 201)
    response.headers["Location"] = url_for("api.get_endpoint", ref=created.endpoint.id)
    return response


@api.get("/endpoints")
def list_endpoints() -> Response:
    """Every endpoint, by name, with its health."""
    session = db.session()
    rows = list(session.scalars(select(Endpoint).order_by(Endpoint.name)))
    counts = endpoint_counts(session, rows)
    items = [endpoint_resource(row, counts[row.id]) for row in rows]
    return _json(EndpointList(items=items))


@api.get("/endpoints/<ref>")
def get_endpoint(ref: str) -> Response:
    """One endpoint, by id or name, with its health."""
    return _json(_resource(_find(ref)))


@api.patch("/endpoints/<ref>")
def change_endpoint(ref: str) -> Response:
    """Change an endpoint's url, channel, description, rate limit or disabled flag (false
    re-enables it and sends its held deliveries, in order)."""
    change = _valid(EndpointChange, json_body()[0], "the change is invalid")
    endpoint = _find(ref)
    try:
        actions.change_endpoint(db.session(), endpoint, change, services().clock())
    except actions.EndpointFieldError as exc:
        fail(422, "the change is invalid", [{"pointer": exc.pointer, "detail": exc.detail}])
    db.session.commit()
    return _json(_resource(endpoint))


@api.delete("/endpoints/<ref>")
def delete_endpoint(ref: str) -> Response:
    """Delete an endpoint (204); 409 while a watching watch uses it."""
    endpoint = _find(ref)
    try:
        actions.delete_endpoint(
            db.session(), endpoint, services().clock(), services().configured_targets()
        )
    except actions.EndpointConflict as exc:
        db.session.rollback()
        fail(409, str(exc))
    db.session.commit()
    return Response(status=204)


@api.post("/endpoints/<ref>/rotate-secret")
def rotate_secret(ref: str) -> Response:
    """A new signing secret, shown once; the old one still signs until the overlap ends."""
    body = _valid(RotateSecret, _optional_body(), "the rotation is invalid")
    endpoint = _find(ref)
    overlap = body.overlap_seconds
    if overlap is None:
        overlap = services().settings.bridge_secret_overlap
    try:
        secret = actions.rotate_secret(db.session(), endpoint, overlap, services().clock())
    except actions.EndpointConflict as exc:
        fail(409, str(exc))
    answer = _resource(endpoint, secret)
    db.session.commit()
    return _json(answer)


@api.post("/endpoints/<ref>/replay")
def replay(ref: str) -> Response:
    """Send an endpoint's ended deliveries again (same webhook-id), in order (202)."""
    wanted = _valid(Replay, _optional_body(), "the replay is invalid")
    endpoint = _find(ref)
    queued = actions.replay(db.session(), endpoint, wanted, services().clock())
    db.session.commit()
    return _json(Queued(queued=queued), 202)


def _find(ref: str) -> Endpoint:
    endpoint = actions.find_endpoint(db.session(), ref)
    if endpoint is None:
        fail(404, "no endpoint has this id or name")
    return endpoint


def _valid(model: Any, payload: Any, detail: str) -> Any:
    try:
        return validated(model, payload, services().validation)
    except InvalidWatch as exc:
        fail(422, detail, exc.errors)


def _optional_body() -> Any:
    """The JSON body, or ``{}`` when there is none (``rotate-secret`` and ``replay`` may have none)."""
    if not request.get_data(cache=True):
        return {}
    return json_body()[0]


def _resource(endpoint: Endpoint, secret: str | None = None) -> ContractModel:
    counts = endpoint_counts(db.session(), [endpoint])[endpoint.id]
    return endpoint_resource(endpoint, counts, secret)


def _json(body: ContractModel, status: int = 200) -> Response:
    return Response(json.dumps(body.as_json()), status=status, mimetype="application/json")
