"""``http`` target notifier: any chat tool or API, with a JSON body rendered from a template.

The body and header values are templates (``app.notify.templating``) rendered per event from the
stored envelope. The request goes out like a webhook's (``post_once``: address checked at connect,
no redirects, 15 s, bounded answer) with the target's method, carries the Standard Webhooks
``webhook-id`` and ``webhook-timestamp`` headers, and ``webhook-signature`` (over the exact
rendered body bytes) when the target has a secret. Answers are classified as a webhook's.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

from app.notify import mrkdwn_templates, templating, webhook
from app.notify.context import NotifierContext, post_once
from app.notify.results import DeliveryResult, EventSnapshot, TargetSnapshot
from app.notify.templating import TemplateFailed
from app.notify.webhook import WebhookPayload
from app.vocabulary import DeliveryOutcome

METHODS = ("POST", "PUT")
DEFAULT_METHOD = "POST"
TIMEOUT_SECONDS = webhook.TIMEOUT_SECONDS
USER_AGENT = "mi-bridge-http/0.2"
MAX_HEADERS = 20
#: Headers a template may not set: the transport's own, and the Standard Webhooks ones we sign.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
RESERVED_PREFIX = "webhook-"
#: An HTTP header name (RFC 9110 ``token``).
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
ERROR_CHARS = 200


def reserved_header(name: str) -> bool:
    """Whether a template may not set the header ``name`` (case-insensitive)."""
    lowered = name.lower()
    return lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_PREFIX)


def render_headers(templates: Mapping[str, str], variables: Mapping[str, Any]) -> dict[str, str]:
    """Each header value template rendered; ``TemplateFailed`` naming the header that failed (a
    value may not hold control characters: a newline would split the header)."""
    rendered: dict[str, str] = {}
    for name, source in templates.items():
        try:
            value = templating.render(source, variables)
        except TemplateFailed as exc:
            raise TemplateFailed(f"header {name} template failed: {exc}") from None
        if _CONTROL.search(value):
            raise TemplateFailed(f"header {name} renders control characters")
        rendered[name] = value
    return rendered


def render_request(
    envelope: Mapping[str, Any],
    target: TargetSnapshot,
    public_url: str | None,
    language: str | None = None,
) -> tuple[str, dict[str, str]]:
    """The rendered body (valid JSON text) and header values for one event envelope, ``message``
    in the target's language (else ``language``); raises ``TemplateFailed`` with a sentence
    starting ``body template failed`` or ``header ...``."""
    variables = mrkdwn_templates.variables(envelope, target.language or language, public_url)
    try:
        body = templating.render_json(target.body or "", variables)
    except TemplateFailed as exc:
        raise TemplateFailed(f"body template failed: {exc}") from None
    return body, render_headers(dict(target.headers), variables)


def build_payload(
    event: EventSnapshot,
    target: TargetSnapshot,
    timestamp: int,
    public_url: str | None,
    language: str | None = None,
) -> WebhookPayload:
    """Headers and body of one attempt (pure: the timestamp is passed in); ``TemplateFailed``.
    ``language`` is the bridge's default, for a target that names none."""
    body_text, custom = render_request(json.loads(event.body), target, public_url, language)
    body = body_text.encode("utf-8")
    headers = {"content-type": "application/json", "user-agent": USER_AGENT}
    headers.update({name.lower(): value for name, value in custom.items()})
    headers["webhook-id"] = event.id
    headers["webhook-timestamp"] = str(timestamp)
    if target.secret or target.signing_secrets:
        headers["webhook-signature"] = webhook.signature_header(target, event.id, timestamp, body)
    return WebhookPayload(headers=headers, body=body)


def send(context: NotifierContext, event: EventSnapshot, target: TargetSnapshot) -> DeliveryResult:
    """Render and send the event to the target once; a template that fails is a failed attempt
    (retried by the schedule) whose error says why."""
    try:
        payload = build_payload(
            event, target, int(time.time()), context.public_url, context.language
        )
    except TemplateFailed as exc:
        return DeliveryResult(
            DeliveryOutcome.RETRY, error=str(exc)[:ERROR_CHARS], error_detail=str(exc)
        )
    return post_once(
        context, target.url or "", payload.body, payload.headers, TIMEOUT_SECONDS,
        webhook.classify, method=target.method or DEFAULT_METHOD,
    )  # fmt: skip
