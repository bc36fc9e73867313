"""Slack incoming-webhook notifier (``slack_webhook`` targets): one message per event.

Sent with slack-sdk's ``WebhookClient``, whose transport is replaced by the bridge's guarded session:
the address actually connected to is checked, redirects are not followed, proxies are ignored.
"""

from __future__ import annotations

import io
import time
from email.message import Message
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.request import Request

import requests
from slack_sdk.errors import SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from slack_sdk.webhook import WebhookClient, WebhookResponse

from app.http_semantics.retry_after import parse_retry_after
from app.notify.results import DeliveryOutcome, DeliveryResult, EventSnapshot, TargetSnapshot
from app.notify.slack_blocks import build_message
from app.outbound import bounded
from app.outbound.deadline import deadline
from app.upstream.outcomes import now_utc

TIMEOUT_SECONDS = 15.0  # the contract's 15 s, for the whole attempt
# Slack's incoming-webhook errors: the hook was removed or its token revoked; stop sending.
DISABLING_BODIES = frozenset({"invalid_token", "no_service", "no_team", "team_disabled"})


class AddressRefusedError(SlackClientError):
    """The connect-time address check refused the webhook's destination (never retried)."""


class SendExpiredError(SlackClientError):
    """The attempt's total deadline passed (never retried within the attempt)."""


class GuardedWebhookClient(WebhookClient):
    """slack-sdk's WebhookClient over a requests session of the bridge (see module doc)."""

    def __init__(self, url: str, session: requests.Session) -> None:
        super().__init__(
            url,
            timeout=int(TIMEOUT_SECONDS),
            retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
        )
        self._session = session

    def _perform_http_request_internal(self, url: str, req: Request) -> WebhookResponse:
        try:
            answer = bounded.post(
                self._session, url, data=req.data or b"", headers=dict(req.header_items()),
                seconds=TIMEOUT_SECONDS,
            )  # fmt: skip
        except bounded.SendFailed as exc:
            if exc.kind == "refused":
                raise AddressRefusedError(str(exc)) from exc
            if exc.kind == "expired":
                raise SendExpiredError(str(exc)) from exc
            raise URLError(str(exc)) from exc  # the SDK's connection retry handler knows URLError
        if 200 <= answer.status < 300:
            return WebhookResponse(
                url=url, status_code=answer.status, body=answer.text, headers=dict(answer.headers)
            )
        headers = Message()
        for name, value in answer.headers.items():
            headers[name] = value
        raise HTTPError(url, answer.status, answer.reason, headers, io.BytesIO(answer.body))


def send(
    session: requests.Session, event: EventSnapshot, target: TargetSnapshot, public_url: str | None
) -> DeliveryResult:
    """Post one message for the event to the incoming webhook and check the answer.

    The attempt (the SDK's one retry of a connection error included) ends within
    ``TIMEOUT_SECONDS``, whatever the receiver does.
    """
    message = build_message(event.body, public_url)
    client = GuardedWebhookClient(target.url or "", session)
    started = time.monotonic()
    try:
        with deadline(TIMEOUT_SECONDS):
            response = client.send(text=message.text, blocks=message.blocks)
    except AddressRefusedError as exc:
        return DeliveryResult(DeliveryOutcome.REFUSED, duration_ms=_ms(started), error=str(exc))
    except (SendExpiredError, URLError) as exc:
        # Our own sentences: they never quote the URL, which is a credential.
        reason = exc.reason if isinstance(exc, URLError) else exc
        return DeliveryResult(DeliveryOutcome.RETRY, duration_ms=_ms(started), error=str(reason))
    except (SlackClientError, OSError) as exc:
        # The URL is a credential: name the failure, never echo the exception (it quotes the URL).
        error = f"{type(exc).__name__}: could not reach the incoming webhook"
        return DeliveryResult(DeliveryOutcome.RETRY, duration_ms=_ms(started), error=error)
    return classify(response, _ms(started))


def classify(response: WebhookResponse, duration_ms: int) -> DeliveryResult:
    """The outbox decision for one incoming-webhook answer (``200 ok`` is the only success)."""
    status, body = response.status_code, (response.body or "").strip()
    common: dict[str, Any] = {
        "status_code": status, "duration_ms": duration_ms, "excerpt": body[:200] or None,
    }  # fmt: skip
    if status == 200 and body == "ok":
        return DeliveryResult(DeliveryOutcome.SUCCEEDED, **common)
    if status in (404, 410) or body in DISABLING_BODIES:
        return DeliveryResult(
            DeliveryOutcome.DISABLE_TARGET, error=f"HTTP {status} {body}"[:200], **common
        )
    retry_after = parse_retry_after(_header(response, "Retry-After"), now_utc())
    if (status == 429 or status >= 500) and retry_after is not None:
        return DeliveryResult(
            DeliveryOutcome.THROTTLED, retry_after=retry_after, error=f"HTTP {status}", **common
        )
    return DeliveryResult(DeliveryOutcome.RETRY, error=f"HTTP {status} {body}"[:200], **common)


def _header(response: WebhookResponse, name: str) -> str | None:
    for key, value in (response.headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else value
    return None


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
