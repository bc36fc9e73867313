"""API Gateway signature v2 verification as the gateway does it: a pure function of request and now.

See ``media-intelligence-api.md`` (Authentication). The expected signature comes from the project's
signer; the time is passed in so the 5-minute window can be tested without waiting.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from app.upstream.signing import (
    ACCESS_KEY_HEADER,
    MAX_CLOCK_SKEW_MS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)

REQUIRED_HEADERS = (TIMESTAMP_HEADER, ACCESS_KEY_HEADER, SIGNATURE_HEADER)
_MILLIS_RE = re.compile(r"^[0-9]{1,19}$")


class HeaderItems(Protocol):
    """What verification reads of the headers: their (name, value) pairs. A dict fits, and so does
    werkzeug's ``Headers``, which is not a ``Mapping``."""

    def items(self) -> Iterable[tuple[str, str]]: ...


@dataclass(frozen=True)
class Verdict:
    """The result of one verification. ``reason`` is secret-free text for logs."""

    ok: bool
    reason: str


ACCEPTED = Verdict(True, "ok")


def verify_request(
    method: str,
    uri: str,
    headers: HeaderItems,
    credentials: Mapping[str, str],
    now_ms: int,
) -> Verdict:
    """Check one request's signature v2 headers against ``credentials`` (access key -> secret key).

    ``uri`` is the request target exactly as received (path plus ``?query`` when present).
    Refuses a missing header, an unknown access key, a timestamp that is not decimal milliseconds,
    one more than ``MAX_CLOCK_SKEW_MS`` from ``now_ms`` in either direction, a wrong signature.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    for name in REQUIRED_HEADERS:
        if not lowered.get(name):
            return Verdict(False, f"missing header {name}")
    timestamp = lowered[TIMESTAMP_HEADER]
    access_key = lowered[ACCESS_KEY_HEADER]
    secret_key = credentials.get(access_key)
    if secret_key is None:
        return Verdict(False, "unknown access key")
    if not _MILLIS_RE.match(timestamp):
        return Verdict(False, "timestamp is not decimal milliseconds")
    skew_ms = int(timestamp) - now_ms
    if abs(skew_ms) > MAX_CLOCK_SKEW_MS:
        return Verdict(
            False,
            f"timestamp {skew_ms / 1000:+.1f} s from the gateway clock "
            f"(limit {MAX_CLOCK_SKEW_MS // 1000} s)",
        )
    expected = sign(method, uri, timestamp, access_key, secret_key)
    # Constant-time comparison: the signature is a MAC. Bytes, because compare_digest refuses
    # non-ASCII str and a client may send anything.
    if not hmac.compare_digest(expected.encode("utf-8"), lowered[SIGNATURE_HEADER].encode("utf-8")):
        return Verdict(False, "signature mismatch")
    return ACCEPTED
