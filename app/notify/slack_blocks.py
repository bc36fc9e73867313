"""The Slack message for an event: Block Kit plus a plain-text fallback (pure, no I/O).

Everything user-supplied (labels, upstream messages) is escaped for mrkdwn so that ``<!channel>`` or
``<http://x|y>`` show literally instead of pinging a channel or forming a link. Texts are cut to
Slack's limits (3,000 characters a section, 150 a header, 2,000 a field, 50 blocks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
HEADER_LIMIT = 150
MAX_FIELDS = 10
MAX_BLOCKS = 50
TEXT_LIMIT = 3000  # the notification fallback; Slack accepts more, people read less

HEADERS = {
    "analysis.completed": "✅ Analysis completed",
    "analysis.failed": "❌ Analysis failed",
    "analysis.cancelled": "🚫 Analysis cancelled",
    "watch.expired": "⌛ Watch expired (no result before the deadline)",
    "watch.error": "⚠️ Watch error",
    "bridge.test": "🔔 Test notification from mi-bridge",
}
IN_PROGRESS = "⏳ Analysis in progress"
TERMINAL_TYPES = frozenset(
    {"analysis.completed", "analysis.failed", "analysis.cancelled", "watch.expired", "watch.error"}
)


@dataclass(frozen=True)
class SlackMessage:
    """What chat.postMessage / chat.update / an incoming webhook receives."""

    text: str
    blocks: list[dict[str, Any]]


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn gives meaning to (&, <, >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def headline(event_type: str, status: str | None) -> str:
    """The outcome at a glance; status changes read as "in progress"."""
    if event_type in HEADERS:
        return HEADERS[event_type]
    if status == "ANALYZE_COMPLETED":
        return HEADERS["analysis.completed"]
    if status == "ANALYZE_FAIL":
        return HEADERS["analysis.failed"]
    if status == "ANALYZE_CANCEL":
        return HEADERS["analysis.cancelled"]
    return IN_PROGRESS


def build_message(event_body: str, public_url: str | None) -> SlackMessage:
    """The Slack message for one stored event (its JSON text)."""
    event = json.loads(event_body)
    data = event["data"]
    if event["type"] == "bridge.alert":
        return alert_message(data["alert"], public_url)
    asset, analysis, watch = data["asset"], data["analysis"], data["watch"]
    title = headline(event["type"], analysis.get("status"))
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(title, HEADER_LIMIT)}},
        {"type": "section", "fields": _fields(asset, analysis, watch, data["detection"])},
    ]
    detail = analysis.get("message") or watch.get("reason")
    if detail:
        label = "Reason" if event["type"] != "analysis.completed" else "Message"
        blocks.append(_section(f"*{label}*\n{escape(detail)}"))
    if watch.get("labels"):
        lines = [f"`{escape(k)}`: {escape(v)}" for k, v in watch["labels"].items()]
        blocks.append(_section("*Labels*\n" + "\n".join(lines)))
    blocks.append(_context(watch["id"], public_url))
    where = f"{asset['workspace']}/{asset['project_id']}"
    text = f"{title.split(' ', 1)[-1]}: asset {asset['asset_id']} ({where})"
    return SlackMessage(text=truncate(text, TEXT_LIMIT), blocks=blocks[:MAX_BLOCKS])


def alert_message(alert: dict[str, Any], public_url: str | None) -> SlackMessage:
    """A ``bridge.alert``: what is wrong (or no longer is), since when, and in a sentence."""
    firing = alert["state"] == "firing"
    title = f"{'🚨' if firing else '✅'} mi-bridge alert {alert['state']}: {alert['kind']}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(title, HEADER_LIMIT)}},
        _section(f"{escape(alert['detail'])}\n*Since* {escape(alert['since'])}"),
    ]
    if public_url:
        link = f"<{public_url.rstrip('/')}/|Open mi-bridge>"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
    text = f"{title.split(' ', 1)[-1]} ({alert['detail']})"
    return SlackMessage(text=truncate(text, TEXT_LIMIT), blocks=blocks)


def _fields(
    asset: dict[str, Any],
    analysis: dict[str, Any],
    watch: dict[str, Any],
    detection: dict[str, Any],
) -> list[dict[str, str]]:
    pairs = [
        ("Asset", f"`{escape(asset['asset_id'])}`"),
        ("Workspace / project", f"{escape(asset['workspace'])} / {escape(asset['project_id'])}"),
        ("Status", f"`{escape(analysis.get('status') or 'not yet seen')}`"),
        ("API", escape(asset["api"])),
    ]
    if analysis.get("index_id") is not None:
        pairs.append(("Index id", f"`{analysis['index_id']}`"))
    elapsed = _elapsed(detection)
    if elapsed:
        pairs.append(("Elapsed", elapsed))
    return [
        {"type": "mrkdwn", "text": truncate(f"*{name}*\n{value}", FIELD_LIMIT)}
        for name, value in pairs[:MAX_FIELDS]
    ]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_LIMIT)}}


def _context(watch_id: str, public_url: str | None) -> dict[str, Any]:
    text = f"mi-bridge watch `{watch_id}`"
    if public_url:
        text += f" · <{public_url.rstrip('/')}/watches/{watch_id}|Open in mi-bridge>"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _elapsed(detection: dict[str, Any]) -> str | None:
    try:
        start = datetime.fromisoformat(detection["registered_at"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(detection["detected_at"].replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        return None
    seconds = int((end - start).total_seconds())
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"
