"""The one notifier interface: every notifier is ``send(context, event, target) -> DeliveryResult``.

``NotifierContext`` carries what notifiers share (the guarded HTTP session, the Slack Web API
client, the public URL for links) and the time ``budget`` of the current tick; every notifier ends
its attempt within ``context.seconds(its own limit)``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypedDict

import requests
from slack_sdk import WebClient

from app.notify.results import DeliveryResult, EventSnapshot, TargetSnapshot
from app.outbound import bounded
from app.outbound.errors import scrub
from app.vocabulary import DeliveryOutcome

#: What Slack's error codes look like (``channel_not_found``, ``no_service``): shown as they are.
SLACK_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{1,60}")


@dataclass
class NotifierContext:
    """What notifiers share: the guarded HTTP session, the Slack Web API client, the public URL."""

    http: requests.Session
    slack: WebClient | None = None
    public_url: str | None = None
    #: Upper bound (seconds) for one send, set per tick from the delivery lease; None: no bound.
    budget: float | None = None
    #: ``BRIDGE_LANGUAGE``: the default messages' language of targets that name none.
    language: str = "en"

    def language_of(self, target: TargetSnapshot) -> str:
        """The language of ``target``'s default messages: its own, else the bridge's."""
        return target.language or self.language

    def seconds(self, limit: float) -> float:
        """How long one attempt may take: the notifier's own ``limit``, or less within a budget."""
        return min(limit, self.budget) if self.budget is not None else limit


class Notifier(Protocol):
    """Send one event to one target once and classify the answer; never longer than the context
    allows. Raising is a bug: the outbox turns it into a failed attempt of that delivery only."""

    def __call__(
        self, context: NotifierContext, event: EventSnapshot, target: TargetSnapshot
    ) -> DeliveryResult: ...


def post_once(
    context: NotifierContext,
    url: str,
    body: bytes,
    headers: dict[str, str],
    limit: float,
    classify: Callable[[bounded.Answer, int], DeliveryResult],
    method: str = "POST",
) -> DeliveryResult:
    """One bounded POST (or ``method``) through the guarded ``context.http``: ``classify(answer,
    duration_ms)`` decides on an answer; no answer is a retry, or ``refused`` when the address
    guard said no."""
    started = time.monotonic()
    try:
        answer = bounded.post(
            context.http,
            url,
            data=body,
            headers=headers,
            seconds=context.seconds(limit),
            method=method,
        )
    except bounded.SendFailed as exc:
        outcome = DeliveryOutcome.REFUSED if exc.kind == "refused" else DeliveryOutcome.RETRY
        return DeliveryResult(
            outcome, duration_ms=elapsed_ms(started), error=exc.short, error_detail=exc.detail
        )
    return classify(answer, elapsed_ms(started))


class ErrorText(TypedDict):
    """A ``DeliveryResult``'s ``error`` (short) and ``error_detail`` (full), to pass as ``**``."""

    error: str
    error_detail: str


def answered(answer: bounded.Answer, note: str | None = None) -> ErrorText:
    """``error`` and ``error_detail`` for an answer that is a failure: ``answered HTTP 500`` (and
    ``note``), and its status line with the headers that decided it (``Retry-After``)."""
    short = f"answered HTTP {answer.status}" + (f", {note}" if note else "")
    detail = f"HTTP {answer.status} {answer.reason}".rstrip()
    retry_after = answer.headers.get("Retry-After")
    if retry_after is not None:
        detail += f"; Retry-After: {retry_after}"[:120]
    return {"error": short, "error_detail": scrub(detail)}


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started`` (a ``time.monotonic()`` reading)."""
    return int((time.monotonic() - started) * 1000)
