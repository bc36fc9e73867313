"""Webhook notifier: Standard Webhooks 1.0 signed POSTs (https://www.standardwebhooks.com/).

Headers ``webhook-id`` (the event id, the same on every retry), ``webhook-timestamp`` (this attempt,
real clock) and ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``
keyed with the decoded ``whsec_`` secret). The body is the stored event text, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from functools import partial

from app.clock import utcnow
from app.http_semantics.retry_after import parse_retry_after
from app.notify.context import NotifierContext, answered, post_once
from app.notify.results import DeliveryResult, EventSnapshot, TargetSnapshot
from app.outbound import bounded
from app.vocabulary import DeliveryOutcome

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
GENERATED_SECRET_BYTES = 32
TIMEOUT_SECONDS = 15.0  # the contract's 15 s, for the whole attempt
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


def generate_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(GENERATED_SECRET_BYTES)).decode()


def signature_header(target: TargetSnapshot, message_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: one ``v1,`` signature per signing secret, space-separated (Standard
    Webhooks lets a receiver accept any of them, so a rotation's overlap loses nothing)."""
    keys = target.signing_secrets or (target.secret or "",)
    return " ".join(sign(key, message_id, timestamp, body) for key in keys)


def build_payload(event: EventSnapshot, target: TargetSnapshot, timestamp: int) -> WebhookPayload:
    """Headers and body of one attempt (pure: the timestamp is passed in)."""
    body = event.body.encode("utf-8")
    return WebhookPayload(
        headers={
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(target, event.id, timestamp, body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        },
        body=body,
    )


def send(context: NotifierContext, event: EventSnapshot, target: TargetSnapshot) -> DeliveryResult:
    """POST the event to the target's URL once (through the guarded ``context.http``) and classify
    the answer.

    The attempt ends within ``TIMEOUT_SECONDS`` (or the context's budget, when smaller) whatever the
    receiver does, and reads at most ``bounded.DEFAULT_LIMIT`` bytes of its answer.
    """
    payload = build_payload(event, target, int(time.time()))
    return post_once(
        context, target.url or "", payload.body, payload.headers, TIMEOUT_SECONDS, classify
    )


def classify(answer: bounded.Answer, duration_ms: int) -> DeliveryResult:
    """The outbox decision for one webhook answer."""
    status = answer.status
    excerpt = answer.text[:EXCERPT_CHARS] or None
    result = partial(DeliveryResult, status_code=status, duration_ms=duration_ms, excerpt=excerpt)
    if 200 <= status < 300:
        return result(DeliveryOutcome.SUCCEEDED)
    if status == 410:
        # Standard Webhooks: 410 Gone means the endpoint was removed; stop sending to it.
        return result(DeliveryOutcome.DISABLE_TARGET, **answered(answer, "the endpoint is gone"))
    retry_after = parse_retry_after(answer.headers.get("Retry-After"), utcnow())
    if status in (429, 503) and retry_after is not None:
        return result(
            DeliveryOutcome.THROTTLED, retry_after=retry_after,
            **answered(answer, f"retry after {retry_after:g} s"),
        )  # fmt: skip
    if 300 <= status < 400:
        # Redirects are not followed (a redirect could point anywhere, our network included).
        return result(DeliveryOutcome.RETRY, **answered(answer, "a redirect (not followed)"))
    return result(DeliveryOutcome.RETRY, **answered(answer))
