"""``/openapi.json`` is valid OpenAPI 3.1, in step with the routes, and describes real answers exactly;
``/docs`` renders it with assets from the app itself."""

import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from app.api.openapi import document_json
from app.api.openapi_paths import PLANNED, PLANNED_KEY
from app.vocabulary import (
    WATCH_STATES,
)
from app.watches.validation import ValidationSettings, WatchCreate
from tests.receiver import Answer

DOC_URI = "urn:mi-bridge:openapi"
WATCHES, ONE_WATCH, EVENTS = "/api/v1/watches", "/api/v1/watches/{watch_id}", "/api/v1/events"
TEST, DELIVERIES = "/api/v1/watches/{watch_id}/test", "/api/v1/deliveries"
RETRY = "/api/v1/deliveries/{delivery_id}/retry"
MISSING = "/api/v1/watches/wch_01JD3Q00000000000000000000"
NO_DELIVERY = "/api/v1/deliveries/dlv_01JD3Q00000000000000000000/retry"
CREATE, LIST, FEED = ("POST", WATCHES), ("GET", WATCHES), ("GET", EVENTS)
SHOW, STOP = ("GET", ONE_WATCH), ("DELETE", ONE_WATCH)
SEND, LIST_DELIVERIES, RETRY_ONE = ("POST", TEST), ("GET", DELIVERIES), ("POST", RETRY)
METRICS = ("GET", "/metrics")
ENDPOINTS, ONE_ENDPOINT = "/api/v1/endpoints", "/api/v1/endpoints/{ref}"
ROTATE, REPLAY = f"{ONE_ENDPOINT}/rotate-secret", f"{ONE_ENDPOINT}/replay"
NO_ENDPOINT = "/api/v1/endpoints/nobody"
ADD_ENDPOINT, LIST_ENDPOINTS = ("POST", ENDPOINTS), ("GET", ENDPOINTS)
SHOW_ENDPOINT, CHANGE_ENDPOINT = ("GET", ONE_ENDPOINT), ("PATCH", ONE_ENDPOINT)
DELETE_ENDPOINT, ROTATE_SECRET, REPLAY_ENDPOINT = (
    ("DELETE", ONE_ENDPOINT), ("POST", ROTATE), ("POST", REPLAY)
)  # fmt: skip
PREVIEW = ("POST", "/api/v1/preview")
CONTRACT_PLANNED = {SEND, LIST_DELIVERIES, RETRY_ONE, METRICS}
#: Blueprints of the people's side (HTML pages, session cookie, CSRF forms): not in the API document.
NOT_API = {"dashboard"}
#: Views that serve files, not API operations: static files and ``/favicon.ico`` (to the SVG icon).
FILE_VIEWS = {"static", "favicon"}
PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/docs"}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
BODY = {
    "workspace": "my-workspace",
    "project_id": 1234,
    "asset_id": "5678",
    "targets": [
        {"type": "slack", "channel": "C0123456789"},
        {"type": "webhook", "url": "https://hooks.example.test/mi"},
        {"type": "slack_webhook", "url": "https://hooks.example.test/services/T000/B000/XXXX"},
    ],
    "labels": {"cms_id": "abc-123"},
}


