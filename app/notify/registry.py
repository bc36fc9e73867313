"""Which notifier sends to which target type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import requests

from app.notify import webhook
from app.notify.results import DeliveryResult, EventSnapshot, TargetSnapshot


@dataclass
class NotifierContext:
    """What notifiers share: the guarded HTTP session (and, later, Slack clients)."""

    http: requests.Session


Sender = Callable[[NotifierContext, EventSnapshot, TargetSnapshot], DeliveryResult]


def _send_webhook(
    ctx: NotifierContext, event: EventSnapshot, target: TargetSnapshot
) -> DeliveryResult:
    return webhook.send(ctx.http, event, target)


NOTIFIERS: dict[str, Sender] = {
    "webhook": _send_webhook,
}


def sender_for(target_type: str) -> Sender | None:
    """The sender for a target type, or None while that type has no notifier."""
    return NOTIFIERS.get(target_type)
