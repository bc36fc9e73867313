"""``/api/v1/watches``: register, list, read and stop watches."""

from __future__ import annotations

import json
import re
from datetime import datetime

from flask import Response, g, request, url_for
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from app.api import idempotency
from app.api.blueprint import api, fail, json_body
from app.api.params import bounded_int, choice, id_filters, text_cursor
from app.db import autocommit_connection, db
from app.models import USER_WATCHES, Watch
from app.outbox.envelopes import ContractModel
from app.resources.watches import Watch as WatchResource
from app.resources.watches import registered_watch_json, watch_list, watch_resource
from app.services import services
from app.vocabulary import WATCH_STATES
from app.watches import register_statement
from app.watches.queries import deliveries_by_watch, find_watch, load_watches
from app.watches.registration import register_watch, stop_watch
from app.watches.validation import InvalidWatch, WatchCreate, validate_watch

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
WATCH_ID = re.compile(r"wch_[0-9A-Z]{26}")  # matched whole (fullmatch)
KEY_REUSED = "this Idempotency-Key was used with a different request body"


@api.post("/watches")
def create_watch() -> Response:
    """Register an asset to watch (201), or replay the answer to a repeated ``Idempotency-Key``."""
    payload, _raw = json_body()
    key = request.headers.get("Idempotency-Key")
    if key is not None and not idempotency.valid_key(key):
        fail(400, "Idempotency-Key must be 1 to 255 printable ASCII characters")
    request_model = _validated(payload)
    if key is None:
        return _register(request_model)
    return _register_once(request_model, key, idempotency.request_hash(payload))


def _validated(payload: object) -> WatchCreate:
    try:
        return validate_watch(payload, services().validation, bool(services().default_targets))
    except InvalidWatch as exc:
        fail(422, "the watch is invalid", exc.errors)


def _one_statement(
    model: WatchCreate,
    connection: Connection,
    now: datetime,
    key: register_statement.Reservation | None = None,
) -> register_statement.NewWatch:
    """``register_statement.register`` with the app's settings, on ``connection``."""
    settings = services().settings
    return register_statement.register(
        lambda sql, params: connection.exec_driver_sql(sql, params).fetchone(),
        model,
        default_api=settings.mi_default_api,
        default_timeout=settings.bridge_watch_timeout,
        default_stalled_after=settings.bridge_stalled_after,
        default_targets=services().default_targets,
        now=now,
        key=key,
    )


def _covered(model: WatchCreate) -> bool:
    """Whether the one-statement path registers this watch (PostgreSQL, no workflow)."""
    return register_statement.covers(db.engine.dialect.name, model, services().default_targets)


def _register(model: WatchCreate) -> Response:
    if _covered(model):
        # One statement, atomic by itself: committed alone, no transaction around it.
        with autocommit_connection(db.engine) as connection:
            try:
                watch = _one_statement(model, connection, services().clock())
            except register_statement.NotCovered:  # wrote nothing: the ORM path answers
                pass
            else:
                created = json.dumps(registered_watch_json(watch))
                return _created_text(created, _location(watch.id))
    session = db.session()
    try:
        registration = register_watch(
            session, model, services().settings, services().default_targets, services().clock()
        )
    except InvalidWatch as exc:  # a reference to no endpoint
        session.rollback()
        fail(422, "the watch is invalid", exc.errors)
    body = watch_resource(registration.watch, generated_secrets=registration.generated_secrets)
    session.commit()
    return _created(body)