class Spec:
    """The served document, and checks of real responses against what it says."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.registry = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(document))

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target = self.document
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    def operations(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {
            (method.upper(), path): operation
            for path, item in self.document["paths"].items()
            for method, operation in item.items()
            if method in HTTP_METHODS
        }

    def validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        if "$ref" in schema:
            schema = {"$ref": DOC_URI + schema["$ref"]}
        return Draft202012Validator(schema, registry=self.registry)

    def schema_errors(self, name: str, instance: Any) -> list[str]:
        validator = self.validator({"$ref": f"#/components/schemas/{name}"})
        return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]

    def check(self, response: Any, method: str, path: str) -> Any:
        """Assert ``response`` is one that ``method path`` documents: media type, body, headers."""
        answers = self.operations()[(method, path)]["responses"]
        assert str(response.status_code) in answers, f"{method} {path}: {response.status_code}"
        answer = self.resolve(answers[str(response.status_code)])
        (media,) = [m for k, m in answer["content"].items() if k.split(";")[0] == response.mimetype]
        body = response.get_json() if "json" in response.mimetype else response.get_data(True)
        errors = sorted(self.validator(media["schema"]).iter_errors(body), key=str)
        assert not errors, f"{method} {path} {response.status_code}: {errors[0]}\n{body}"
        for name, header in answer.get("headers", {}).items():
            header = self.resolve(header)
            if header["required"] or name in response.headers:
                self.validator(header["schema"]).validate(response.headers[name])
        return body


@pytest.fixture
def spec(client) -> Spec:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return Spec(response.get_json())


def test_the_document_is_valid_openapi_3_1(spec):
    validate(spec.document)
    assert spec.document["openapi"] == "3.1.0"


def test_the_document_is_built_once_and_served_without_a_token(client):
    first = client.get("/openapi.json")
    builds = document_json.cache_info().misses
    second = client.get("/openapi.json", headers={"If-None-Match": first.headers["ETag"]})
    assert (first.status_code, second.status_code) == (200, 304)
    assert client.get("/openapi.json").data == first.data
    assert document_json.cache_info().misses == builds == 1


def test_every_route_is_documented_and_every_documented_route_is_served_or_planned(app, spec):
    served = set()
    for rule in app.url_map.iter_rules():
        blueprint, _, view = rule.endpoint.rpartition(".")
        if view in FILE_VIEWS or blueprint in NOT_API:
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        served |= {(method, path) for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = spec.operations()
    planned = {key for key, op in documented.items() if op.get(PLANNED_KEY) == PLANNED}
    assert served == set(documented) - planned
    assert planned <= CONTRACT_PLANNED
    assert not planned & served, "a served route must lose its planned marker"


def test_path_parameters_name_the_route_arguments(spec):
    for path, item in spec.document["paths"].items():
        names = {spec.resolve(p)["name"] for p in item.get("parameters", []) if "{" in path}
        assert names == {part[1:-1] for part in path.split("/") if part.startswith("{")}


def test_the_api_needs_a_bearer_token_and_the_public_paths_do_not(spec):
    assert spec.document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for (_method, path), operation in spec.operations().items():
        security = operation.get("security", spec.document["security"])
        assert security == ([] if path in PUBLIC else [{"bearer": []}]), path


EXPECTED_ERRORS = {
    CREATE: {400, 401, 405, 409, 413, 415, 422, 429},
    LIST: {400, 401, 405, 429},
    SHOW: {401, 404, 405, 429},
    STOP: {401, 404, 405, 429},
    SEND: {401, 404, 405, 429},
    FEED: {400, 401, 405, 429},
    LIST_DELIVERIES: {400, 401, 405, 429},
    RETRY_ONE: {401, 404, 405, 409, 429},
    METRICS: {401, 429},
    ADD_ENDPOINT: {400, 401, 405, 409, 413, 415, 422, 429},
    LIST_ENDPOINTS: {401, 405, 429},
    SHOW_ENDPOINT: {401, 404, 405, 429},
    CHANGE_ENDPOINT: {400, 401, 404, 405, 413, 415, 422, 429},
    DELETE_ENDPOINT: {401, 404, 405, 409, 429},
    ROTATE_SECRET: {400, 401, 404, 405, 409, 413, 415, 422, 429},
    REPLAY_ENDPOINT: {400, 401, 404, 405, 413, 415, 422, 429},
    PREVIEW: {400, 401, 405, 413, 415, 422, 429},
}


def test_each_api_operation_lists_its_errors_as_problems(spec):
    for key, operation in spec.operations().items():
        errors = {int(s) for s in operation["responses"] if s.startswith("4")}
        assert errors == EXPECTED_ERRORS.get(key, set()), key
        for status in errors:
            answer = spec.resolve(operation["responses"][str(status)])
            body = answer["content"]["application/problem+json"]["schema"]["$ref"]
            assert body.endswith("ValidationProblem" if status == 422 else "/Problem")
            headers = {401: {"WWW-Authenticate"}, 405: {"Allow"}, 429: {"Retry-After"}}.get(
                status, set()
            )
            assert set(answer.get("headers", {})) == headers
    created = spec.operations()[("POST", WATCHES)]
    assert set(created["responses"]["201"]["headers"]) == {"Location", "Idempotent-Replayed"}
    assert spec.resolve(created["parameters"][0])["name"] == "Idempotency-Key"
    endpoint = spec.operations()[ADD_ENDPOINT]
    assert set(endpoint["responses"]["201"]["headers"]) == {"Location"}


def test_query_parameters_state_the_limits_the_code_enforces(spec):
    def params(method, path):
        operation = spec.operations()[(method, path)]
        return {p["name"]: p["schema"] for p in map(spec.resolve, operation["parameters"])}

    watches, events = params("GET", WATCHES), params("GET", EVENTS)
    assert (watches["limit"]["minimum"], watches["limit"]["maximum"]) == (1, 200)
    assert (events["limit"]["minimum"], events["limit"]["maximum"]) == (1, 500)
    assert tuple(watches["state"]["enum"]) == WATCH_STATES
    assert set(watches) == {"state", "workspace", "project_id", "limit", "cursor"}
    assert set(events) == {"after", "limit", "watch_id"}


def _envelope(event_type: str, watch: dict[str, Any], **watch_part: Any) -> dict[str, Any]:
    """An event about ``watch`` as the contract's example shows it (``watch_part`` adds keys)."""
    from app.models import new_id

    analysis = {"status": "ANALYZE_COMPLETED", "previous_status": "ANALYZING", "message": None}
    return {
        "id": new_id("evt"),
        "type": event_type,
        "timestamp": "2026-11-25T12:00:00Z",
        "data": {
            "watch": {"id": watch["id"], "labels": watch["labels"], **watch_part},
            "asset": {key: watch[key] for key in ("workspace", "project_id", "asset_id", "api")},
            "analysis": {**analysis, "index_id": 1001},
            "detection": {
                "registered_at": watch["created_at"],
                "detected_at": "2026-11-25T12:00:00.000Z",
                "poll_count": 17,
            },
        },
    }


