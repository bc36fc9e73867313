"""A sample event envelope per event type, for checking templates and previewing messages.

Plain dicts in the shape of ``app.outbox.envelopes.EventEnvelope`` (and ``bridge.alert``'s
``AlertEnvelope``): this layer sits below the outbox, so the shape is spelled here and a test
validates every sample against those models. The labels include the characters that could break a
JSON string or a chat message (quotes, a backslash, ``<!channel>``), so a template that survives a
sample survives them.
"""

from __future__ import annotations

import copy
from typing import Any

from app.vocabulary import SUBSCRIBABLE_EVENTS, EventType

SAMPLE_EVENT_ID = "evt_01JSAMPLE00000000000000000"
SAMPLE_WATCH_ID = "wch_01JSAMPLE00000000000000000"
SAMPLE_LABELS = {"cms_id": "abc-123", "title": 'Launch "teaser" \\ <!channel> & <http://x|y>'}
REGISTERED_AT = "2026-12-05T09:00:00.000Z"
DETECTED_AT = "2026-12-05T09:12:34.000Z"

#: (status, previous status, index id, message, watch reason) of each event type's sample.
_ANALYSES: dict[str, tuple[str | None, str | None, int | None, str | None, str | None]] = {
    EventType.ANALYSIS_COMPLETED: ("ANALYZE_COMPLETED", "ANALYZING", 1001, None, None),
    EventType.ANALYSIS_FAILED: (
        "ANALYZE_FAIL",
        "ANALYZING",
        None,
        "the video could not be read",
        None,
    ),
    EventType.ANALYSIS_CANCELLED: ("ANALYZE_CANCEL", "ANALYZING", None, None, None),
    EventType.ANALYSIS_STATUS_CHANGED: ("ANALYZING", "WAIT_ANALYZE", None, None, None),
    EventType.WATCH_EXPIRED: ("ANALYZING", "WAIT_ANALYZE", None, None, "expired"),
    EventType.WATCH_ERROR: (None, None, None, "asset not found", "asset_not_found"),
    EventType.BRIDGE_TEST: ("ANALYZING", "ANALYZING", None, None, None),
    EventType.ANALYSIS_STALLED: ("ANALYZING", "ANALYZING", None, None, None),
    EventType.ASSET_IMPORTED: (None, None, None, None, None),
    EventType.ASSET_IMPORT_FAILED: (None, None, None, None, None),
    EventType.SUMMARY_COMPLETED: ("ANALYZE_COMPLETED", "ANALYZE_COMPLETED", 1001, None, None),
    EventType.SUMMARY_FAILED: ("ANALYZE_COMPLETED", "ANALYZE_COMPLETED", 1001, None, None),
    EventType.SUMMARY_CANCELLED: ("ANALYZE_COMPLETED", "ANALYZE_COMPLETED", 1001, None, None),
}
#: The workflow parts of the workflow events' samples: (stage, import, summary).
_WORKFLOWS: dict[str, tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = {
    EventType.ASSET_IMPORTED: ("analyzing", {"status": "COMPLETED", "message": None}, None),
    EventType.ASSET_IMPORT_FAILED: (
        "done",
        {"status": "INVALID_METADATA", "message": "resolution must be 360p to 1080p"},
        None,
    ),
    EventType.SUMMARY_COMPLETED: ("done", None, {"status": "SUMMARIZE_COMPLETED", "message": None}),
    EventType.SUMMARY_FAILED: (
        "done",
        None,
        {"status": "SUMMARIZE_FAIL", "message": "the summary could not be made"},
    ),
    EventType.SUMMARY_CANCELLED: ("done", None, {"status": "SUMMARIZE_CANCELED", "message": None}),
}
SAMPLE_OBJECT = {"bucket_name": "media-in", "key": "videos/teaser.mp4"}
#: The event types with a sample: every subscribable one, ``bridge.test`` and ``bridge.alert``.
SAMPLE_TYPES: tuple[str, ...] = (
    *(str(kind) for kind in SUBSCRIBABLE_EVENTS),
    EventType.BRIDGE_TEST.value,
    EventType.BRIDGE_ALERT.value,
)


def sample_envelope(event_type: str) -> dict[str, Any]:
    """A fresh sample envelope of ``event_type``; ``KeyError`` for a type without one."""
    if event_type == EventType.BRIDGE_ALERT:
        return _alert()
    status, previous, index_id, message, reason = _ANALYSES[event_type]
    watch: dict[str, Any] = {"id": SAMPLE_WATCH_ID, "labels": copy.deepcopy(SAMPLE_LABELS)}
    if reason is not None:
        watch["reason"] = reason
    asset = {"workspace": "my-workspace", "project_id": "1234", "asset_id": "5678", "api": "index"}
    analysis = {
        "status": status, "previous_status": previous, "index_id": index_id, "message": message,
    }  # fmt: skip
    detection = {"registered_at": REGISTERED_AT, "detected_at": DETECTED_AT, "poll_count": 12}
    data: dict[str, Any] = {
        "watch": watch, "asset": asset, "analysis": analysis, "detection": detection,
    }  # fmt: skip
    if event_type in _WORKFLOWS:
        stage, imported, summary = _WORKFLOWS[event_type]
        watch["stage"] = stage
        if imported is not None:
            data["import"] = {**SAMPLE_OBJECT, **imported}
        if summary is not None:
            data["summary"] = dict(summary)
    return {"id": SAMPLE_EVENT_ID, "type": event_type, "timestamp": DETECTED_AT, "data": data}


def _alert() -> dict[str, Any]:
    alert = {
        "kind": "endpoint_disabled",
        "state": "firing",
        "since": REGISTERED_AT,
        "detail": "endpoint 'cms' was disabled: it answered HTTP 410",
    }
    return {
        "id": SAMPLE_EVENT_ID,
        "type": EventType.BRIDGE_ALERT.value,
        "timestamp": DETECTED_AT,
        "data": {"alert": alert},
    }
