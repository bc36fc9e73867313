"""Registration in one statement on PostgreSQL: the hot path of ``POST /api/v1/watches``.

A watch that only watches (no workflow) is registered by one SQL statement of data-modifying CTEs:
the asset upsert (due now at the latest, as ``upsert_due_asset``), the watch INSERT (``SELECT ..
FROM`` the upsert's ``RETURNING``) and one INSERT per target; an ``{"endpoint": ...}`` reference is
resolved inside it (``INSERT .. SELECT .. FROM endpoints``), and with an ``Idempotency-Key`` the key
row is written by it too, last, with the values its answer is rendered from (``answer_parts``:
the watch as sent, the asset's and endpoints' columns as read), so a replay renders the very same
answer (``watch_from_parts``) and the whole registration is still one statement, committed alone.
Every write hangs from a guard: when a reference names no endpoint (or two name one endpoint) the
statement writes nothing; when the key is taken the key row's INSERT fails (a unique violation, or
waits for a concurrent request's statement to end, then fails) and the whole statement with it.
Either way ``NotCovered`` sends the request down the ORM path (``register_watch``), which answers it
as it always has (the 422, the replay, the 409, the expired key renewed).

The SQL text is built once per shape (the kinds of the targets, with or without a key) and run as
the driver's SQL (``exec_driver_sql``) with the parameters as psycopg 3 takes them: no ORM unit of
work, no statement compilation per request, and psycopg prepares it server-side after a few runs. Ids,
secrets and times are made here, as the ORM path makes them, so the rows are the same row for row
(``tests/test_registration_fast_path.py`` compares them); the table constraints still hold, the
ORM's own checks of these rows are not run. The answer's body is built from the values
(``app.resources.watches.registered_watch_json``).

Not covered (the ORM path): SQLite and any other database, watches with a workflow, duplicate
references in one request.
"""

# ruff: noqa: S608  (the SQL is assembled from this module's constant names; values are parameters)
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from app.models.base import new_id
from app.notify.webhook import generate_secret
from app.vocabulary import EventType, WatchState
from app.watches.validation import (
    EndpointRefIn,
    HttpTargetIn,
    SlackTargetIn,
    SlackWebhookTargetIn,
    TargetIn,
    WatchCreate,
    WebhookTargetIn,
)
from app.watches.workflows import asks_for_work, workflow_events

#: The columns a registration writes (every other column of these rows is NULL, as the ORM leaves it).
WATCH_COLUMNS = (
    "id", "state", "workspace", "project_id", "asset_id", "api", "labels", "events", "created_at",
    "updated_at", "deadline_at", "poll_count", "stage", "stalled_after_seconds",
)  # fmt: skip
INLINE_TARGET_COLUMNS = (
    "id", "watch_id", "position", "type", "url", "channel", "secret", "disabled", "method",
    "headers", "body", "template", "language", "created_at",
)  # fmt: skip
#: An endpoint target: its type and endpoint id come from the endpoint row, in the statement.
ENDPOINT_TARGET_COLUMNS = ("id", "watch_id", "position", "disabled", "created_at")
JSON_COLUMNS = frozenset({"labels", "events", "headers"})
#: The asset's columns the answer reads (``next_poll_at``, ``last_error``).
ASSET_COLUMNS = (
    "pk", "next_poll_at", "last_polled_at", "last_error", "last_error_kind", "last_error_status",
    "last_error_request_id", "consecutive_errors",
)  # fmt: skip
#: The endpoint's columns the answer reads (its name, destination and state).
ENDPOINT_COLUMNS = (
    "id", "name", "type", "url", "channel", "disabled", "disabled_reason", "method", "headers",
    "body", "template", "language",
)  # fmt: skip


#: The asset's columns that hold times (naive UTC in the database).
ASSET_TIMES = frozenset({"next_poll_at", "last_polled_at"})


class NotCovered(Exception):
    """The statement wrote nothing: the ORM path answers this request."""


@dataclass(frozen=True)
class Reservation:
    """An ``Idempotency-Key`` for the registering statement to reserve, with its stored answer's
    ``Location`` (made from the new watch's id)."""

    fingerprint: str
    key: str
    request_hash: str
    expires_at: datetime
    location: Callable[[str], str]


@dataclass
class NewTarget:
    """A target as registered (the attributes ``registered_watch_json`` reads); ``endpoint``: the
    endpoint's columns (``ENDPOINT_COLUMNS``) for a reference."""

    id: str
    type: str
    url: str | None = None
    channel: str | None = None
    method: str | None = None
    headers: dict[str, Any] | None = None
    body: str | None = None
    template: str | None = None
    language: str | None = None
    endpoint: dict[str, Any] | None = None
    disabled: bool = False
    disabled_reason: str | None = None