def _record_delivery(app, watch: dict[str, Any]) -> None:
    """Write what a worker would: an observed status, an event, its delivery and one attempt."""
    from app.db import db
    from app.models import Delivery, DeliveryAttempt, Event, StatusChange

    body = _envelope("analysis.completed", watch)
    with app.app_context():
        change = StatusChange(watch_id=watch["id"], status="ANALYZE_COMPLETED", api="assets")
        event = Event(id=body["id"], watch_id=watch["id"], type=body["type"], body=json.dumps(body))
        event.dedupe_key = "ANALYZE_COMPLETED"
        delivery = Delivery(event_id=body["id"], target_id=watch["targets"][1]["id"])
        delivery.lane = delivery.target_id  # an inline target is its own lane
        delivery.watch_id, delivery.state, delivery.attempt_count = watch["id"], "succeeded", 1
        db.session.add_all([change, event, delivery])
        db.session.flush()
        attempt = DeliveryAttempt(delivery_seq=delivery.seq, at=datetime.now(UTC), status_code=200)
        attempt.outcome, attempt.duration_ms = "succeeded", 12
        db.session.add(attempt)
        db.session.commit()


def test_real_answers_match_their_documented_schemas(app, client, auth_headers, spec):
    keyed = {**auth_headers, "Idempotency-Key": "key-1"}
    watch = spec.check(client.post(WATCHES, json=BODY, headers=keyed), "POST", WATCHES)
    assert watch["targets"][1]["secret"].startswith("whsec_")
    replay = client.post(WATCHES, json=BODY, headers=keyed)
    assert spec.check(replay, "POST", WATCHES) == watch
    assert replay.headers["Idempotent-Replayed"] == "true"
    spec.check(client.post(WATCHES, json=BODY, headers=auth_headers), "POST", WATCHES)
    _record_delivery(app, watch)

    url = f"{WATCHES}/{watch['id']}"
    shown = spec.check(client.get(url, headers=auth_headers), "GET", ONE_WATCH)
    assert shown["history"]
    assert shown["deliveries"][0]["attempts"]
    page = spec.check(client.get(f"{WATCHES}?limit=1", headers=auth_headers), "GET", WATCHES)
    query = f"{WATCHES}?state=watching&workspace=my-workspace&cursor={page['next_cursor']}"
    last = spec.check(client.get(query, headers=auth_headers), "GET", WATCHES)
    assert [w["id"] for w in last["items"]] == [watch["id"]]
    assert last["next_cursor"] is None

    feed = spec.check(client.get(f"{EVENTS}?limit=1", headers=auth_headers), "GET", EVENTS)
    assert feed["items"][0]["watch_id"] == watch["id"]
    after = f"{EVENTS}?after={feed['next_cursor']}&watch_id={watch['id']}"
    assert spec.check(client.get(after, headers=auth_headers), "GET", EVENTS)["items"] == []

    stopped = spec.check(client.delete(url, headers=auth_headers), "DELETE", ONE_WATCH)
    assert stopped["state"] == "stopped"
    spec.check(client.delete(url, headers=auth_headers), "DELETE", ONE_WATCH)
    spec.check(client.get("/healthz"), "GET", "/healthz")
    spec.check(client.get("/readyz"), "GET", "/readyz")
    spec.check(client.get("/openapi.json"), "GET", "/openapi.json")
    assert "mi_bridge_watches" in spec.check(client.get("/metrics", headers=auth_headers), *METRICS)


