"""Every answer of a status endpoint, classified as a value (pure: no I/O, time passed in).

The rules follow the error table of ``media-intelligence-api.md``; nothing outside this package parses
upstream JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.http_semantics.retry_after import parse_retry_after
from app.vocabulary import PollFailureKind


class PollOutcome(StrEnum):
    """What one poll tells the bridge."""

    STATUS = "status"  # a status was observed
    TRANSIENT = "transient"  # 5xx, timeouts, connection errors, malformed or unexpected bodies
    RATE_LIMITED = "rate_limited"  # 429: slow the whole bridge down
    AUTH = "auth"  # 401: a credentials/clock problem of the whole bridge, not of this asset
    NOT_FOUND = "not_found"  # 404/410: the asset is missing, or this generation's path is gone
    PERMANENT = "permanent"  # other 4xx and service errors: this watch cannot succeed


@dataclass(frozen=True)
class PollResult:
    """One classified poll. ``detail`` is a short, secret-free description for records and logs."""

    outcome: PollOutcome
    status: str | None = None
    message: str | None = None
    index_id: int | None = None
    http_status: int | None = None
    upstream_code: str | None = None
    retry_after: float | None = None
    detail: str | None = None
    duration: float = 0.0
    #: NCP's ``x-ncp-request-id`` of the answer, when it carried one (what NCP support asks for).
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is PollOutcome.STATUS

    @property
    def failure_kind(self) -> PollFailureKind:
        """The contract's kind of a failed poll (a missing asset is permanent for its watches).
        Raises KeyError for a poll that did not fail."""
        return _FAILURE_KINDS[self.outcome]

    @property
    def failure_message(self) -> str:
        """What went wrong, for people: the bridge's short description and the upstream's own words."""
        detail = self.detail or self.outcome.value
        if self.message and self.message not in detail:
            return f"{detail}: {self.message}"
        return detail


_FAILURE_KINDS = {
    PollOutcome.TRANSIENT: PollFailureKind.TRANSIENT,
    PollOutcome.RATE_LIMITED: PollFailureKind.RATE_LIMITED,
    PollOutcome.AUTH: PollFailureKind.AUTH,
    PollOutcome.NOT_FOUND: PollFailureKind.PERMANENT,
    PollOutcome.PERMANENT: PollFailureKind.PERMANENT,
}

#: Statuses are opaque upstream words: accept unknown ones, but not arbitrary text.
_STATUS_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # fullmatch: ``$`` would allow a trailing newline
_MAX_MESSAGE = 4000
#: ``detail`` is recorded in 512-character columns (``assets.last_error``): it never holds more.
MAX_DETAIL = 512
#: What a text column cannot take: NUL (PostgreSQL refuses it in text) and lone surrogates (JSON's
#: ``"\ud800"`` decodes to one; no UTF-8 encoder, hence no database driver, accepts it).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: ``index_id`` columns are signed 64-bit integers.
_INDEX_ID_RANGE = range(-(2**63), 2**63)
_INDEX_ID_OUT_OF_RANGE = "unexpected answer: indexId out of range"
#: The API Gateway's id of an answer (case-insensitive, as every header).
REQUEST_ID_HEADER = "x-ncp-request-id"
MAX_REQUEST_ID = 128


def storable_text(value: str, limit: int) -> str:
    """``value`` without the characters a database text column refuses, cut to ``limit`` characters."""
    return _UNSTORABLE.sub("", value)[:limit]


def classify_response(
    http_status: int,
    headers: dict[str, str] | Any,
    body: bytes,
    now: datetime,
    duration: float = 0.0,
) -> PollResult:
    """Classify one HTTP answer of a status endpoint; ``duration`` (seconds) is the request's.

    Every text of the result can be stored as it is (see ``storable_text``): messages are cut to
    4,000 characters, ``detail`` to ``MAX_DETAIL``.
    """
    if 200 <= http_status < 300:
        # The steady state, thousands a second: the same result, built once.
        quick = _quick_status(http_status, headers, body, duration)
        if quick is not None:
            return quick
    result = _classify(http_status, headers, body, now)
    request_id = headers.get(REQUEST_ID_HEADER)
    if request_id:
        result = replace(result, request_id=storable_text(request_id, MAX_REQUEST_ID))
    result = _storable(result)
    return replace(result, duration=duration) if duration else result


def _quick_status(
    http_status: int, headers: dict[str, str] | Any, body: bytes, duration: float
) -> PollResult | None:
    """A 2xx answer with a status, classified exactly as ``_classify`` would in one construction;
    None for anything else (it takes the general path)."""
    payload = _json_or_none(body)
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("error"), dict) or isinstance(payload.get("responseError"), dict):
        return None
    result = payload.get("result")
    if not isinstance(result, dict):
        return None
    status = result.get("status")
    if not isinstance(status, str) or not _STATUS_RE.fullmatch(status):
        return None
    index_id = _index_id(result.get("indexId"))
    if index_id is not None and index_id not in _INDEX_ID_RANGE:
        return None
    request_id = headers.get(REQUEST_ID_HEADER)
    return PollResult(
        PollOutcome.STATUS,
        status=status,
        message=_status_message(result),
        index_id=index_id,
        http_status=http_status,
        upstream_code=_code_text(payload.get("code")),
        duration=duration,
        request_id=storable_text(request_id, MAX_REQUEST_ID) if request_id else None,
    )


def _classify(
    http_status: int, headers: dict[str, str] | Any, body: bytes, now: datetime
) -> PollResult:
    payload = _json_or_none(body)
    code, text = _error_fields(payload)
    retry_after = parse_retry_after(headers.get("Retry-After"), now)
    base = PollResult(
        PollOutcome.TRANSIENT, http_status=http_status, upstream_code=code, message=text
    )

    if 200 <= http_status < 300:
        return _classify_success(base, payload, body)
    if http_status in (401, 403):
        # 401 errorCode 200/210: bad key, signature, clock or permission; a bridge-wide problem.
        # 403 is undocumented; treating it like 401 keeps watches alive instead of failing them all.
        return replace(
            base, outcome=PollOutcome.AUTH, detail=f"HTTP {http_status}: {text or 'auth'}"
        )
    if http_status in (404, 410):
        # 404 errorCode 300: asset or path gone; 410 is how a retired generation may answer.
        return replace(base, outcome=PollOutcome.NOT_FOUND, detail=f"HTTP {http_status}")
    if http_status == 429:
        # errorCode 400/410/420: quota exceeded, throttled, rate limited. Slow down, honour Retry-After.
        return replace(
            base, outcome=PollOutcome.RATE_LIMITED, retry_after=retry_after, detail="HTTP 429"
        )
    if http_status == 408 or http_status >= 500:
        # 500/900, 503/500, 504/510 are transient per the gateway's table.
        return replace(base, retry_after=retry_after, detail=f"HTTP {http_status}")
    if 400 <= http_status < 500:
        # 400/100 bad request, 413/430 entity too large, service errors such as 10001: permanent.
        return replace(base, outcome=PollOutcome.PERMANENT, detail=f"HTTP {http_status}")
    return replace(base, detail=f"unexpected HTTP {http_status}")


def _classify_success(base: PollResult, payload: Any, body: bytes) -> PollResult:
    if payload is None:
        return replace(base, message=None, detail=f"malformed body ({len(body)} bytes, not JSON)")
    result = payload.get("result") if isinstance(payload, dict) else None
    status = result.get("status") if isinstance(result, dict) else None
    if isinstance(result, dict) and isinstance(status, str) and _STATUS_RE.fullmatch(status):
        index_id = _index_id(result.get("indexId"))
        if index_id is not None and index_id not in _INDEX_ID_RANGE:
            # Not a value the bridge can store or pass on as an integer: an answer to ask again.
            return replace(base, message=None, detail=_INDEX_ID_OUT_OF_RANGE)
        return PollResult(
            PollOutcome.STATUS,
            status=status,
            message=_status_message(result),
            index_id=index_id,
            http_status=base.http_status,
            upstream_code=base.upstream_code,
        )
    if base.upstream_code not in (None, "0"):
        # A service error in a 2xx envelope ({"code": "10001", "message": ...}): the request is wrong.
        return replace(
            base, outcome=PollOutcome.PERMANENT, detail=f"service code {base.upstream_code}"
        )
    return replace(base, message=None, detail="unexpected body shape (no result.status)")


def _storable(result: PollResult) -> PollResult:
    """``result`` with ``detail`` fit for its column (messages and codes are clean as they are read)."""
    if result.detail is None:
        return result
    detail = storable_text(result.detail, MAX_DETAIL)
    return result if detail == result.detail else replace(result, detail=detail)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _error_fields(payload: Any) -> tuple[str | None, str | None]:
    """(code, message) from a gateway error, a service error, or a wrapped service error."""
    if not isinstance(payload, dict):
        return None, None
    for envelope in (payload.get("error"), payload.get("responseError")):
        if isinstance(envelope, dict):
            code = envelope.get("errorCode", envelope.get("code"))
            return _code_text(code), _text(envelope.get("message"))
    return _code_text(payload.get("code")), _text(payload.get("message"))


def _code_text(code: Any) -> str | None:
    # errorCode and code are documented as integers and shown as strings: accept both.
    if isinstance(code, bool) or code is None:
        return None
    if isinstance(code, int | str):
        return storable_text(str(code).strip(), 32) or None
    return None


def _text(value: Any) -> str | None:
    """A storable message (None for anything but a string with something storable in it)."""
    return (storable_text(value, _MAX_MESSAGE) or None) if isinstance(value, str) else None


def _status_message(result: dict[str, Any]) -> str | None:
    # The docs' tables say analyzeStatusMessage; every docs example says analysisStatusMessage.
    for key in ("analyzeStatusMessage", "analysisStatusMessage"):
        text = _text(result.get(key))
        if text:
            return text
    return None


def _index_id(value: Any) -> int | None:
    """An integer or a string of ASCII digits, whatever its size (the caller checks the range)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        digits = value.strip().lstrip("0") or "0"
        # Longer than any 64-bit number: refused by the range check without parsing it (int()
        # refuses more than 4,300 digits anyway).
        return int(digits) if len(digits) <= 20 else 2**64
    return None
