"""Classification of status-endpoint answers, as pure functions of (status, headers, body, now)."""

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.upstream.outcomes import PollOutcome, classify_response, parse_retry_after

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def classify(status, body, headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return classify_response(status, headers or {}, raw, NOW)


def ok_body(**result):
    return {"code": "0", "message": "success", "result": result}


def test_status_with_index_id():
    result = classify(
        200, ok_body(status="ANALYZE_COMPLETED", analyzeStatusMessage=None, indexId=1001)
    )
    assert result.outcome is PollOutcome.STATUS
    assert (result.status, result.index_id, result.message) == ("ANALYZE_COMPLETED", 1001, None)


@pytest.mark.parametrize("field", ["analyzeStatusMessage", "analysisStatusMessage"])
def test_both_message_spellings(field):
    result = classify(200, ok_body(status="ANALYZE_FAIL", **{field: "영상 파싱 실패"}))
    assert result.status == "ANALYZE_FAIL"
    assert result.message == "영상 파싱 실패"


@pytest.mark.parametrize("code", ["0", 0])
def test_code_as_string_or_number(code):
    result = classify(200, {"code": code, "message": "success", "result": {"status": "ANALYZING"}})
    assert result.outcome is PollOutcome.STATUS
    assert result.upstream_code == "0"


def test_missing_index_id_and_extra_fields_are_fine():
    result = classify(200, {"result": {"status": "ANALYZING", "progress": 42}, "extra": [1]})
    assert (result.outcome, result.status, result.index_id) == (
        PollOutcome.STATUS,
        "ANALYZING",
        None,
    )


def test_index_id_as_numeric_string_is_read():
    assert classify(200, ok_body(status="ANALYZE_COMPLETED", indexId="77")).index_id == 77


def test_unknown_status_is_observed_not_rejected():
    result = classify(200, ok_body(status="ANALYZE_PAUSED"))
    assert (result.outcome, result.status) == (PollOutcome.STATUS, "ANALYZE_PAUSED")


@pytest.mark.parametrize(
    "body",
    [
        b"<html>gateway</html>",
        b"",
        b"\xff\xfe",
        json.dumps([1, 2]).encode(),
        json.dumps({"data": {}}).encode(),
        json.dumps(ok_body(status=17)).encode(),
        json.dumps(ok_body(status="x" * 200)).encode(),
    ],
)
def test_malformed_or_unexpected_success_bodies_are_transient(body):
    result = classify(200, body)
    assert result.outcome is PollOutcome.TRANSIENT
    assert result.detail


@pytest.mark.parametrize("error_code", ["200", 210, "210"])
def test_401_is_a_bridge_wide_auth_problem(error_code):
    result = classify(401, {"error": {"errorCode": error_code, "message": "Authentication Failed"}})
    assert result.outcome is PollOutcome.AUTH
    assert result.upstream_code == str(error_code)
    assert result.message == "Authentication Failed"


@pytest.mark.parametrize("status", [404, 410])
def test_404_and_410_mean_not_found(status):
    assert classify(status, {"error": {"errorCode": "300", "message": "Not Found"}}).outcome is (
        PollOutcome.NOT_FOUND
    )


def test_429_with_seconds():
    result = classify(429, {"error": {"errorCode": "420"}}, {"Retry-After": "7"})
    assert (result.outcome, result.retry_after) == (PollOutcome.RATE_LIMITED, 7.0)


def test_429_with_http_date():
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    result = classify(429, {"error": {"errorCode": "400"}}, {"Retry-After": later})
    assert result.retry_after == pytest.approx(90.0)


def test_429_without_retry_after():
    result = classify(429, b"")
    assert (result.outcome, result.retry_after) == (PollOutcome.RATE_LIMITED, None)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_transient(status):
    assert classify(status, {"error": {"errorCode": "500"}}).outcome is PollOutcome.TRANSIENT


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": {"errorCode": 100, "message": "Bad Request"}}),
        (413, {"error": {"errorCode": "430", "message": "Entity Too Large"}}),
        (400, {"code": "10001", "message": "Invalid Request."}),
        (400, {"responseError": {"code": "10001", "message": "Invalid Request."}}),
    ],
)
def test_other_client_errors_are_permanent_with_upstream_text(status, body):
    result = classify(status, body)
    assert result.outcome is PollOutcome.PERMANENT
    assert result.message in ("Bad Request", "Entity Too Large", "Invalid Request.")


def test_service_error_inside_a_200_is_permanent():
    result = classify(200, {"code": 10001, "message": "Invalid Request."})
    assert (result.outcome, result.upstream_code) == (PollOutcome.PERMANENT, "10001")


def test_redirects_are_transient():
    assert classify(302, b"").outcome is PollOutcome.TRANSIENT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("2.5", 2.5),
        ("7", 7.0),
        # A peer may slow the bridge down, never make it spin or stall: 1 s .. 1 h.
        ("0", 1.0),
        ("-3", 1.0),
        ("0.001", 1.0),
        ("86400", 3600.0),
        ("inf", 3600.0),
        ("1e300", 3600.0),
        ("nan", 3600.0),
        ("soon", 3600.0),
    ],
)
def test_parse_retry_after_is_bounded_to_one_second_and_one_hour(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_date_in_the_past_waits_the_minimum():
    earlier = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 1.0