TOO_LARGE = b"[" + b" " * (64 * 1024) + b"]"
#: A body each operation refuses (422) for exactly two fields: the one named here and ``x``.
INVALID = {
    CREATE: ("asset_id", {**BODY, "asset_id": "a b"}),
    ADD_ENDPOINT: ("name", {"name": "Bad Name", "type": "slack", "channel": "C1"}),
    CHANGE_ENDPOINT: ("disabled", {"disabled": "yes"}),
    ROTATE_SECRET: ("overlap_seconds", {"overlap_seconds": -1}),
    REPLAY_ENDPOINT: ("since", {"since": 1764072000}),
    PREVIEW: ("target/url", {"target": {"type": "http", "url": "a b", "body": "{}"}}),
}


def _body_errors(operation: tuple[str, str], url: str) -> list[tuple[Any, ...]]:
    """The cases every body-taking endpoint operation shares: 400, 401, 413, 415 and 422."""
    json_type = "application/json"
    return [
        (operation, "POST" if operation[0] == "POST" else "PATCH", url, kwargs, status)
        for kwargs, status in (
            ({"data": "{", "content_type": json_type}, 400),
            ({"json": INVALID[operation][1], "token": False}, 401),
            ({"data": TOO_LARGE, "content_type": json_type}, 413),
            ({"data": "{}", "content_type": "text/plain"}, 415),
            ({"json": {**INVALID[operation][1], "x": 1}}, 422),
        )
    ]


