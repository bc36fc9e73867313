"""The upstream client against the simulator over real HTTP: every answer becomes the right value."""

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.upstream.client import MAX_BODY_BYTES, MediaIntelligenceClient
from app.upstream.outcomes import PollOutcome
from app.upstream.statuses import KNOWN
from app.vocabulary import ApiGeneration

WS, PROJECT = "ws", "1"
ACCESS_KEY, SECRET_KEY = "test-access-key", "test-secret-key"  # the simulator fixture's keys


def put_asset(control, asset_id, **body):
    response = control.put(f"/assets/{WS}/{PROJECT}/{asset_id}", json=body)
    assert response.status_code in (200, 201), response.text


def add_fault(control, **body):
    response = control.post("/faults", json=body)
    assert response.status_code == 201, response.text


def poll(client, asset_id, generation=ApiGeneration.INDEX):
    return client.get_status(WS, PROJECT, asset_id, generation)


@pytest.mark.parametrize("generation", list(ApiGeneration))
@pytest.mark.parametrize("status", KNOWN)
def test_every_status_in_every_generation(sim_control, sim_client, status, generation):
    put_asset(
        sim_control, "a1", status=status, index_id=1001 if status == "ANALYZE_COMPLETED" else None
    )
    result = poll(sim_client, "a1", generation)
    assert result.outcome is PollOutcome.STATUS
    assert result.status == status
    assert result.index_id == (1001 if status == "ANALYZE_COMPLETED" else None)
    assert result.http_status == 200
    assert result.duration > 0


@pytest.mark.parametrize("field", ["analyzeStatusMessage", "analysisStatusMessage"])
@pytest.mark.parametrize("code_as_number", [False, True])
def test_failure_reason_in_either_spelling(sim_control, sim_client, field, code_as_number):
    put_asset(
        sim_control,
        "a1",
        status="ANALYZE_FAIL",
        message="인물 추출 실패",
        message_field=field,
        code_as_number=code_as_number,
    )
    result = poll(sim_client, "a1")
    assert (result.outcome, result.status, result.message) == (
        PollOutcome.STATUS,
        "ANALYZE_FAIL",
        "인물 추출 실패",
    )


def test_unknown_status_is_observed(sim_control, sim_client):
    put_asset(sim_control, "a1", status="ANALYZE_PAUSED")
    assert poll(sim_client, "a1").status == "ANALYZE_PAUSED"


def test_missing_asset_is_not_found(sim_client):
    result = poll(sim_client, "nowhere")
    assert (result.outcome, result.http_status, result.upstream_code) == (
        PollOutcome.NOT_FOUND,
        404,
        "300",
    )


@pytest.mark.parametrize("status_code", [404, 410])
def test_switched_off_generation_is_not_found(sim_control, sim_client, status_code):
    put_asset(sim_control, "a1", status="ANALYZING")
    response = sim_control.put(
        "/generations/video-assets", json={"enabled": False, "status_code": status_code}
    )
    assert response.status_code == 200, response.text
    gone = poll(sim_client, "a1", ApiGeneration.VIDEO_ASSETS)
    assert (gone.outcome, gone.http_status) == (PollOutcome.NOT_FOUND, status_code)
    assert poll(sim_client, "a1", ApiGeneration.ASSETS).status == "ANALYZING"


@pytest.mark.parametrize(
    ("fault", "outcome", "http_status"),
    [
        ({"kind": "http_error", "status": 500}, PollOutcome.TRANSIENT, 500),
        ({"kind": "http_error", "status": 503}, PollOutcome.TRANSIENT, 503),
        ({"kind": "http_error", "status": 504}, PollOutcome.TRANSIENT, 504),
        ({"kind": "http_error", "status": 400}, PollOutcome.PERMANENT, 400),
        ({"kind": "http_error", "status": 413}, PollOutcome.PERMANENT, 413),
        ({"kind": "service_error"}, PollOutcome.PERMANENT, 400),
        ({"kind": "service_error", "wrapped": True}, PollOutcome.PERMANENT, 400),
        ({"kind": "auth"}, PollOutcome.AUTH, 401),
        ({"kind": "rate_limit"}, PollOutcome.RATE_LIMITED, 429),
        ({"kind": "malformed"}, PollOutcome.TRANSIENT, 200),
        ({"kind": "unexpected"}, PollOutcome.TRANSIENT, 200),
    ],
)
def test_each_fault_kind_is_classified(sim_control, sim_client, fault, outcome, http_status):
    put_asset(sim_control, "a1", status="ANALYZING")
    add_fault(sim_control, **fault)
    result = poll(sim_client, "a1")
    assert (result.outcome, result.http_status) == (outcome, http_status)
    assert result.detail
    # The fault was used once; the next poll sees the asset again.
    assert poll(sim_client, "a1").status == "ANALYZING"


def test_service_error_keeps_upstream_text(sim_control, sim_client):
    put_asset(sim_control, "a1", status="ANALYZING")
    add_fault(sim_control, kind="service_error", code="10001", message="Invalid Request.")
    result = poll(sim_client, "a1")
    assert (result.upstream_code, result.message) == ("10001", "Invalid Request.")


