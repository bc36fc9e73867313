"""Errors under ``/api/`` are problem+json (400, 401, 404, 405, 413, 415), and only bearer tokens open it."""

import json

import pytest

from tests.watchtools import assert_problem, watch_body

WATCHES = "/api/v1/watches"
MISSING = "/api/v1/watches/wch_01JD3Q00000000000000000000"


def post_raw(client, headers, data, content_type="application/json"):
    return client.post(WATCHES, data=data, content_type=content_type, headers=headers)


# --- malformed bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"{", b'{"workspace": "w",}', b"", b"{'workspace': 'w'}", b"NaN-ish", b'{"a": 1} trailing'],
    ids=repr,
)
def test_malformed_json_is_400(client, auth_headers, data):
    assert_problem(post_raw(client, auth_headers, data), 400)


def test_invalid_utf8_is_400(client, auth_headers):
    body = assert_problem(post_raw(client, auth_headers, b'{"workspace": "\xff\xfe"}'), 400)
    assert "UTF-8" in body["detail"]


def test_deeply_nested_json_is_400_not_500(client, auth_headers):
    depth = 30_000  # fits in 64 KiB, deeper than the parser's recursion limit
    assert_problem(post_raw(client, auth_headers, b"[" * depth + b"]" * depth), 400)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_a_body_that_is_not_json_is_415(client, auth_headers, content_type):
    data = json.dumps(watch_body()).encode()
    headers = dict(auth_headers)
    if content_type is None:
        response = client.post(WATCHES, data=data, headers=headers)
    else:
        response = post_raw(client, headers, data, content_type)
    assert_problem(response, 415)
    assert client.get(WATCHES, headers=auth_headers).get_json()["items"] == []


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/merge-patch+json"]
)
def test_json_content_types_with_parameters_or_suffixes_are_accepted(
    client, auth_headers, content_type
):
    response = post_raw(client, auth_headers, json.dumps(watch_body()), content_type)
    assert response.status_code == 201, response.get_data(as_text=True)


def padded_body(size):
    """A valid registration of exactly ``size`` bytes (padding in a label's value is not enough:
    values stop at 256, so the padding is whitespace, which JSON ignores)."""
    data = json.dumps(watch_body()).encode()
    return data + b" " * (size - len(data))


def test_a_body_of_exactly_64_kib_is_accepted(client, auth_headers):
    data = padded_body(64 * 1024)
    assert len(data) == 65536
    assert post_raw(client, auth_headers, data).status_code == 201


def test_a_body_over_64_kib_is_413(client, auth_headers):
    response = post_raw(client, auth_headers, padded_body(64 * 1024 + 1))
    assert_problem(response, 413)
    assert client.get(WATCHES, headers=auth_headers).get_json()["items"] == []


# --- routes and methods ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v2/watches", "/api/", "/api/x/y/z"])
def test_unknown_routes_under_api_are_problem_json_404(client, auth_headers, path):
    assert_problem(client.get(path, headers=auth_headers), 404)


def test_unknown_routes_elsewhere_are_not_problem_json(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype != "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", WATCHES, {"GET", "POST"}),
        ("DELETE", WATCHES, {"GET", "POST"}),
        ("PATCH", MISSING, {"GET", "DELETE"}),
        ("POST", MISSING, {"GET", "DELETE"}),
        ("POST", "/api/v1/events", {"GET"}),
    ],
)
def test_a_wrong_method_is_problem_json_405_with_allow(client, auth_headers, method, path, allowed):
    response = client.open(path, method=method, headers=auth_headers, json={})
    assert_problem(response, 405)
    methods = {part.strip() for part in response.headers["Allow"].split(",")}
    assert allowed <= methods
    assert "PUT" not in methods


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_unknown_watch_id_is_404(client, auth_headers, method):
    body = assert_problem(client.open(MISSING, method=method, headers=auth_headers), 404)
    assert "wch_01JD3Q00000000000000000000" in body["detail"]


@pytest.mark.parametrize("watch_id", ["nope", "wch_", "1", "wch_01jd3q00000000000000000000"])
def test_a_malformed_watch_id_is_404_too(client, auth_headers, watch_id):
    assert_problem(client.get(f"{WATCHES}/{watch_id}", headers=auth_headers), 404)


# --- authentication -------------------------------------------------------------------------------

PROTECTED = [
    ("POST", WATCHES),
    ("GET", WATCHES),
    ("GET", MISSING),
    ("DELETE", MISSING),
    ("GET", "/api/v1/events"),
]


def assert_unauthorized(response):
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].split()[0] == "Bearer"


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong-token",
        "Bearer test-api-token-and-more",
        "Bearer test-api-toke",
        "Basic dGVzdC1hcGktdG9rZW46",  # "test-api-token:" in Basic form
        "Token test-api-token",
        "test-api-token",
    ],
)
def test_requests_without_a_valid_bearer_token_are_401(client, method, path, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.open(path, method=method, headers=headers, json=watch_body())
    assert_unauthorized(response)


def test_nothing_is_registered_without_a_token(client, auth_headers):
    assert_unauthorized(client.post(WATCHES, json=watch_body()))
    assert client.get(WATCHES, headers=auth_headers).get_json()["items"] == []


def test_the_scheme_is_case_insensitive(client):
    response = client.get(WATCHES, headers={"Authorization": "bearer test-api-token"})
    assert response.status_code == 200


def test_every_configured_token_is_accepted(app_factory):
    client = app_factory(BRIDGE_API_TOKENS="first-token, second-token").test_client()
    for token in ("first-token", "second-token"):
        assert client.get(WATCHES, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert_unauthorized(client.get(WATCHES, headers={"Authorization": "Bearer test-api-token"}))


def test_a_session_cookie_alone_is_not_an_api_credential(client, app):
    """A correctly signed session naming the accepted token (as a dashboard sign-in would) is
    still no way into the API: it takes the bearer token itself."""
    from app.web.auth import token_fingerprint

    serializer = app.session_interface.get_signing_serializer(app)
    session = {"signed_in_as": token_fingerprint("test-api-token"), "_fresh": True}
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], serializer.dumps(session))
    assert_unauthorized(client.get(WATCHES))
    assert_unauthorized(client.post(WATCHES, json=watch_body()))
    assert_unauthorized(client.get("/api/v1/events"))


def test_a_bad_token_is_401_before_the_body_is_judged(client):
    response = post_raw(client, {"Authorization": "Bearer wrong"}, b"{", "text/plain")
    assert_unauthorized(response)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_need_no_token(client, path):
    response = client.get(path)
    assert response.status_code in (200, 503)
    assert "WWW-Authenticate" not in response.headers
    assert response.is_json


def test_healthz_says_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
