"""The ``paths`` of the OpenAPI document: every route the app serves, and those the contract adds.

Summaries are the views' docstrings and limits the constants the views enforce. Each operation lists
every error status it can answer, as references to the shared problem+json responses. Operations
the code does not serve yet carry ``x-mi-bridge-status: planned``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from app.api.params import FILTER_PATTERN, SEQ_CURSOR_PATTERN
from app.vocabulary import WATCH_STATES
from app.web.door import MAX_BODY_BYTES

Spec = dict[str, Any]
JSON = "application/json"
PLANNED_KEY, PLANNED = "x-mi-bridge-status", "planned"
STRING = {"type": "string"}
#: A sequence cursor as ``params.sequence_cursor`` parses it; empty means "from the start".
SEQ_CURSOR = {"type": "string", "pattern": SEQ_CURSOR_PATTERN}
#: A filter on an id or coordinate as ``params.id_filter`` parses it; empty means "no filter".
ID_FILTER = {"type": "string", "pattern": FILTER_PATTERN}
PROMETHEUS_TEXT = "text/plain; version=0.0.4"

#: Error answers: component name, what it means, body schema, headers it carries.
PROBLEMS: dict[int, tuple[str, str, str, tuple[str, ...]]] = {
    400: ("BadRequest", "Malformed JSON or bad query parameters.", "Problem", ()),
    401: ("Unauthorized", "No valid bearer token.", "Problem", ("WWW-Authenticate",)),
    404: ("NotFound", "Unknown id.", "Problem", ()),
    405: ("MethodNotAllowed", "The path does not take this method.", "Problem", ("Allow",)),
    409: ("Conflict", "Conflicts with an earlier request or the current state.", "Problem", ()),
    413: ("ContentTooLarge", f"The body is over {MAX_BODY_BYTES // 1024} KiB.", "Problem", ()),
    415: (
        "UnsupportedMediaType",
        "The body is not JSON (application/json or */*+json).",
        "Problem",
        (),
    ),
    422: ("UnprocessableContent", "Invalid fields, each in `errors`.", "ValidationProblem", ()),
    429: (
        "TooManyRequests",
        "Too many wrong tokens from this address: every token, the right one too, is refused"
        " until `Retry-After` seconds have passed (at most 60 s after the last wrong one).",
        "Problem",
        ("Retry-After",),
    ),
    503: (
        "ServiceUnavailable",
        "The database is unavailable: try again after `Retry-After` seconds.",
        "Problem",
        ("Retry-After",),
    ),
}
#: The contract's registration example, shown as the body of ``POST /api/v1/watches``.
WATCH_EXAMPLE = {
    "workspace": "my-workspace",
    "project_id": "1234",
    "asset_id": "5678",
    "api": "video-assets",
    "targets": [
        {"type": "webhook", "url": "https://example.com/hooks/mi"},
        {"type": "slack", "channel": "C0123456789"},
        {"type": "slack_webhook", "url": "https://hooks.slack.com/services/T000/B000/XXXX"},
    ],
    "events": [
        "analysis.completed",
        "analysis.failed",
        "analysis.cancelled",
        "watch.expired",
        "watch.error",
    ],
    "labels": {"cms_id": "abc-123"},
    "timeout_seconds": 86400,
}
#: Every operation under /api/ can answer these (405: to the other methods of its path; 429: to an
#: address that sent too many wrong tokens; 503: while the database is unreachable).
API_ERRORS = {401: "", 405: "", 429: "", 503: ""}


def ref(kind: str, name: str) -> Spec:
    """A reference to ``#/components/<kind>/<name>``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def json_response(model: str, description: str, media_type: str = JSON) -> Spec:
    """A response whose body is the component schema ``model``."""
    return {"description": description, "content": {media_type: {"schema": ref("schemas", model)}}}


