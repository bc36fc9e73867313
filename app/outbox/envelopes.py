"""The event envelope every target receives (contract: Events). Pure: rows in, JSON text out.

The text is built once, stored on the event, and sent byte for byte on every attempt, so a retry
carries the same body and the same signature input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.clock import rfc3339
from app.models import Watch


@dataclass(frozen=True)
class Analysis:
    """The analysis part of an event: the status it reports and the one before it."""

    status: str | None
    previous_status: str | None
    index_id: int | None
    message: str | None


def event_body(
    event_id: str,
    event_type: str,
    watch: Watch,
    analysis: Analysis,
    created_at: datetime,
    detected_at: datetime | None = None,
) -> str:
    """The JSON text of one event (``timestamp`` is the event's creation time)."""
    watch_part: dict[str, Any] = {"id": watch.id, "labels": watch.labels}
    if event_type in ("watch.error", "watch.expired"):
        watch_part["reason"] = watch.reason
    body = {
        "id": event_id,
        "type": event_type,
        "timestamp": rfc3339(created_at),
        "data": {
            "watch": watch_part,
            "asset": {
                "workspace": watch.workspace,
                "project_id": watch.project_id,
                "asset_id": watch.asset_id,
                "api": watch.api,
            },
            "analysis": {
                "status": analysis.status,
                "previous_status": analysis.previous_status,
                "index_id": analysis.index_id,
                "message": analysis.message,
            },
            "detection": {
                "registered_at": rfc3339(watch.created_at),
                "detected_at": rfc3339(detected_at or created_at),
                "poll_count": watch.poll_count,
            },
        },
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
