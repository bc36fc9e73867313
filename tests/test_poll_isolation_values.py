"""Upstream values the database cannot take are cleaned or refused when an answer is classified (pure
functions of the answer), and cut to their column where they are written."""

import json
from datetime import UTC, datetime

import pytest

from app.models import Asset, BridgeState
from app.upstream.outcomes import MAX_DETAIL, PollOutcome, classify_response, storable_text
from app.worker.poll_rules import fit

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
OUT_OF_RANGE = "unexpected answer: indexId out of range"


def classify(status, body, headers=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return classify_response(status, headers or {}, raw, NOW)


def ok_body(**result):
    return {"code": "0", "message": "success", "result": result}


def test_storable_text_strips_nul_and_lone_surrogates_and_cuts():
    assert storable_text("a\x00b\ud800c\udfffd", 100) == "abcd"
    assert storable_text("\x00" * 10 + "x" * 10, 5) == "xxxxx"  # cut after stripping
    assert storable_text("한국어 ✓", 100) == "한국어 ✓"  # everything else is kept


@pytest.mark.parametrize("field", ["analyzeStatusMessage", "analysisStatusMessage"])
def test_nul_and_surrogates_are_stripped_from_status_messages(field):
    # json.dumps writes them as \u0000 and \ud800 escapes, as an upstream would.
    result = classify(200, ok_body(status="ANALYZE_FAIL", **{field: "person\x00 failure\ud800"}))
    assert (result.outcome, result.message) == (PollOutcome.STATUS, "person failure")


def test_a_message_of_nothing_storable_is_no_message():
    result = classify(200, ok_body(status="ANALYZING", analyzeStatusMessage="\x00\x00"))
    assert (result.outcome, result.message) == (PollOutcome.STATUS, None)


def test_nul_is_stripped_from_error_messages_codes_and_details():
    body = {"error": {"errorCode": "2\x0000", "message": "Authentication\x00 Failed"}}
    result = classify(401, body)
    assert result.outcome is PollOutcome.AUTH
    assert (result.message, result.upstream_code) == ("Authentication Failed", "200")
    assert result.detail == "HTTP 401: Authentication Failed"


def test_a_2000_character_401_message_fits_its_columns():
    result = classify(401, {"error": {"errorCode": "200", "message": "m" * 2000}})
    assert result.outcome is PollOutcome.AUTH
    assert len(result.detail) == MAX_DETAIL == Asset.__table__.c.last_error.type.length
    # The message itself goes to upstream_auth_detail: the writer cuts it to that column.
    column = BridgeState.__table__.c.upstream_auth_detail
    assert len(fit(result.message, column)) == column.type.length == 512
    assert fit(None, column) is None


def test_service_error_text_is_cleaned_too():
    result = classify(400, {"code": "10001", "message": "bad\x00 request" + "x" * 5000})
    assert result.outcome is PollOutcome.PERMANENT
    assert result.message.startswith("bad request")
    assert len(result.message) == 4000


@pytest.mark.parametrize(
    "index_id",
    [2**63, 2**64, -(2**63) - 1, "9223372036854775808", "18446744073709551616", "9" * 5000],
)
def test_index_id_outside_signed_64_bits_is_an_unexpected_answer(index_id):
    result = classify(200, ok_body(status="ANALYZE_COMPLETED", indexId=index_id))
    assert result.outcome is PollOutcome.TRANSIENT
    assert result.detail == OUT_OF_RANGE
    assert (result.status, result.index_id, result.message) == (None, None, None)


@pytest.mark.parametrize(
    ("index_id", "expected"),
    [(2**63 - 1, 2**63 - 1), (-(2**63), -(2**63)), ("0009223372036854775807", 2**63 - 1)],
)
def test_index_id_at_the_ends_of_the_range_is_kept(index_id, expected):
    result = classify(200, ok_body(status="ANALYZE_COMPLETED", indexId=index_id))
    assert (result.outcome, result.index_id) == (PollOutcome.STATUS, expected)


@pytest.mark.parametrize("index_id", ["²", "١٢٣", "12a", 1.5])
def test_index_id_that_is_not_ascii_digits_is_ignored(index_id):
    result = classify(200, ok_body(status="ANALYZING", indexId=index_id))
    assert (result.outcome, result.index_id) == (PollOutcome.STATUS, None)


def test_a_status_with_a_trailing_newline_is_not_a_status():
    result = classify(200, ok_body(status="ANALYZING\n"))
    assert result.outcome is PollOutcome.TRANSIENT
    assert result.status is None


@pytest.mark.parametrize("value", ["1e300", "inf", "nan", "soon"])
def test_a_429_with_an_unusable_retry_after_waits_the_longest_honoured_pause(value):
    result = classify(429, {"error": {"errorCode": "420"}}, {"Retry-After": value})
    assert (result.outcome, result.retry_after) == (PollOutcome.RATE_LIMITED, 3600.0)