@dataclass
class NewWatch:
    """A watch as registered, with its asset's columns (``ASSET_COLUMNS``, aware times)."""

    id: str
    workspace: str
    project_id: str
    asset_id: str
    api: str
    labels: dict[str, str]
    events: list[str]
    created_at: datetime
    deadline_at: datetime
    stalled_after_seconds: float | None
    targets: list[NewTarget]
    asset: dict[str, Any]
    generated_secrets: dict[str, str] = field(default_factory=dict)


def covers(dialect_name: str, request: WatchCreate, default_targets: Sequence[TargetIn]) -> bool:
    """Whether this registration can take the one-statement path."""
    if dialect_name != "postgresql" or request.asset_id is None or asks_for_work(request):
        return False
    specs = request.targets or default_targets
    refs = [spec.endpoint for spec in specs if isinstance(spec, EndpointRefIn)]
    return len(refs) == len(set(refs))  # one named twice: the ORM path's 422


#: Runs one SQL text with its parameters and gives its first row (or None).
Execute = Callable[[str, dict[str, Any]], Sequence[Any] | None]


def register(
    execute: Execute,
    request: WatchCreate,
    *,
    default_api: str,
    default_timeout: float,
    default_stalled_after: float | None,
    default_targets: Sequence[TargetIn],
    now: datetime,
    key: Reservation | None = None,
) -> NewWatch:
    """Register ``request`` (``covers`` it) with one statement run by ``execute``, reserving ``key``
    in the same statement. ``NotCovered`` when it wrote nothing (a reference to no endpoint, or the
    key is taken: ``execute``'s error is then the unique violation, chained)."""
    specs = request.targets or default_targets
    assert request.asset_id is not None
    naive_now = now.astimezone(UTC).replace(tzinfo=None)
    events = workflow_events(request)
    stalled_after = request.stalled_after_seconds or default_stalled_after
    timeout = request.timeout_seconds or default_timeout
    watch = NewWatch(
        id=new_id("wch"), workspace=request.workspace, project_id=request.project_id,
        asset_id=request.asset_id, api=request.api or default_api, labels=dict(request.labels),
        events=events, created_at=now, deadline_at=now + timedelta(seconds=timeout),
        stalled_after_seconds=stalled_after if EventType.ANALYSIS_STALLED in events else None,
        targets=[], asset={},
    )  # fmt: skip
    params: dict[str, Any] = {
        "now": naive_now,
        "w_id": watch.id,
        "w_state": WatchState.WATCHING.value,
        "w_workspace": watch.workspace,
        "w_project_id": watch.project_id,
        "w_asset_id": watch.asset_id,
        "w_api": str(watch.api),
        "w_labels": json.dumps(watch.labels),
        "w_events": json.dumps(watch.events),
        "w_deadline_at": watch.deadline_at.astimezone(UTC).replace(tzinfo=None),
        "w_stalled_after_seconds": watch.stalled_after_seconds,
    }
    shape: list[bool] = []
    for position, spec in enumerate(specs):
        target_id = new_id("tgt")
        params[f"t{position}_id"] = target_id
        params[f"t{position}_position"] = position
        if isinstance(spec, EndpointRefIn):
            shape.append(True)
            params[f"t{position}_ref"] = spec.endpoint
            watch.targets.append(NewTarget(id=target_id, type=""))  # type: the endpoint's
            continue
        shape.append(False)
        target = _inline_target(target_id, spec)
        if isinstance(spec, WebhookTargetIn) and spec.secret is None:
            watch.generated_secrets[target_id] = target.secret_value
        watch.targets.append(target.shown)
        params.update({f"t{position}_{name}": value for name, value in target.columns.items()})
    if key is not None:
        params.update(k_fp=key.fingerprint, k_key=key.key, k_hash=key.request_hash)
        params["k_expires"] = key.expires_at.astimezone(UTC).replace(tzinfo=None)
        params["k_location"] = key.location(watch.id)
        params["k_watch"] = json.dumps(_watch_parts(watch))
    try:
        row = execute(_statement(tuple(shape), key is not None), params)
    except Exception as exc:
        if key is not None and _key_taken(exc):
            raise NotCovered from exc
        raise
    if row is None or row[0] is None:
        raise NotCovered
    watch.asset = _asset(zip(ASSET_COLUMNS, row, strict=False))
    _show_endpoints(watch.targets, row[len(ASSET_COLUMNS) :])
    return watch


