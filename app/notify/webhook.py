"""Webhook notifier: Standard Webhooks 1.0 signed POSTs (https://www.standardwebhooks.com/).

Headers ``webhook-id`` (the event id, the same on every retry), ``webhook-timestamp`` (this attempt,
real clock) and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``
keyed with the decoded ``whsec_`` secret). The body is the stored event text, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass

import requests

from app.api.schemas import SECRET_PREFIX
from app.notify.results import DeliveryOutcome, DeliveryResult, EventSnapshot, TargetSnapshot
from app.outbound.http import refused_reason
from app.upstream.outcomes import now_utc, parse_retry_after

TIMEOUT = (5.0, 15.0)  # connect, read: the contract's 15 s
EXCERPT_CHARS = 200
USER_AGENT = "mi-bridge-webhooks/0.1"


@dataclass(frozen=True)
class WebhookPayload:
    """Exactly what goes on the wire."""

    headers: dict[str, str]
    body: bytes


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def build_payload(event: EventSnapshot, target: TargetSnapshot, timestamp: int) -> WebhookPayload:
    """Headers and body of one attempt (pure: the timestamp is passed in)."""
    body = event.body.encode("utf-8")
    return WebhookPayload(
        headers={
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(target.secret or "", event.id, timestamp, body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        },
        body=body,
    )


def send(
    session: requests.Session,
    event: EventSnapshot,
    target: TargetSnapshot,
    budget: float | None = None,
) -> DeliveryResult:
    """POST the event to the target's URL once and classify the answer.

    ``budget`` caps both timeouts (the caller's lease must outlast the send).
    """
    payload = build_payload(event, target, int(time.time()))
    started = time.monotonic()
    try:
        response = session.post(
            target.url or "", data=payload.body, headers=payload.headers,
            timeout=_timeout(budget), allow_redirects=False,
        )  # fmt: skip
    except requests.RequestException as exc:
        elapsed = _ms(started)
        refused = refused_reason(exc)
        if refused:
            return DeliveryResult(DeliveryOutcome.REFUSED, duration_ms=elapsed, error=refused)
        return DeliveryResult(DeliveryOutcome.RETRY, duration_ms=elapsed, error=_error_text(exc))
    return classify(response, _ms(started))


def classify(response: requests.Response, duration_ms: int) -> DeliveryResult:
    """The outbox decision for one webhook answer."""
    status = response.status_code
    excerpt = response.text[:EXCERPT_CHARS] if response.content else None
    common = {"status_code": status, "duration_ms": duration_ms, "excerpt": excerpt}
    if 200 <= status < 300:
        return DeliveryResult(DeliveryOutcome.SUCCEEDED, **common)
    if status == 410:
        # Standard Webhooks: 410 Gone means the endpoint was removed; stop sending to it.
        return DeliveryResult(DeliveryOutcome.DISABLE_TARGET, error="HTTP 410 Gone", **common)
    retry_after = parse_retry_after(response.headers.get("Retry-After"), now_utc())
    if status in (429, 503) and retry_after is not None:
        return DeliveryResult(
            DeliveryOutcome.THROTTLED, retry_after=retry_after, error=f"HTTP {status}", **common
        )
    if 300 <= status < 400:
        # Redirects are not followed (a redirect could point anywhere, our network included).
        return DeliveryResult(
            DeliveryOutcome.RETRY, error=f"HTTP {status} redirect not followed", **common
        )
    return DeliveryResult(DeliveryOutcome.RETRY, error=f"HTTP {status}", **common)


def _timeout(budget: float | None) -> tuple[float, float]:
    if budget is None:
        return TIMEOUT
    return (min(TIMEOUT[0], budget), min(TIMEOUT[1], budget))


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _error_text(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timeout"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