def _register_once(model: WatchCreate, key: str, digest: str) -> Response:
    fingerprint = g.token_fingerprint
    now = services().clock()
    if _covered(model):
        # The key row, with what its answer is rendered from, is written by the registering
        # statement itself (one statement, committed alone): a concurrent request with the key
        # waits for that row, fails to write its own, and replays it down the ORM path.
        reserve = register_statement.Reservation(
            fingerprint, key, digest, now + idempotency.KEY_LIFETIME, _location
        )
        with autocommit_connection(db.engine) as connection:
            try:
                watch = _one_statement(model, connection, now, reserve)
            except register_statement.NotCovered:  # wrote nothing: the ORM path below answers
                pass
            else:
                created = json.dumps(registered_watch_json(watch))
                return _created_text(created, _location(watch.id))
    session = db.session()
    try:
        stored = idempotency.find_answer(session, fingerprint, key, digest, now)
        if stored is None:
            row = idempotency.reserve(session, fingerprint, key, digest, now)
            registration = register_watch(
                session, model, services().settings, services().default_targets, now
            )
            body = watch_resource(
                registration.watch, generated_secrets=registration.generated_secrets
            )
            row.status_code, row.body = 201, json.dumps(body.as_json())
            row.location = _location(body.id)
            session.commit()
            return _created(body)
    except idempotency.KeyReused:
        session.rollback()
        fail(409, KEY_REUSED)
    except InvalidWatch as exc:  # a reference to no endpoint: nothing is stored for the key
        session.rollback()
        fail(422, "the watch is invalid", exc.errors)
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did, or 409 when
        # its body was another one.
        session.rollback()
        try:
            stored = idempotency.find_answer(session, fingerprint, key, digest, now)
        except idempotency.KeyReused:
            fail(409, KEY_REUSED)
        if stored is None:
            raise
    response = Response(stored.body, status=stored.status_code, mimetype="application/json")
    if stored.location:
        response.headers["Location"] = stored.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _location(watch_id: str) -> str:
    return url_for("api.get_watch", watch_id=watch_id)


def _created_text(body: str, location: str) -> Response:
    response = Response(body, status=201, mimetype="application/json")
    response.headers["Location"] = location
    return response


def _created(body: WatchResource) -> Response:
    response = Response(json.dumps(body.as_json()), status=201, mimetype="application/json")
    response.headers["Location"] = _location(body.id)
    return response


@api.get("/watches")
def list_watches() -> Response:
    """Watches, newest first, filtered by state, workspace and project; cursor-paginated."""
    args = request.args
    statement = select(Watch).where(USER_WATCHES).order_by(Watch.id.desc())
    state = choice(args.get("state"), "state", WATCH_STATES)
    if state is not None:
        statement = statement.where(Watch.state == state)
    for name, value in id_filters(args, ("workspace", "project_id")):
        statement = statement.where(getattr(Watch, name) == value)
    cursor = text_cursor(args.get("cursor"), "cursor", WATCH_ID)
    if cursor is not None:
        statement = statement.where(Watch.id < cursor)
    limit = bounded_int(args.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    watches = load_watches(db.session(), statement.limit(limit + 1))
    page, more = watches[:limit], len(watches) > limit
    deliveries = deliveries_by_watch(db.session(), [w.id for w in page])
    return _json(watch_list(page, deliveries, page[-1].id if more else None))


def watch_or_404(watch_id: str) -> Watch:
    """The watch with this id, or a 404 problem."""
    watch = find_watch(db.session(), watch_id)
    if watch is None:
        fail(404, f"no watch {watch_id}")
    return watch


@api.get("/watches/<watch_id>")
def get_watch(watch_id: str) -> Response:
    """One watch with its status history and deliveries."""
    watch = watch_or_404(watch_id)
    deliveries = deliveries_by_watch(db.session(), [watch.id])
    return _json(watch_resource(watch, deliveries.get(watch.id, ())))


@api.delete("/watches/<watch_id>")
def delete_watch(watch_id: str) -> Response:
    """Stop watching (``stopped``); an ended watch answers 200 unchanged."""
    watch = watch_or_404(watch_id)
    stop_watch(db.session(), watch, services().clock())
    db.session.commit()
    deliveries = deliveries_by_watch(db.session(), [watch.id])
    return _json(watch_resource(watch, deliveries.get(watch.id, ())))


def _json(body: ContractModel, status: int = 200) -> Response:
    return Response(json.dumps(body.as_json()), status=status, mimetype="application/json")
