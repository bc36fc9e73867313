"""Signature v2 verification: the pure verifier against the fixed test vector, then over real HTTP.

The vector's headers are written literally here, and the HTTP tests sign with an HMAC written in
this file, so neither depends on the project's signer being right.
"""

import base64
import hashlib
import hmac
import time

import pytest
import requests

from app.simulator.verify import verify_request

VECTOR_URI = "/api/v1/workspaces/my-workspace/projects/1234/assets/5678/index/status"
VECTOR_TIMESTAMP_MS = 1700000000000
VECTOR_HEADERS = {
    "x-ncp-apigw-timestamp": "1700000000000",
    "x-ncp-iam-access-key": "ACCESS_KEY_ID",
    "x-ncp-apigw-signature-v2": "Cr30ryEQUJTfWd9r7RGmZkpouqADkGjgr5IdQ9zRQg8=",
}
VECTOR_CREDENTIALS = {"ACCESS_KEY_ID": "SECRET_KEY_EXAMPLE"}
MINUTE_MS = 60_000
AUTH_FAILED = {"error": {"errorCode": "200", "message": "Authentication Failed"}}


def verify(headers=None, now_ms=VECTOR_TIMESTAMP_MS, method="GET", uri=VECTOR_URI):
    headers = VECTOR_HEADERS if headers is None else headers
    return verify_request(method, uri, headers, VECTOR_CREDENTIALS, now_ms)


@pytest.mark.parametrize("offset_ms", [0, 4 * MINUTE_MS, -4 * MINUTE_MS, 5 * MINUTE_MS])
def test_vector_is_accepted_within_five_minutes(offset_ms):
    verdict = verify(now_ms=VECTOR_TIMESTAMP_MS + offset_ms)
    assert verdict.ok, verdict.reason


@pytest.mark.parametrize("offset_ms", [6 * MINUTE_MS, -6 * MINUTE_MS, 5 * MINUTE_MS + 1])
def test_vector_is_refused_more_than_five_minutes_away(offset_ms):
    verdict = verify(now_ms=VECTOR_TIMESTAMP_MS + offset_ms)
    assert not verdict.ok
    assert "timestamp" in verdict.reason


def test_wrong_signature_is_refused():
    headers = {
        **VECTOR_HEADERS,
        "x-ncp-apigw-signature-v2": "Dr30ryEQUJTfWd9r7RGmZkpouqADkGjgr5IdQ9zRQg8=",
    }
    verdict = verify(headers)
    assert not verdict.ok
    assert verdict.reason == "signature mismatch"


@pytest.mark.parametrize("missing", list(VECTOR_HEADERS))
def test_each_missing_header_is_refused(missing):
    headers = {name: value for name, value in VECTOR_HEADERS.items() if name != missing}
    verdict = verify(headers)
    assert not verdict.ok
    assert verdict.reason == f"missing header {missing}"


def test_empty_header_counts_as_missing():
    verdict = verify({**VECTOR_HEADERS, "x-ncp-apigw-signature-v2": ""})
    assert not verdict.ok


def test_unknown_access_key_is_refused():
    verdict = verify({**VECTOR_HEADERS, "x-ncp-iam-access-key": "OTHER_KEY"})
    assert (verdict.ok, verdict.reason) == (False, "unknown access key")


@pytest.mark.parametrize(
    "timestamp", ["abc", "1700000000000.0", "-1700000000000", " 1700000000000"]
)
def test_non_numeric_timestamp_is_refused(timestamp):
    verdict = verify({**VECTOR_HEADERS, "x-ncp-apigw-timestamp": timestamp})
    assert (verdict.ok, verdict.reason) == (False, "timestamp is not decimal milliseconds")


@pytest.mark.parametrize(
    ("method", "uri"),
    [
        ("POST", VECTOR_URI),
        ("GET", VECTOR_URI + "?x=1"),
        ("GET", VECTOR_URI.replace("5678", "5679")),
    ],
)
def test_signature_covers_method_and_uri(method, uri):
    assert not verify(method=method, uri=uri).ok


def test_header_names_are_case_insensitive():
    headers = {name.title(): value for name, value in VECTOR_HEADERS.items()}
    assert verify(headers).ok


def test_non_ascii_signature_is_refused_not_crashed():
    verdict = verify({**VECTOR_HEADERS, "x-ncp-apigw-signature-v2": "서명"})
    assert not verdict.ok


# Over real HTTP, signed by hand.


def hand_signed(method, uri, access_key, secret_key, timestamp_ms):
    """The three headers, computed here from the documented algorithm (not the project's signer)."""
    message = f"{method} {uri}\n{timestamp_ms}\n{access_key}".encode()
    digest = hmac.new(secret_key.encode(), message, hashlib.sha256).digest()
    return {
        "x-ncp-apigw-timestamp": str(timestamp_ms),
        "x-ncp-iam-access-key": access_key,
        "x-ncp-apigw-signature-v2": base64.b64encode(digest).decode(),
    }