# (the documented operation, the request's method, URL and test-client arguments, the status)
ERROR_CASES = [
    (CREATE, "POST", WATCHES, {"data": "{", "content_type": "application/json"}, 400),
    (CREATE, "POST", WATCHES, {"json": BODY, "headers": {"Idempotency-Key": ""}}, 400),
    (CREATE, "POST", WATCHES, {"json": BODY, "token": False}, 401),
    (CREATE, "PATCH", WATCHES, {}, 405),
    (CREATE, "POST", WATCHES, {"data": TOO_LARGE, "content_type": "application/json"}, 413),
    (CREATE, "POST", WATCHES, {"data": "{}", "content_type": "text/plain"}, 415),
    (CREATE, "POST", WATCHES, {"json": {**INVALID[CREATE][1], "x": 1}}, 422),
    (LIST, "GET", f"{WATCHES}?limit=201", {}, 400),
    (LIST, "GET", f"{WATCHES}?state=paused", {}, 400),
    (LIST, "GET", f"{WATCHES}?cursor=7", {}, 400),
    (LIST, "GET", WATCHES, {"token": False}, 401),
    (LIST, "PUT", WATCHES, {}, 405),
    (SHOW, "GET", MISSING, {"token": False}, 401),
    (SHOW, "GET", MISSING, {}, 404),
    (SHOW, "POST", MISSING, {}, 405),
    (STOP, "DELETE", MISSING, {"token": False}, 401),
    (STOP, "DELETE", MISSING, {}, 404),
    (STOP, "PUT", MISSING, {}, 405),
    (FEED, "GET", f"{EVENTS}?limit=0", {}, 400),
    (FEED, "GET", f"{EVENTS}?after=x", {}, 400),
    (FEED, "GET", EVENTS, {"headers": {"Authorization": "Bearer nope"}}, 401),
    (FEED, "DELETE", EVENTS, {}, 405),
    (SEND, "POST", f"{MISSING}/test", {"token": False}, 401),
    (SEND, "POST", f"{MISSING}/test", {}, 404),
    (SEND, "GET", f"{MISSING}/test", {}, 405),
    (LIST_DELIVERIES, "GET", f"{DELIVERIES}?state=sent", {}, 400),
    (LIST_DELIVERIES, "GET", f"{DELIVERIES}?limit=201", {}, 400),
    (LIST_DELIVERIES, "GET", f"{DELIVERIES}?cursor=dlv_1", {}, 400),
    (LIST_DELIVERIES, "GET", DELIVERIES, {"token": False}, 401),
    (LIST_DELIVERIES, "POST", DELIVERIES, {}, 405),
    (RETRY_ONE, "POST", NO_DELIVERY, {"token": False}, 401),
    (RETRY_ONE, "POST", NO_DELIVERY, {}, 404),
    (RETRY_ONE, "GET", NO_DELIVERY, {}, 405),
    (METRICS, "GET", "/metrics", {"headers": {"Authorization": "Basic eDp5"}}, 401),
    *(
        case
        for operation, url in (
            (ADD_ENDPOINT, ENDPOINTS),
            (CHANGE_ENDPOINT, NO_ENDPOINT),
            (ROTATE_SECRET, f"{NO_ENDPOINT}/rotate-secret"),
            (REPLAY_ENDPOINT, f"{NO_ENDPOINT}/replay"),
            (PREVIEW, PREVIEW[1]),
        )
        for case in _body_errors(operation, url)
    ),
    (PREVIEW, "GET", PREVIEW[1], {}, 405),
    (ADD_ENDPOINT, "PUT", ENDPOINTS, {}, 405),
    (LIST_ENDPOINTS, "GET", ENDPOINTS, {"token": False}, 401),
    (LIST_ENDPOINTS, "DELETE", ENDPOINTS, {}, 405),
    (SHOW_ENDPOINT, "GET", NO_ENDPOINT, {"token": False}, 401),
    (SHOW_ENDPOINT, "GET", NO_ENDPOINT, {}, 404),
    (SHOW_ENDPOINT, "POST", NO_ENDPOINT, {}, 405),
    (CHANGE_ENDPOINT, "PATCH", NO_ENDPOINT, {"json": {"description": "x"}}, 404),
    (CHANGE_ENDPOINT, "PUT", NO_ENDPOINT, {}, 405),
    (DELETE_ENDPOINT, "DELETE", NO_ENDPOINT, {"token": False}, 401),
    (DELETE_ENDPOINT, "DELETE", NO_ENDPOINT, {}, 404),
    (DELETE_ENDPOINT, "PUT", NO_ENDPOINT, {}, 405),
    (ROTATE_SECRET, "POST", f"{NO_ENDPOINT}/rotate-secret", {}, 404),
    (ROTATE_SECRET, "GET", f"{NO_ENDPOINT}/rotate-secret", {}, 405),
    (REPLAY_ENDPOINT, "POST", f"{NO_ENDPOINT}/replay", {}, 404),
    (REPLAY_ENDPOINT, "GET", f"{NO_ENDPOINT}/replay", {}, 405),
]


@pytest.mark.parametrize(("operation", "method", "url", "kwargs", "status"), ERROR_CASES)
def test_error_answers_match_the_document(
    client, auth_headers, spec, operation, method, url, kwargs, status
):
    kwargs = dict(kwargs)
    headers = {**(auth_headers if kwargs.pop("token", True) else {}), **kwargs.pop("headers", {})}
    response = client.open(url, method=method, headers=headers, **kwargs)
    assert response.status_code == status
    problem = spec.check(response, *operation)
    assert problem["status"] == status
    if status == 422:
        assert {e["pointer"] for e in problem["errors"]} == {f"#/{INVALID[operation][0]}", "#/x"}


