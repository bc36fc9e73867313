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
from app.notify.mrkdwn_templates import FALLBACK_NOTE, message_for
from app.notify.results import EventSnapshot, TargetSnapshot
from app.notify.samples import sample_envelope
from app.notify.templating import TemplateFailed
from app.vocabulary import TargetType

SIGNATURE_HEADER = "webhook-signature"


def sample_event(event_type: str, now: datetime) -> EventSnapshot:
    """A sample event of ``event_type`` as the outbox would store it (compact JSON text)."""
    envelope = sample_envelope(event_type)
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
    return EventSnapshot(envelope["id"], event_type, body, now)


def render(
    target: TargetSnapshot, event: EventSnapshot, public_url: str | None, language: str
) -> dict[str, Any]:
    """``{"body", "headers"}`` for ``http`` and ``webhook`` targets, ``{"text", "blocks"}`` for
    Slack ones, in the target's language (else ``language``, the bridge's); raises
    ``templating.TemplateFailed`` for a template that fails (a Slack one's sentence starts
    ``template failed``: a preview shows the failure the sender would fall back from)."""
    timestamp = int(event.created_at.timestamp())
    if target.type in (TargetType.SLACK, TargetType.SLACK_WEBHOOK):
        message, note = message_for(
            event.body, target.template, target.language or language, public_url
        )
        if note:
            raise TemplateFailed("template failed: " + note.removeprefix(FALLBACK_NOTE))
        return {"text": message.text, "blocks": message.blocks}
    if target.type == TargetType.HTTP:
        payload = http_target.build_payload(event, target, timestamp, public_url, language)
    else:
        payload = webhook.build_payload(event, target, timestamp)
    headers = {k: v for k, v in payload.headers.items() if k != SIGNATURE_HEADER}
    return {"body": payload.body.decode("utf-8"), "headers": headers}