def now_ms():
    return time.time_ns() // 1_000_000


@pytest.fixture
def asset_uri(sim_control):
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZING"}).raise_for_status()
    return "/api/v1/workspaces/ws/projects/1/assets/a1/index/status"


@pytest.mark.parametrize(
    ("offset_ms", "expected"),
    [
        (0, 200),
        (4 * MINUTE_MS, 200),
        (-4 * MINUTE_MS, 200),
        (6 * MINUTE_MS, 401),
        (-6 * MINUTE_MS, 401),
    ],
)
def test_http_timestamp_window(simulator, asset_uri, offset_ms, expected):
    headers = hand_signed(
        "GET", asset_uri, "test-access-key", "test-secret-key", now_ms() + offset_ms
    )
    response = requests.get(simulator.url + asset_uri, headers=headers, timeout=5)
    assert response.status_code == expected
    if expected == 401:
        assert response.json() == AUTH_FAILED
    else:
        assert response.json()["result"]["status"] == "ANALYZING"


@pytest.mark.parametrize(
    "spoil",
    [
        {"x-ncp-apigw-signature-v2": "AAAA"},
        {"x-ncp-iam-access-key": "someone-else"},
        {"x-ncp-apigw-timestamp": "yesterday"},
    ],
)
def test_http_bad_headers_get_the_gateway_401(simulator, sim_control, asset_uri, spoil):
    headers = {
        **hand_signed("GET", asset_uri, "test-access-key", "test-secret-key", now_ms()),
        **spoil,
    }
    response = requests.get(simulator.url + asset_uri, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == AUTH_FAILED
    assert sim_control.get("/stats").json()["auth_failures"] == 1


@pytest.mark.parametrize("missing", list(VECTOR_HEADERS))
def test_http_missing_header_gets_401(simulator, asset_uri, missing):
    headers = hand_signed("GET", asset_uri, "test-access-key", "test-secret-key", now_ms())
    del headers[missing]
    response = requests.get(simulator.url + asset_uri, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == AUTH_FAILED


def test_http_wrong_secret_gets_401(simulator, asset_uri):
    headers = hand_signed("GET", asset_uri, "test-access-key", "not-the-secret", now_ms())
    response = requests.get(simulator.url + asset_uri, headers=headers, timeout=5)
    assert response.status_code == 401


def test_http_query_string_is_part_of_the_signed_uri(simulator, sim_control):
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZING"}).raise_for_status()
    path = "/api/v1/workspaces/ws/projects/1/assets"
    target = path + "?pageNum=1&pageSize=100"
    good = hand_signed("GET", target, "test-access-key", "test-secret-key", now_ms())
    response = requests.get(simulator.url + target, headers=good, timeout=5)
    assert response.status_code == 200
    assert [a["assetId"] for a in response.json()["result"]["content"]] == ["a1"]
    path_only = hand_signed("GET", path, "test-access-key", "test-secret-key", now_ms())
    assert requests.get(simulator.url + target, headers=path_only, timeout=5).status_code == 401


def test_http_the_literal_vector_verifies_on_a_clock_set_near_it(simulator, sim_control):
    """The simulator's gateway clock moved to 4 (then 6) minutes after the vector's timestamp."""
    simulator.state.add_credentials("ACCESS_KEY_ID", "SECRET_KEY_EXAMPLE")
    sim_control.put("/assets/my-workspace/1234/5678", json={"status": "ANALYZE_COMPLETED"})
    url = simulator.url + VECTOR_URI
    for minutes, expected in ((4, 200), (6, 401), (-6, 401)):
        offset = (VECTOR_TIMESTAMP_MS + minutes * MINUTE_MS - now_ms()) / 1000
        sim_control.put("/config", json={"clock_offset_seconds": offset}).raise_for_status()
        response = requests.get(url, headers=VECTOR_HEADERS, timeout=5)
        assert response.status_code == expected, minutes


def test_http_clock_offset_simulates_skew(simulator, sim_control, asset_uri):
    sim_control.put("/config", json={"clock_offset_seconds": 400}).raise_for_status()
    on_time = hand_signed("GET", asset_uri, "test-access-key", "test-secret-key", now_ms())
    assert requests.get(simulator.url + asset_uri, headers=on_time, timeout=5).status_code == 401
    ahead = hand_signed("GET", asset_uri, "test-access-key", "test-secret-key", now_ms() + 400_000)
    assert requests.get(simulator.url + asset_uri, headers=ahead, timeout=5).status_code == 200


def test_control_api_needs_no_signature(simulator):
    response = requests.get(simulator.url + "/_sim/health", timeout=5)
    assert response.json() == {"ok": True}


def test_unknown_upstream_path_is_authenticated_first(simulator, sim_upstream):
    assert requests.get(simulator.url + "/api/v1/nowhere", timeout=5).status_code == 401
    response = sim_upstream.request("GET", "/api/v1/nowhere")
    assert response.status_code == 404
    assert response.json() == {"error": {"errorCode": "300", "message": "Not Found"}}