def watch_from_parts(parts: dict[str, Any]) -> NewWatch:
    """The registered watch whose ``answer_parts`` these are (stored with its key row): rendered
    by ``registered_watch_json``, the answer the registration gave, key for key."""
    sent = parts["watch"]
    watch = NewWatch(
        id=sent["id"], workspace=sent["workspace"], project_id=sent["project_id"],
        asset_id=sent["asset_id"], api=sent["api"], labels=sent["labels"], events=sent["events"],
        created_at=datetime.fromisoformat(sent["created_at"]),
        deadline_at=datetime.fromisoformat(sent["deadline_at"]),
        stalled_after_seconds=sent["stalled_after_seconds"],
        targets=[NewTarget(**target) for target in sent["targets"]],
        asset=_asset(
            (name, datetime.fromisoformat(value) if name in ASSET_TIMES and value else value)
            for name, value in parts["asset"].items()
        ),
        generated_secrets=sent["generated_secrets"],
    )  # fmt: skip
    _show_endpoints(watch.targets, parts["endpoints"])
    return watch


def _watch_parts(watch: NewWatch) -> dict[str, Any]:
    """What ``watch_from_parts`` needs of ``watch`` as sent (before the statement): JSON-ready."""
    return {
        "id": watch.id, "workspace": watch.workspace, "project_id": watch.project_id,
        "asset_id": watch.asset_id, "api": str(watch.api), "labels": watch.labels,
        "events": watch.events, "created_at": watch.created_at.isoformat(),
        "deadline_at": watch.deadline_at.isoformat(),
        "stalled_after_seconds": watch.stalled_after_seconds,
        "targets": [asdict(target) for target in watch.targets],
        "generated_secrets": watch.generated_secrets,
    }  # fmt: skip


def _asset(columns: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The asset's columns with aware times (the database's are naive UTC)."""
    return {
        name: value.replace(tzinfo=UTC) if isinstance(value, datetime) else value
        for name, value in columns
    }


def _show_endpoints(targets: list[NewTarget], endpoints: Sequence[dict[str, Any]]) -> None:
    """Give each reference (a target made with no type) its endpoint's columns, in order."""
    found = iter(endpoints)
    for target in targets:
        if target.type == "":
            shown = next(found)
            target.endpoint, target.type = shown, shown["type"]


def _key_taken(exc: Exception) -> bool:
    """Whether ``exc`` (the driver's, or SQLAlchemy's wrapping it) is the key row's unique
    violation: the key was used before (or is being used by a concurrent request)."""
    diag = getattr(getattr(exc, "orig", exc), "diag", None)
    return (
        diag is not None
        and getattr(diag, "sqlstate", None) == "23505"
        and getattr(diag, "table_name", None) == "idempotency_keys"
    )


@dataclass
class _Inline:
    shown: NewTarget
    columns: dict[str, Any]
    secret_value: str = ""


def _inline_target(target_id: str, spec: TargetIn) -> _Inline:
    """An inline target's columns (as ``build_target`` fills them) and how the answer shows it."""
    columns: dict[str, Any] = dict.fromkeys(
        ("url", "channel", "secret", "method", "headers", "body", "template", "language")
    )
    columns["type"] = str(spec.type)  # type: ignore[union-attr]
    if isinstance(spec, SlackTargetIn):
        columns["channel"] = spec.channel
    else:
        columns["url"] = spec.url  # type: ignore[union-attr]
    if isinstance(spec, SlackTargetIn | SlackWebhookTargetIn):
        columns["template"] = spec.template
    if isinstance(spec, SlackTargetIn | SlackWebhookTargetIn | HttpTargetIn):
        columns["language"] = spec.language
    if isinstance(spec, WebhookTargetIn):
        columns["secret"] = spec.secret or generate_secret()
    if isinstance(spec, HttpTargetIn):
        columns["method"], columns["headers"], columns["body"] = (
            spec.method,
            spec.headers,
            spec.body,
        )
        columns["secret"] = spec.secret
    shown = NewTarget(
        id=target_id, type=columns["type"], url=columns["url"], channel=columns["channel"],
        method=columns["method"], headers=columns["headers"], body=columns["body"],
        template=columns["template"], language=columns["language"],
    )  # fmt: skip
    secret = columns["secret"] or ""
    if columns["headers"] is not None:
        columns["headers"] = json.dumps(columns["headers"])
    if columns["language"] is not None:
        columns["language"] = str(columns["language"])
    return _Inline(shown, columns, secret)


