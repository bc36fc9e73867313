"""Which notifier sends to which target type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import requests
from slack_sdk import WebClient

from app.notify import slack, slack_webhook, webhook
from app.notify.results import DeliveryResult, EventSnapshot, TargetSnapshot


@dataclass
class NotifierContext:
    """What notifiers share: the guarded HTTP session, the Slack Web API client, the public URL."""

    http: requests.Session
    slack: WebClient | None = None
    public_url: str | None = None
    #: Upper bound (seconds) for one send, set per tick from the delivery lease; None: no bound.
    budget: float | None = None


Sender = Callable[[NotifierContext, EventSnapshot, TargetSnapshot], DeliveryResult]


def _send_webhook(
    ctx: NotifierContext, event: EventSnapshot, target: TargetSnapshot
) -> DeliveryResult:
    return webhook.send(ctx.http, event, target, budget=ctx.budget)


def _send_slack(
    ctx: NotifierContext, event: EventSnapshot, target: TargetSnapshot
) -> DeliveryResult:
    return slack.send(ctx.slack, event, target, ctx.public_url, budget=ctx.budget)


def _send_slack_webhook(
    ctx: NotifierContext, event: EventSnapshot, target: TargetSnapshot
) -> DeliveryResult:
    return slack_webhook.send(ctx.http, event, target, ctx.public_url, budget=ctx.budget)


NOTIFIERS: dict[str, Sender] = {
    "webhook": _send_webhook,
    "slack": _send_slack,
    "slack_webhook": _send_slack_webhook,
}


def sender_for(target_type: str) -> Sender | None:
    """The sender for a target type, or None while that type has no notifier."""
    return NOTIFIERS.get(target_type)