#: Every operation taking a token, as an address that sent too many wrong ones meets it.
THROTTLED_CASES = [
    (CREATE, "POST", WATCHES),
    (LIST, "GET", WATCHES),
    (SHOW, "GET", MISSING),
    (STOP, "DELETE", MISSING),
    (SEND, "POST", f"{MISSING}/test"),
    (FEED, "GET", EVENTS),
    (LIST_DELIVERIES, "GET", DELIVERIES),
    (RETRY_ONE, "POST", NO_DELIVERY),
    (METRICS, "GET", "/metrics"),
    (ADD_ENDPOINT, "POST", ENDPOINTS),
    (LIST_ENDPOINTS, "GET", ENDPOINTS),
    (SHOW_ENDPOINT, "GET", NO_ENDPOINT),
    (CHANGE_ENDPOINT, "PATCH", NO_ENDPOINT),
    (DELETE_ENDPOINT, "DELETE", NO_ENDPOINT),
    (ROTATE_SECRET, "POST", f"{NO_ENDPOINT}/rotate-secret"),
    (REPLAY_ENDPOINT, "POST", f"{NO_ENDPOINT}/replay"),
    (PREVIEW, "POST", PREVIEW[1]),
]


def test_a_throttled_address_gets_the_documented_429(client, auth_headers, spec):
    from app.web.throttle import MAX_FAILURES

    for _ in range(MAX_FAILURES):
        assert client.get(WATCHES, headers={"Authorization": "Bearer nope"}).status_code == 401
    for operation, method, url in THROTTLED_CASES:
        response = client.open(url, method=method, headers=auth_headers)
        assert response.status_code == 429
        assert spec.check(response, *operation)["status"] == 429


def test_a_reused_idempotency_key_is_the_documented_409(client, auth_headers, spec):
    headers = {**auth_headers, "Idempotency-Key": "key-2"}
    client.post(WATCHES, json=BODY, headers=headers)
    response = client.post(WATCHES, json={**BODY, "asset_id": "other"}, headers=headers)
    assert response.status_code == 409
    spec.check(response, "POST", WATCHES)


def test_every_documented_error_of_a_served_operation_is_exercised(spec):
    exercised = {(*operation, status) for operation, _, _, _, status in ERROR_CASES}
    exercised |= {("POST", WATCHES, 409), ("POST", RETRY, 409)}
    # tests/test_openapi_endpoints.py: the endpoints' conflicts
    exercised |= {(*ADD_ENDPOINT, 409), (*DELETE_ENDPOINT, 409), (*ROTATE_SECRET, 409)}
    exercised |= {(*operation, 429) for operation, _, _ in THROTTLED_CASES}
    documented = {
        (*key, int(status))
        for key, operation in spec.operations().items()
        if PLANNED_KEY not in operation
        for status in operation["responses"]
        if status.startswith("4")
    }
    assert exercised == documented


VALID_TARGET = {"type": "webhook", "url": "https://hooks.example.test/mi"}
REQUEST_SAMPLES = [
    ({}, True),
    ({"workspace": "a b"}, False),
    ({"workspace": 1.5}, False),
    ({"workspace": True}, False),
    ({"asset_id": "x" * 129}, False),
    ({"api": None}, True),
    ({"api": "v9"}, False),
    ({"labels": {"k\u0001": "v"}}, False),
    ({"labels": {"k": "line\nbreak"}}, False),
    ({"labels": {"": "v"}}, False),
    ({"labels": {"k": "v" * 257}}, False),
    ({"labels": {f"k{n}": "v" for n in range(21)}}, False),
    ({"events": ["analysis.status_changed"]}, True),
    ({"events": ["analysis.unknown"]}, False),
    ({"events": []}, False),
    ({"timeout_seconds": 60}, True),
    ({"timeout_seconds": 86400.5}, True),
    ({"timeout_seconds": "600"}, False),
    ({"timeout_seconds": True}, False),
    ({"timeout_seconds": 59.9}, False),
    ({"timeout_seconds": 30 * 86400 + 1}, False),
    ({"targets": []}, False),
    ({"targets": [VALID_TARGET] * 11}, False),
    ({"targets": [{"type": "email", "to": "a@example.test"}]}, False),
    ({"targets": [{"type": "slack", "channel": "bad channel"}]}, False),
    ({"targets": [{**VALID_TARGET, "extra": 1}]}, False),
    ({"targets": [{"endpoint": "cms"}, {"endpoint": "ept_01JD3Q00000000000000000000"}]}, True),
    ({"targets": [{"endpoint": "cms"}, VALID_TARGET]}, True),
    ({"targets": [{"endpoint": "cms", "type": "webhook"}]}, False),
    ({"targets": [{"endpoint": "cms", "url": "https://hooks.example.test/mi"}]}, False),
    ({"targets": [{"endpoint": "no spaces"}]}, False),
    ({"targets": [{"endpoint": ""}]}, False),
    ({"unknown": 1}, False),
]