@cache
def _statement(shape: tuple[bool, ...], with_key: bool) -> str:
    """The SQL for targets of this shape (True: an endpoint reference), with or without a key.

    Built from constant names only; every value is a parameter."""
    ctes: list[str] = []
    refs = [i for i, is_endpoint in enumerate(shape) if is_endpoint]
    for i in refs:  # an id wins over a name, as in ``resolve_endpoint_refs``
        ctes.append(
            f"e{i} AS (SELECT * FROM endpoints WHERE id = %(t{i}_ref)s OR name = %(t{i}_ref)s"
            f" ORDER BY id = %(t{i}_ref)s DESC LIMIT 1)"
        )
    source = ""
    if refs:  # every reference found, no endpoint named twice
        found = " UNION ALL ".join(f"SELECT id FROM e{i}" for i in refs)
        ctes.append(
            f"ok AS (SELECT 1 AS ok WHERE (SELECT count(DISTINCT id) FROM ({found}) f) = {len(refs)})"
        )
        source = " FROM ok"
    ctes.append(
        "a AS (INSERT INTO assets (workspace, project_id, asset_id, api, interval, poll_count,"
        " consecutive_errors, next_poll_at, created_at, updated_at) SELECT %(w_workspace)s,"
        f" %(w_project_id)s, %(w_asset_id)s, %(w_api)s, 0.0, 0, 0, %(now)s, %(now)s, %(now)s{source}"
        " ON CONFLICT (workspace, project_id, asset_id, api) DO UPDATE SET next_poll_at ="
        " CASE WHEN assets.next_poll_at IS NULL OR assets.next_poll_at > EXCLUDED.next_poll_at"
        " THEN EXCLUDED.next_poll_at ELSE assets.next_poll_at END"
        f" RETURNING {', '.join(ASSET_COLUMNS)})"
    )
    watch_values = {
        "created_at": "%(now)s", "updated_at": "%(now)s", "poll_count": "0", "stage": "NULL",
    }  # fmt: skip
    values = ", ".join(watch_values.get(c, _value(f"w_{c}", c)) for c in WATCH_COLUMNS)
    ctes.append(
        f"w AS (INSERT INTO watches ({', '.join(WATCH_COLUMNS)}, asset_pk)"
        f" SELECT {values}, a.pk FROM a RETURNING id)"
    )
    for i, is_endpoint in enumerate(shape):
        fixed = {"watch_id": "w.id", "disabled": "false", "created_at": "%(now)s"}
        if is_endpoint:
            values = ", ".join(fixed.get(c, f"%(t{i}_{c})s") for c in ENDPOINT_TARGET_COLUMNS)
            ctes.append(
                f"t{i} AS (INSERT INTO targets ({', '.join(ENDPOINT_TARGET_COLUMNS)}, type,"
                f" endpoint_id) SELECT {values}, e{i}.type, e{i}.id FROM w, e{i})"
            )
        else:
            values = ", ".join(fixed.get(c, _value(f"t{i}_{c}", c)) for c in INLINE_TARGET_COLUMNS)
            ctes.append(
                f"t{i} AS (INSERT INTO targets ({', '.join(INLINE_TARGET_COLUMNS)})"
                f" SELECT {values} FROM w)"
            )
    shown = ", ".join(f"'{c}', e.{c}" for c in ENDPOINT_COLUMNS)
    endpoints = [f"(SELECT json_build_object({shown}) FROM e{i} e)" for i in refs]
    if with_key:  # last: it fails (and the statement with it) when the key is taken
        asset = ", ".join(f"'{c}', a.{c}" for c in ASSET_COLUMNS)
        parts = (
            f"json_build_object('watch', CAST(%(k_watch)s AS json), 'asset', json_build_object("
            f"{asset}), 'endpoints', json_build_array({', '.join(endpoints)}))"
        )
        ctes.append(
            "k AS (INSERT INTO idempotency_keys (token_fingerprint, key, request_hash, status_code,"
            " body, location, answer_parts, created_at, expires_at) SELECT %(k_fp)s, %(k_key)s,"
            f" %(k_hash)s, 201, '', %(k_location)s, {parts}, %(now)s, %(k_expires)s FROM a)"
        )
    answers = [f"a.{c}" for c in ASSET_COLUMNS] + endpoints
    return (
        "WITH " + ",\n".join(ctes) + f"\nSELECT {', '.join(answers)} FROM (SELECT 1) one"
        " LEFT JOIN a ON true"
    )


def _value(name: str, column: str) -> str:
    return f"CAST(%({name})s AS json)" if column in JSON_COLUMNS else f"%({name})s"
