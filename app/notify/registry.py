"""Which notifier sends to which target type."""

from __future__ import annotations

from app.notify import http_target, slack, slack_webhook, webhook
from app.notify.context import Notifier
from app.vocabulary import TargetType

NOTIFIERS: dict[TargetType, Notifier] = {
    TargetType.WEBHOOK: webhook.send,
    TargetType.SLACK: slack.send,
    TargetType.SLACK_WEBHOOK: slack_webhook.send,
    TargetType.HTTP: http_target.send,
}


def notifier_for(target_type: str) -> Notifier | None:
    """The notifier of a target type, or None while that type has none."""
    try:
        return NOTIFIERS[TargetType(target_type)]
    except ValueError:
        return None
