"""Rows to the contract's JSON shapes (watch, target, delivery, event). Secrets never leave here
except a generated webhook secret in the 201 response."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from app.clock import rfc3339
from app.models import Delivery, Event, Target, Watch

#: A path segment short enough to be an id rather than a credential (Slack's T.../B... ids).
_SHORT_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,15}$")


def mask_slack_webhook(url: str) -> str:
    """Hide the credential in an incoming-webhook URL: the path from its last segment, or from its
    first long one, becomes ``****`` (query and fragment are dropped).

    Slack's ``/services/T000/B000/<secret>`` keeps its short workspace and app ids visible;
    Slack-compatible tools carry their key elsewhere (Mattermost ``/hooks/<key>``, Discord
    ``/api/webhooks/<id>/<token>/slack``), so a long segment hides everything after it too.
    """
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    shown: list[str] = []
    for segment in segments[:-1]:
        if not _SHORT_SEGMENT.match(segment):
            break
        shown.append(segment)
    return urlunsplit((parts.scheme, parts.netloc, "/".join(["", *shown, "****"]), "", ""))


def target_json(target: Target, generated_secret: str | None = None) -> dict[str, Any]:
    """A target as the API shows it."""
    body: dict[str, Any] = {"id": target.id, "type": target.type}
    if target.type == "slack":
        body["channel"] = target.channel
    elif target.type == "slack_webhook":
        body["url"] = mask_slack_webhook(target.url or "")
    else:
        body["url"] = target.url
    body["disabled"] = target.disabled
    body["disabled_reason"] = target.disabled_reason
    if generated_secret is not None:
        body["secret"] = generated_secret
    return body


def delivery_json(delivery: Delivery, event_type: str) -> dict[str, Any]:
    """A delivery with its attempts."""
    return {
        "id": delivery.id,
        "event_id": delivery.event_id,
        "event_type": event_type,
        "watch_id": delivery.watch_id,
        "target_id": delivery.target_id,
        "state": delivery.state,
        "attempt_count": delivery.attempt_count,
        "next_attempt_at": rfc3339(delivery.next_attempt_at),
        "last_error": delivery.last_error,
        "created_at": rfc3339(delivery.created_at),
        "attempts": [
            {
                "at": rfc3339(attempt.at),
                "status_code": attempt.status_code,
                "duration_ms": attempt.duration_ms,
                "outcome": attempt.outcome,
                "error": attempt.error,
            }
            for attempt in delivery.attempts
        ],
    }


def watch_json(
    watch: Watch,
    deliveries: Sequence[tuple[Delivery, str]] = (),
    generated_secrets: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A watch in the contract's shape."""
    secrets = generated_secrets or {}
    return {
        "id": watch.id,
        "state": watch.state,
        "workspace": watch.workspace,
        "project_id": watch.project_id,
        "asset_id": watch.asset_id,
        "api": watch.api,
        "status": watch.status,
        "index_id": watch.index_id,
        "message": watch.message,
        "reason": watch.reason,
        "labels": watch.labels,
        "events": watch.events,
        "targets": [target_json(t, secrets.get(t.id)) for t in watch.targets],
        "created_at": rfc3339(watch.created_at),
        "updated_at": rfc3339(watch.updated_at),
        "deadline_at": rfc3339(watch.deadline_at),
        "finished_at": rfc3339(watch.finished_at),
        "last_polled_at": rfc3339(watch.last_polled_at),
        "next_poll_at": rfc3339(watch.asset.next_poll_at if _active(watch) else None),
        "poll_count": watch.poll_count,
        "history": [
            {
                "status": change.status,
                "api": change.api,
                "index_id": change.index_id,
                "message": change.message,
                "observed_at": rfc3339(change.observed_at),
            }
            for change in watch.history
        ],
        "deliveries": [delivery_json(delivery, kind) for delivery, kind in deliveries],
    }


def _active(watch: Watch) -> bool:
    return watch.state == "watching" and watch.asset is not None


def event_json(event: Event) -> dict[str, Any]:
    """A feed item: the event exactly as delivered, plus its feed cursor and watch id."""
    return {**json.loads(event.body), "cursor": str(event.seq), "watch_id": event.watch_id}
