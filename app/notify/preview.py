"""What a target would be sent for an event, without sending it (``POST /api/v1/preview``).

Pure: each target type's own payload builder renders the message, so the preview is exactly what
its notifier would send, except ``webhook-signature``, which is left out (a preview must not
produce a valid signature of a body nobody sent).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.notify import http_target, webhook
from app.notify.results import EventSnapshot, TargetSnapshot
from app.notify.samples import sample_envelope
from app.notify.slack_blocks import build_message
from app.vocabulary import TargetType

SIGNATURE_HEADER = "webhook-signature"


def sample_event(event_type: str, now: datetime) -> EventSnapshot:
    """A sample event of ``event_type`` as the outbox would store it (compact JSON text)."""
    envelope = sample_envelope(event_type)
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return EventSnapshot(envelope["id"], event_type, body, now)


def render(target: TargetSnapshot, event: EventSnapshot, public_url: str | None) -> dict[str, Any]:
    """``{"body", "headers"}`` for ``http`` and ``webhook`` targets, ``{"text", "blocks"}`` for
    Slack ones; raises ``templating.TemplateFailed`` for an ``http`` template that fails."""
    timestamp = int(event.created_at.timestamp())
    if target.type in (TargetType.SLACK, TargetType.SLACK_WEBHOOK):
        message = build_message(event.body, public_url)
        return {"text": message.text, "blocks": message.blocks}
    if target.type == TargetType.HTTP:
        payload = http_target.build_payload(event, target, timestamp, public_url)
    else:
        payload = webhook.build_payload(event, target, timestamp)
    headers = {k: v for k, v in payload.headers.items() if k != SIGNATURE_HEADER}
    return {"body": payload.body.decode("utf-8"), "headers": headers}
