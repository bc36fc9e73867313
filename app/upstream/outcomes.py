"""Every answer of a status endpoint, classified as a value (pure: no I/O, time passed in).

The rules follow the error table of ``media-intelligence-api.md``; nothing outside this package parses
upstream JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from app.http_semantics.retry_after import parse_retry_after


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

    @property
    def ok(self) -> bool:
        return self.outcome is PollOutcome.STATUS


#: Statuses are opaque upstream words: accept unknown ones, but not arbitrary text.
_STATUS_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_MAX_MESSAGE = 4000


def classify_response(
    http_status: int, headers: dict[str, str] | Any, body: bytes, now: datetime
) -> PollResult:
    """Classify one HTTP answer of a status endpoint."""
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
    if isinstance(status, str) and _STATUS_RE.match(status):
        return PollResult(
            PollOutcome.STATUS,
            status=status,
            message=_status_message(result),
            index_id=_index_id(result.get("indexId")),
            http_status=base.http_status,
            upstream_code=base.upstream_code,
        )
    if base.upstream_code not in (None, "0"):
        # A service error in a 2xx envelope ({"code": "10001", "message": ...}): the request is wrong.
        return replace(
            base, outcome=PollOutcome.PERMANENT, detail=f"service code {base.upstream_code}"
        )
    return replace(base, message=None, detail="unexpected body shape (no result.status)")


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
        return str(code).strip()[:32] or None
    return None


def _text(value: Any) -> str | None:
    return value[:_MAX_MESSAGE] if isinstance(value, str) and value else None


def _status_message(result: dict[str, Any]) -> str | None:
    # The docs' tables say analyzeStatusMessage; every docs example says analysisStatusMessage.
    for key in ("analyzeStatusMessage", "analysisStatusMessage"):
        text = _text(result.get(key))
        if text:
            return text
    return None


def _index_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def now_utc() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
