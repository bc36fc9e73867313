"""Fault injection and generation switches, observed over real HTTP and through the real client."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.upstream.outcomes import PollOutcome
from app.vocabulary import ApiGeneration

NORMAL = {"status": "ANALYZING", "analyzeStatusMessage": None}


@pytest.fixture(autouse=True)
def assets(sim_control):
    for asset_id in ("a1", "a2"):
        sim_control.put(f"/assets/ws/1/{asset_id}", json={"status": "ANALYZING"}).raise_for_status()


def add_fault(sim_control, **body):
    response = sim_control.post("/faults", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def assert_normal(response):
    assert response.status_code == 200
    assert response.json() == {"code": "0", "message": "success", "result": NORMAL}


@pytest.mark.parametrize(
    ("status", "error_code", "message"),
    [
        (None, "500", "Endpoint Error"),  # default 503
        (503, "500", "Endpoint Error"),
        (504, "510", "Endpoint Timeout"),
        (500, "900", "Unexpected Error"),
        (400, "100", "Bad Request Exception"),
        (413, "430", "Request Entity Too Large"),
    ],
)
def test_http_error_uses_the_gateway_table(sim_control, sim_upstream, status, error_code, message):
    body = {"kind": "http_error"} if status is None else {"kind": "http_error", "status": status}
    add_fault(sim_control, **body)
    response = sim_upstream.status("a1")
    assert response.status_code == (status or 503)
    assert response.json() == {"error": {"errorCode": error_code, "message": message}}
    assert "Retry-After" not in response.headers
    assert_normal(sim_upstream.status("a1"))  # count defaults to 1


def test_http_error_with_retry_after_and_own_code(sim_control, sim_upstream):
    add_fault(sim_control, kind="http_error", status=503, error_code=510, retry_after="7")
    response = sim_upstream.status("a1")
    assert (response.status_code, response.headers["Retry-After"]) == (503, "7")
    assert response.json()["error"]["errorCode"] == "510"


@pytest.mark.parametrize("retry_after", ["5", "Wed, 25 Nov 2026 18:00:00 GMT"])
def test_rate_limit(sim_control, sim_upstream, retry_after):
    add_fault(sim_control, kind="rate_limit", retry_after=retry_after)
    response = sim_upstream.status("a1")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == retry_after
    assert response.json() == {"error": {"errorCode": "420", "message": "Rate Limited"}}


def test_rate_limit_seen_by_the_client(sim_control, sim_client):
    add_fault(sim_control, kind="rate_limit", retry_after="5")
    result = sim_client.get_status("ws", "1", "a1", ApiGeneration.INDEX)
    assert (result.outcome, result.retry_after, result.upstream_code) == (
        PollOutcome.RATE_LIMITED,
        5.0,
        "420",
    )


def test_auth_fault_answers_401_but_is_not_a_signature_failure(sim_control, sim_upstream):
    add_fault(sim_control, kind="auth")
    response = sim_upstream.status("a1")
    assert response.status_code == 401
    assert response.json() == {"error": {"errorCode": "200", "message": "Authentication Failed"}}
    assert sim_control.get("/stats").json()["auth_failures"] == 0


def test_auth_fault_permission_denied(sim_control, sim_upstream):
    add_fault(sim_control, kind="auth", error_code="210", message="Permission Denied")
    assert sim_upstream.status("a1").json()["error"] == {
        "errorCode": "210",
        "message": "Permission Denied",
    }


@pytest.mark.parametrize(
    ("fault", "status", "body"),
    [
        ({}, 400, {"code": "10001", "message": "Invalid Request."}),
        (
            {"wrapped": True},
            400,
            {"responseError": {"code": "10001", "message": "Invalid Request."}},
        ),
        (
            {"status": 200, "code": 10023, "message": "Too many."},
            200,
            {"code": "10023", "message": "Too many."},
        ),
    ],
)
def test_service_error(sim_control, sim_upstream, fault, status, body):
    add_fault(sim_control, kind="service_error", **fault)
    response = sim_upstream.status("a1")
    assert (response.status_code, response.json()) == (status, body)


def test_slow_delays_then_answers_normally(sim_control, sim_upstream):
    add_fault(sim_control, kind="slow", delay_seconds=0.3)
    started = time.monotonic()
    response = sim_upstream.status("a1")
    assert time.monotonic() - started >= 0.3
    assert_normal(response)


def test_hold_until_released(sim_control, signed_client_factory, wait_until):
    add_fault(sim_control, kind="hold")
    client = signed_client_factory()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.status, "a1")
        wait_until(lambda: sim_control.get("/stats").json()["held"] == 1)
        assert sim_control.get("/assets/ws/1/a1").json()["in_flight"] == 1
        assert not pending.done()
        assert sim_control.post("/release").json() == {"released": 1}
        assert_normal(pending.result(timeout=5))
    assert sim_control.get("/stats").json()["held"] == 0


def test_hold_ends_by_itself_after_its_timeout(sim_control, sim_upstream):
    add_fault(sim_control, kind="hold", timeout_seconds=0.2)
    started = time.monotonic()
    response = sim_upstream.status("a1")
    assert time.monotonic() - started >= 0.2
    assert_normal(response)


def test_malformed_is_200_without_json(sim_control, sim_upstream, sim_client):
    add_fault(sim_control, kind="malformed", count=2)
    response = sim_upstream.status("a1")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    result = sim_client.get_status("ws", "1", "a1", ApiGeneration.INDEX)
    assert result.outcome is PollOutcome.TRANSIENT
    assert "malformed" in result.detail


def test_unexpected_is_200_json_of_another_shape(sim_control, sim_upstream, sim_client):
    add_fault(sim_control, kind="unexpected", count=2)
    response = sim_upstream.status("a1")
    assert response.status_code == 200
    assert "result" not in response.json()
    result = sim_client.get_status("ws", "1", "a1", ApiGeneration.INDEX)
    assert result.outcome is PollOutcome.TRANSIENT
    assert "unexpected" in result.detail


def test_unexpected_with_own_body(sim_control, sim_upstream):
    add_fault(sim_control, kind="unexpected", body=[1, 2, 3])
    assert sim_upstream.status("a1").json() == [1, 2, 3]


def test_count_is_consumed_per_matching_request(sim_control, sim_upstream):
    rule = add_fault(sim_control, kind="http_error", count=2)
    assert rule["id"] == "flt_1"
    assert (rule["count"], rule["remaining"], rule["matched"]) == (2, 2, 0)
    codes = [sim_upstream.status("a1").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    (listed,) = sim_control.get("/faults").json()["faults"]
    assert (listed["remaining"], listed["matched"]) == (0, 2)


def test_null_count_lasts_until_cleared(sim_control, sim_upstream):
    add_fault(sim_control, kind="http_error", count=None)
    assert [sim_upstream.status("a1").status_code for _ in range(4)] == [503] * 4
    assert sim_control.get("/faults").json()["faults"][0]["remaining"] is None
    assert sim_control.delete("/faults").status_code == 204
    assert sim_control.get("/faults").json() == {"faults": []}
    assert_normal(sim_upstream.status("a1"))


def test_asset_filter(sim_control, sim_upstream):
    add_fault(sim_control, kind="http_error", asset_id="a2")
    assert_normal(sim_upstream.status("a1"))
    assert sim_upstream.status("a2").status_code == 503


def test_generation_filter(sim_control, sim_upstream):
    add_fault(sim_control, kind="http_error", generation="video-assets")
    assert_normal(sim_upstream.status("a1", ApiGeneration.INDEX))
    assert_normal(sim_upstream.status("a1", ApiGeneration.ASSETS))
    assert sim_upstream.status("a1", ApiGeneration.VIDEO_ASSETS).status_code == 503


def test_first_matching_rule_wins_in_creation_order(sim_control, sim_upstream):
    add_fault(sim_control, kind="http_error", status=504, asset_id="a2")
    add_fault(sim_control, kind="rate_limit")
    add_fault(sim_control, kind="auth")
    assert sim_upstream.status("a1").status_code == 429  # the a2 rule does not match
    assert sim_upstream.status("a2").status_code == 504
    assert sim_upstream.status("a2").status_code == 401
    assert_normal(sim_upstream.status("a2"))


def test_faults_spare_the_neighbouring_endpoints(sim_control, sim_upstream):
    add_fault(sim_control, kind="http_error")
    listing = sim_upstream.request("GET", "/api/v1/workspaces/ws/projects/1/assets")
    assert listing.status_code == 200
    assert sim_upstream.status("a1").status_code == 503


def test_delete_one_fault(sim_control, sim_upstream):
    first = add_fault(sim_control, kind="http_error")
    add_fault(sim_control, kind="rate_limit")
    assert sim_control.delete(f"/faults/{first['id']}").status_code == 204
    assert sim_control.delete(f"/faults/{first['id']}").status_code == 404
    assert sim_upstream.status("a1").status_code == 429


@pytest.mark.parametrize("status_code", [404, 410])
def test_switched_off_generation(sim_control, sim_upstream, status_code):
    response = sim_control.put(
        "/generations/video-assets", json={"enabled": False, "status_code": status_code}
    )
    assert response.json() == {"video-assets": {"enabled": False, "status_code": status_code}}
    add_fault(sim_control, kind="http_error", count=None, generation="video-assets")
    for asset_id in ("a1", "never-created"):
        gone = sim_upstream.status(asset_id, ApiGeneration.VIDEO_ASSETS)
        assert gone.status_code == status_code
        assert "errorCode" in gone.json()["error"]
    if status_code == 404:
        assert gone.json() == {"error": {"errorCode": "300", "message": "Not Found"}}
    assert_normal(sim_upstream.status("a1", ApiGeneration.ASSETS))
    assert_normal(sim_upstream.status("a1", ApiGeneration.INDEX))
    assert sim_control.get("/generations").json() == {
        "video-assets": {"enabled": False, "status_code": status_code},
        "assets": {"enabled": True, "status_code": 404},
        "index": {"enabled": True, "status_code": 404},
    }
    sim_control.put("/generations/video-assets", json={"enabled": True}).raise_for_status()
    assert (
        sim_upstream.status("a1", ApiGeneration.VIDEO_ASSETS).status_code == 503
    )  # the fault again


def test_switched_off_generation_seen_by_the_client(sim_control, sim_client):
    sim_control.put("/generations/assets", json={"enabled": False, "status_code": 410})
    gone = sim_client.get_status("ws", "1", "a1", ApiGeneration.ASSETS)
    current = sim_client.get_status("ws", "1", "a1", ApiGeneration.INDEX)
    assert (gone.outcome, gone.http_status) == (PollOutcome.NOT_FOUND, 410)
    assert (current.outcome, current.status) == (PollOutcome.STATUS, "ANALYZING")


def test_retry_after_date_is_understood_by_the_client(sim_control, sim_client):
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    add_fault(sim_control, kind="rate_limit", retry_after=later)
    result = sim_client.get_status("ws", "1", "a1", ApiGeneration.INDEX)
    assert result.outcome is PollOutcome.RATE_LIMITED
    assert 3500 < result.retry_after <= 3600