def test_retry_after_in_seconds(sim_control, sim_client):
    put_asset(sim_control, "a1", status="ANALYZING")
    add_fault(sim_control, kind="rate_limit", retry_after="12")
    result = poll(sim_client, "a1")
    assert (result.outcome, result.retry_after) == (PollOutcome.RATE_LIMITED, 12.0)


def test_retry_after_as_http_date(sim_control, sim_client):
    put_asset(sim_control, "a1", status="ANALYZING")
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    add_fault(sim_control, kind="rate_limit", retry_after=when)
    result = poll(sim_client, "a1")
    assert result.outcome is PollOutcome.RATE_LIMITED
    assert 100 <= result.retry_after <= 121


def test_retry_after_on_503(sim_control, sim_client):
    put_asset(sim_control, "a1", status="ANALYZING")
    add_fault(sim_control, kind="http_error", status=503, retry_after="3")
    result = poll(sim_client, "a1")
    assert (result.outcome, result.retry_after) == (PollOutcome.TRANSIENT, 3.0)


def test_bad_secret_is_an_auth_outcome(simulator, sim_control):
    put_asset(sim_control, "a1", status="ANALYZING")
    with MediaIntelligenceClient(simulator.url, ACCESS_KEY, "wrong-secret") as client:
        result = poll(client, "a1")
    assert (result.outcome, result.http_status, result.upstream_code) == (
        PollOutcome.AUTH,
        401,
        "200",
    )


def test_clock_skew_is_an_auth_outcome(sim_control, sim_client):
    put_asset(sim_control, "a1", status="ANALYZING")
    assert sim_control.put("/config", json={"clock_offset_seconds": 600}).status_code == 200
    assert poll(sim_client, "a1").outcome is PollOutcome.AUTH


def test_slow_answer_past_connect_plus_read_timeout_is_transient(simulator, sim_control):
    """The whole request is bounded by the connect timeout plus the read timeout."""
    put_asset(sim_control, "a1", status="ANALYZING")
    add_fault(sim_control, kind="slow", delay_seconds=1.0)
    with MediaIntelligenceClient(
        simulator.url, ACCESS_KEY, SECRET_KEY, connect_timeout=0.1, read_timeout=0.2
    ) as client:
        result = poll(client, "a1")
    assert (result.outcome, result.detail) == (PollOutcome.TRANSIENT, "timeout")


def test_slow_answer_within_the_timeout_is_a_status(sim_control, sim_client):
    put_asset(sim_control, "a1", status="ANALYZING")
    add_fault(sim_control, kind="slow", delay_seconds=0.2)
    result = poll(sim_client, "a1")
    assert result.status == "ANALYZING"
    assert result.duration >= 0.2


def test_connection_refused_is_transient():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    with MediaIntelligenceClient(
        f"http://127.0.0.1:{port}", "ak", "sk", connect_timeout=1
    ) as client:
        result = poll(client, "a1")
    assert result.outcome is PollOutcome.TRANSIENT
    assert result.detail.startswith("connection error")


def test_two_hundred_polls_reuse_a_handful_of_connections(sim_control, sim_client):
    put_asset(sim_control, "a1", status="ANALYZING")
    before = sim_control.get("/stats").json()["connections"]
    results = [
        poll(sim_client, "a1", generation) for _ in range(67) for generation in ApiGeneration
    ]
    after = sim_control.get("/stats").json()
    assert len(results) == 201
    assert all(result.status == "ANALYZING" for result in results)
    assert after["requests"] >= 201
    assert after["connections"] - before <= 3


def test_asset_ids_are_path_escaped(sim_control, sim_client):
    put_asset(sim_control, "clip.v2_final-1", status="WAIT_ANALYZE")
    assert poll(sim_client, "clip.v2_final-1").status == "WAIT_ANALYZE"


def test_oversized_body_is_transient_and_the_connection_is_not_reused(receiver):
    from tests.receiver import Answer

    status_json = b'{"code":"0","message":"success","result":{"status":"ANALYZING"}}'
    receiver.answer(Answer(body=b"x" * (MAX_BODY_BYTES + 10)), Answer(body=status_json))
    with MediaIntelligenceClient(receiver.url, "ak", "sk") as client:
        oversized, following = poll(client, "a1"), poll(client, "a1")
    assert (oversized.outcome, oversized.http_status) == (PollOutcome.TRANSIENT, 200)
    assert oversized.detail == f"body larger than {MAX_BODY_BYTES} bytes"
    # The unread rest of the big body did not leak into the next answer.
    assert (following.outcome, following.status) == (PollOutcome.STATUS, "ANALYZING")
    assert [r.method for r in receiver.requests] == ["GET", "GET"]


def test_closing_twice_is_harmless_and_a_closed_client_refuses_work(sim_control, simulator):
    put_asset(sim_control, "a1", status="ANALYZING")
    client = MediaIntelligenceClient(simulator.url, ACCESS_KEY, SECRET_KEY)
    assert poll(client, "a1").status == "ANALYZING"
    client.close()
    client.close()
    with pytest.raises(RuntimeError, match="stopped"):
        poll(client, "a1")