@pytest.mark.parametrize(("change", "valid"), REQUEST_SAMPLES, ids=repr)
def test_the_request_schema_judges_bodies_as_the_model_does(spec, resolver, change, valid):
    body = {**BODY, **change}
    try:
        WatchCreate.model_validate(body, context=ValidationSettings(resolver=resolver))
        model_accepts = True
    except ValueError:
        model_accepts = False
    schema_accepts = not spec.schema_errors("WatchCreate", body)
    assert (model_accepts, schema_accepts) == (valid, valid)


def test_the_request_example_is_a_valid_registration(spec, resolver):
    operation = spec.operations()[CREATE]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    WatchCreate.model_validate(example, context=ValidationSettings(resolver=resolver))
    assert spec.schema_errors("WatchCreate", example) == []


def test_webhooks_describe_the_signed_envelope(spec):
    receiver = spec.document["webhooks"]["event"]["post"]
    headers = {p["name"] for p in receiver["parameters"] if p["in"] == "header"}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    schema = receiver["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/EventEnvelope"}
    watch = {"id": MISSING.rpartition("/")[2], "labels": {}, "created_at": "2026-11-22T12:00:00Z"}
    watch |= {"workspace": "w", "project_id": "1", "asset_id": "2", "api": "assets"}
    contract_example = _envelope("watch.expired", watch, reason="expired")
    assert spec.schema_errors("EventEnvelope", contract_example) == []
    contract_example["data"]["watch"]["reason"] = None
    assert spec.schema_errors("EventEnvelope", contract_example)


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value or "" for name, value in attrs if name in ("src", "href")]


def test_docs_renders_the_document_with_same_origin_assets_only(client):
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "http://" not in page
    assert "https://" not in page
    assert '"/openapi.json"' in page
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    parser = _Assets()
    parser.feed(page)
    files = {url.rpartition("/")[2] for url in parser.urls}
    assert files >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for url in parser.urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.data, url
        asset.close()


def test_test_sends_and_deliveries_match_the_document(app_factory, receiver, auth_headers):
    app = app_factory(BRIDGE_ALLOW_PRIVATE_URLS="true")
    client = app.test_client()
    spec = Spec(client.get("/openapi.json").get_json())
    receiver.default = Answer(status=500)
    target = {"type": "webhook", "url": f"{receiver.url}/hook"}
    watch = client.post(WATCHES, json={**BODY, "targets": [target]}, headers=auth_headers).json
    sent = client.post(f"{WATCHES}/{watch['id']}/test", headers=auth_headers)
    assert spec.check(sent, *SEND)["results"][0]["outcome"] == "retry"

    receiver_side = spec.document["webhooks"]["event"]["post"]
    (request,) = receiver.requests
    for parameter in receiver_side["parameters"]:
        spec.validator(parameter["schema"]).validate(request.headers[parameter["name"]])
    assert spec.schema_errors("EventEnvelope", json.loads(request.body)) == []

    listed = client.get(f"{DELIVERIES}?state=failed&limit=1", headers=auth_headers)
    (failed,) = spec.check(listed, *LIST_DELIVERIES)["items"]
    retry = f"{DELIVERIES}/{failed['id']}/retry"
    assert spec.check(client.post(retry, headers=auth_headers), *RETRY_ONE)["state"] == "pending"
    again = client.post(retry, headers=auth_headers)
    assert again.status_code == 409
    spec.check(again, *RETRY_ONE)