def operation(
    view: Callable[..., Any] | str,
    responses: Spec,
    *,
    tag: str,
    errors: dict[int, str] | None = None,
    parameters: tuple[Spec, ...] = (),
    body: Spec | None = None,
    public: bool = False,
    planned_id: str | None = None,
) -> Spec:
    """One operation; ``view`` gives the operationId and summary (its docstring), or is the text.

    ``errors`` maps each error status the operation can answer to a description of its own (empty:
    the shared one). ``public`` drops the global bearer requirement; ``planned_id`` marks (and names)
    an operation the code does not serve yet.
    """
    text = view if isinstance(view, str) else inspect.getdoc(view) or ""
    summary, _, description = text.replace("``", "`").partition("\n")
    spec: Spec = {"tags": [tag], "summary": summary.strip().replace("`", "")}
    spec["operationId"] = planned_id or getattr(view, "__name__", "")
    if description.strip():
        spec["description"] = description.strip()
    if parameters:
        spec["parameters"] = list(parameters)
    if body is not None:
        spec["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    spec["responses"] = dict(responses)
    for status, note in sorted((errors or {}).items()):
        answer = ref("responses", PROBLEMS[status][0])
        spec["responses"][str(status)] = {**answer, "description": note} if note else answer
    if public:
        spec["security"] = []
    if planned_id:
        spec[PLANNED_KEY] = PLANNED
    return spec


def _query(name: str, schema: Spec, description: str) -> Spec:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def _limit(default: int, maximum: int) -> Spec:
    schema = {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}
    return _query("limit", schema, f"Page size, 1 to {maximum}; anything else is 400.")


def paths() -> Spec:
    """Every path item, keyed by its OpenAPI path template."""
    # Imported here: the endpoints' paths are built with this module's helpers.
    from app.api.openapi_endpoints import endpoint_paths

    return {
        **_watches(),
        **_watch(),
        **endpoint_paths(),
        **_preview(),
        **_events(),
        **_deliveries(),
        **_operations(),
    }


def _watches() -> Spec:
    from app.api import watches

    created = json_response("Watch", "Registered (or the stored answer to this Idempotency-Key).")
    created["headers"] = {
        name: ref("headers", name) for name in ("Location", "Idempotent-Replayed")
    }
    cursor = {"type": "string", "pattern": "^(wch_[0-9A-Z]{26})?$"}  # empty: the first page
    post = operation(
        watches.create_watch,
        {"201": created},
        tag="watches",
        errors={
            **API_ERRORS,
            400: "Malformed JSON, or an Idempotency-Key that is not 1 to 255 printable ASCII.",
            409: "This Idempotency-Key was used with a different body.",
            **dict.fromkeys((413, 415, 422), ""),
        },
        parameters=(ref("parameters", "IdempotencyKey"),),
        body=ref("schemas", "WatchCreate"),
    )
    post["requestBody"]["content"][JSON]["example"] = WATCH_EXAMPLE
    get = operation(
        watches.list_watches,
        {"200": json_response("WatchList", "A page of watches, newest first.")},
        tag="watches",
        errors={**API_ERRORS, 400: "A bad state, limit, cursor or filter."},
        parameters=(
            _query("state", {"type": "string", "enum": list(WATCH_STATES)}, "Only this state."),
            _query("workspace", ID_FILTER, "Only this workspace."),
            _query("project_id", ID_FILTER, "Only this project."),
            _limit(watches.DEFAULT_LIMIT, watches.MAX_LIMIT),
            _query("cursor", cursor, "The `next_cursor` of the previous page."),
        ),
    )
    return {"/api/v1/watches": {"post": post, "get": get}}


def _watch() -> Spec:
    from app.api import deliveries, watches

    by_id = {**API_ERRORS, 404: "No watch has this id."}
    path = {"parameters": [ref("parameters", "WatchId")]}
    one = json_response("Watch", "The watch.")
    stopped = json_response("Watch", "The watch, stopped (an ended one unchanged).")
    tested = json_response("WatchTest", "Each target's answer (within a 20 s budget).")
    return {
        "/api/v1/watches/{watch_id}": {
            **path,
            "get": operation(watches.get_watch, {"200": one}, tag="watches", errors=by_id),
            "delete": operation(
                watches.delete_watch, {"200": stopped}, tag="watches", errors=by_id
            ),
        },
        "/api/v1/watches/{watch_id}/test": {
            **path,
            "post": operation(deliveries.test_watch, {"200": tested}, tag="watches", errors=by_id),
        },
    }


def _preview() -> Spec:
    from app.api import preview

    rendered = json_response("Preview", "The message the target would be sent (nothing is sent).")
    post = operation(
        preview.preview,
        {"200": rendered},
        tag="watches",
        errors={**API_ERRORS, 400: "Malformed JSON.", **dict.fromkeys((413, 415, 422), "")},
        body=ref("schemas", "PreviewRequest"),
    )
    return {"/api/v1/preview": {"post": post}}


def _events() -> Spec:
    from app.api import feed

    feed_get = operation(
        feed.list_events,
        {"200": json_response("EventList", "Events after the cursor, oldest first.")},
        tag="events",
        errors={**API_ERRORS, 400: "A bad after, limit or watch_id."},
        parameters=(
            _query("after", SEQ_CURSOR, "A `next_cursor`."),
            _limit(feed.DEFAULT_LIMIT, feed.MAX_LIMIT),
            _query("watch_id", ID_FILTER, "Only events of this watch."),
        ),
    )
    return {"/api/v1/events": {"get": feed_get}}


def _deliveries() -> Spec:
    from app.api import deliveries

    delivery_states = {**STRING, "enum": list(deliveries.DELIVERY_STATES)}
    listing = operation(
        deliveries.list_deliveries,
        {"200": json_response("DeliveryList", "A page of deliveries.")},
        tag="events",
        errors={**API_ERRORS, 400: "A bad state, limit, cursor or filter."},
        parameters=(
            _query("state", delivery_states, "Only this state."),
            _query("watch_id", ID_FILTER, "Only deliveries of this watch."),
            _query("target_id", ID_FILTER, "Only deliveries to this target."),
            _limit(deliveries.DEFAULT_LIMIT, deliveries.MAX_LIMIT),
            _query("cursor", SEQ_CURSOR, "The `next_cursor` of the previous page."),
        ),
    )
    retry = operation(
        deliveries.retry_delivery,
        {"202": json_response("Delivery", "Accepted: the delivery is pending again.")},
        tag="events",
        errors={**API_ERRORS, 404: "No delivery has this id.", 409: "It is pending or succeeded."},
    )
    return {
        "/api/v1/deliveries": {"get": listing},
        "/api/v1/deliveries/{delivery_id}/retry": {
            "parameters": [ref("parameters", "DeliveryId")],
            "post": retry,
        },
    }


def _operations() -> Spec:
    from app.api import docs
    from app.ops import health
    from app.ops import metrics as prometheus

    def public(view: Callable[..., Any], responses: Spec) -> Spec:
        return {"get": operation(view, responses, tag="operations", public=True)}

    def body(media_type: str, description: str, schema: Spec) -> Spec:
        return {"description": description, "content": {media_type: {"schema": schema}}}

    metrics = operation(
        prometheus.metrics_view,
        {"200": body(PROMETHEUS_TEXT, "Text exposition format.", {"type": "string"})},
        tag="operations",
        errors={401: "", 429: "", 503: ""},
    )
    readiness = {
        "200": json_response("Readiness", "Ready."),
        "503": json_response("Readiness", "Database unreachable, or no worker seen for 30 s."),
    }
    return {
        "/healthz": public(health.healthz, {"200": json_response("Health", "Up.")}),
        "/readyz": public(health.readyz, readiness),
        "/metrics": {"get": metrics},
        "/openapi.json": public(
            docs.openapi_json, {"200": body(JSON, "This document.", {"type": "object"})}
        ),
        "/docs": public(
            docs.docs_page, {"200": body("text/html", "The page.", {"type": "string"})}
        ),
    }
