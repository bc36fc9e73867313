"""Slack incoming-webhook notifier (``slack_webhook`` targets): one message per event.

An incoming webhook is a plain JSON POST (https://api.slack.com/messaging/webhooks), so it is sent
like any webhook, through the bridge's guarded session (``app.outbound``): the address actually
connected to is checked, redirects are not followed, proxies are ignored, the attempt ends within
``TIMEOUT_SECONDS`` and at most a few KB of the answer are read. The URL is a credential: no error
text quotes it.
"""

from __future__ import annotations

import json
from typing import Any

from app.clock import utcnow
from app.http_semantics.retry_after import parse_retry_after
from app.notify.context import (
    SLACK_ERROR_CODE,
    ErrorText,
    NotifierContext,
    answered,
    post_once,
)
from app.notify.mrkdwn_templates import message_for, noted
from app.notify.results import DeliveryResult, EventSnapshot, TargetSnapshot
from app.outbound import bounded
from app.outbound.errors import scrub
from app.vocabulary import DeliveryOutcome

TIMEOUT_SECONDS = 15.0  # the contract's 15 s, for the whole attempt
# Slack's incoming-webhook errors: the hook was removed or its token revoked; stop sending.
DISABLING_BODIES = frozenset({"invalid_token", "no_service", "no_team", "team_disabled"})


def build_payload(
    event_body: str,
    public_url: str | None,
    template: str | None = None,
    language: str | None = None,
) -> tuple[bytes, str | None]:
    """The JSON posted for one event and the template's failure note, if any (pure)."""
    message, note = message_for(event_body, template, language, public_url)
    return json.dumps({"text": message.text, "blocks": message.blocks}).encode(), note


def send(context: NotifierContext, event: EventSnapshot, target: TargetSnapshot) -> DeliveryResult:
    """Post one message for the event to the incoming webhook and check the answer."""
    body, note = build_payload(
        event.body, context.public_url, target.template, context.language_of(target)
    )
    result = post_once(
        context, target.url or "", body, {"content-type": "application/json; charset=utf-8"},
        TIMEOUT_SECONDS, classify,
    )  # fmt: skip
    # A template that failed is no failed delivery: the default text went out, the attempt says so.
    return noted(result, note)


def classify(answer: bounded.Answer, duration_ms: int) -> DeliveryResult:
    """The outbox decision for one incoming-webhook answer (``200 ok`` is the only success)."""
    status, body = answer.status, answer.text.strip()
    common: dict[str, Any] = {
        "status_code": status, "duration_ms": duration_ms, "excerpt": body[:200] or None,
    }  # fmt: skip
    if status == 200 and body == "ok":
        return DeliveryResult(DeliveryOutcome.SUCCEEDED, **common)
    failure = _failure(answer, body)
    if status in (404, 410) or body in DISABLING_BODIES:
        return DeliveryResult(DeliveryOutcome.DISABLE_TARGET, **failure, **common)
    retry_after = parse_retry_after(answer.headers.get("Retry-After"), utcnow())
    if (status == 429 or status >= 500) and retry_after is not None:
        return DeliveryResult(
            DeliveryOutcome.THROTTLED, retry_after=retry_after, **failure, **common
        )
    return DeliveryResult(DeliveryOutcome.RETRY, **failure, **common)


def _failure(answer: bounded.Answer, body: str) -> ErrorText:
    """``Slack: no_service (HTTP 404)`` when Slack answered one of its error codes, else
    ``answered HTTP 500``; the detail adds what the body said."""
    failure = answered(answer)
    if SLACK_ERROR_CODE.fullmatch(body):
        failure["error"] = f"Slack: {body} (HTTP {answer.status})"
    if body:
        failure["error_detail"] += f"; body: {scrub(body[:200])}"
    return failure
