"""NCP API Gateway signature v2: the one place that knows how a request to NCP is signed.

The string to sign is ``METHOD + " " + URI + "\\n" + timestamp + "\\n" + accessKey`` where URI is the
path with its query string exactly as sent. The signature is standard Base64 (with padding) of
HMAC-SHA256 keyed with the secret key. See ``media-intelligence-api.md`` (Authentication).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

TIMESTAMP_HEADER = "x-ncp-apigw-timestamp"
ACCESS_KEY_HEADER = "x-ncp-iam-access-key"
SIGNATURE_HEADER = "x-ncp-apigw-signature-v2"

#: The gateway rejects timestamps further than this from its clock (milliseconds).
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000


def wire_timestamp_ms() -> str:
    """The current wall-clock time in milliseconds, as the decimal string sent on the wire.

    Always the real clock, never an injected one: the gateway compares it with its own clock.
    """
    return str(time.time_ns() // 1_000_000)


def string_to_sign(method: str, uri: str, timestamp_ms: str, access_key: str) -> str:
    """The exact text that is HMAC'd; ``uri`` is the path plus ``?query`` when there is one."""
    return f"{method.upper()} {uri}\n{timestamp_ms}\n{access_key}"


def sign(method: str, uri: str, timestamp_ms: str, access_key: str, secret_key: str) -> str:
    """Return the Base64 signature v2 for one request."""
    message = string_to_sign(method, uri, timestamp_ms, access_key).encode("utf-8")
    digest = hmac.new(secret_key.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_headers(
    method: str, uri: str, access_key: str, secret_key: str, timestamp_ms: str | None = None
) -> dict[str, str]:
    """The three authentication headers for one request, timestamped now unless told otherwise."""
    timestamp_ms = timestamp_ms or wire_timestamp_ms()
    return {
        TIMESTAMP_HEADER: timestamp_ms,
        ACCESS_KEY_HEADER: access_key,
        SIGNATURE_HEADER: sign(method, uri, timestamp_ms, access_key, secret_key),
    }
