"""The Slack message for an event: Block Kit plus a plain-text fallback (pure, no I/O).

Everything user-supplied (labels, upstream messages) is escaped for mrkdwn so that ``<!channel>`` or
``<http://x|y>`` show literally instead of pinging a channel or forming a link. Texts are cut to
Slack's limits (3,000 characters a section, 150 a header, 2,000 a field, 50 blocks). Titles, field
names and the fallback text are in the target's language (``app.notify.languages``); upstream
values (statuses, ids) are kept as they are, next to their words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.notify.languages import N_, Gettext, gettext_for, status_name

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
HEADER_LIMIT = 150
MAX_FIELDS = 10
MAX_BLOCKS = 50
TEXT_LIMIT = 3000  # the notification fallback; Slack accepts more, people read less

#: (emoji, words) of each event type's title; the words are translated when the message is built.
HEADERS = {
    "analysis.completed": ("✅", N_("Analysis completed")),
    "analysis.failed": ("❌", N_("Analysis failed")),
    "analysis.cancelled": ("🚫", N_("Analysis cancelled")),
    "watch.expired": ("⌛", N_("Watch expired (no result before the deadline)")),
    "watch.error": ("⚠️", N_("Watch error")),
    "bridge.test": ("🔔", N_("Test notification from mi-bridge")),
    "asset.imported": ("📥", N_("Asset imported")),
    "asset.import_failed": ("❌", N_("Import failed")),
    "summary.completed": ("📝", N_("Scene summary completed")),
    "summary.failed": ("❌", N_("Scene summary failed")),
    "summary.cancelled": ("🚫", N_("Scene summary cancelled")),
    "analysis.stalled": ("🐢", N_("Analysis stalled (no change for a while)")),
}
#: A workflow watch's stage, in words (the ``stage`` field of its messages).
STAGES = {
    "importing": N_("Importing"),
    "analyzing": N_("Analyzing"),
    "summarizing": N_("Summarizing"),
    "done": N_("Done"),
}
IN_PROGRESS = ("⏳", N_("Analysis in progress"))
OPEN_BRIDGE = N_("Open mi-bridge")
OPEN_WATCH = N_("Open in mi-bridge")
WATCH_WORD = N_("mi-bridge watch")
#: The events that also land as a thread reply (an outcome people are notified of).
TERMINAL_TYPES = frozenset(
    {"analysis.completed", "analysis.failed", "analysis.cancelled", "watch.expired", "watch.error",
     "asset.import_failed", "summary.completed", "summary.failed", "summary.cancelled"}
)  # fmt: skip


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


def headline(event_type: str, status: str | None) -> tuple[str, str]:
    """The outcome at a glance as (emoji, English words); status changes read as "in progress"."""
    if event_type in HEADERS:
        return HEADERS[event_type]
    if status == "ANALYZE_COMPLETED":
        return HEADERS["analysis.completed"]
    if status == "ANALYZE_FAIL":
        return HEADERS["analysis.failed"]
    if status == "ANALYZE_CANCEL":
        return HEADERS["analysis.cancelled"]
    return IN_PROGRESS


def build_message(
    event_body: str, public_url: str | None, language: str | None = None
) -> SlackMessage:
    """The Slack message for one stored event (its JSON text), in ``language`` (None: English)."""
    _ = gettext_for(language)
    event = json.loads(event_body)
    data = event["data"]
    if event["type"] == "bridge.alert":
        return alert_message(data["alert"], public_url, _)
    analysis, watch = data["analysis"], data["watch"]
    emoji, words = headline(event["type"], analysis.get("status"))
    title = f"{emoji} {_(words)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(title, HEADER_LIMIT)}},
        {"type": "section", "fields": _fields(data, _)},
    ]
    detail = analysis.get("message") or watch.get("reason")
    if event["type"].startswith(("asset.", "summary.")):
        part = data.get("import" if event["type"].startswith("asset.") else "summary") or {}
        detail = part.get("message") or detail
    if detail:
        label = _("Reason") if event["type"] != "analysis.completed" else _("Message")
        blocks.append(_section(f"*{label}*\n{escape(detail)}"))
    if watch.get("labels"):
        lines = [f"`{escape(k)}`: {escape(v)}" for k, v in watch["labels"].items()]
        heading = _("Labels")  # gettext calls stay out of f-strings: pybabel extract skips those
        blocks.append(_section(f"*{heading}*\n" + "\n".join(lines)))
    blocks.append(_context(watch["id"], public_url, _))
    text = default_line(event, _)
    return SlackMessage(text=truncate(escape(text), TEXT_LIMIT), blocks=blocks[:MAX_BLOCKS])


def default_line(event: dict[str, Any], _: Gettext) -> str:
    """The one-line message of an event envelope (parsed), plain text (not escaped for mrkdwn):
    Slack's fallback text, and ``message`` in ``http`` templates."""
    data = event["data"]
    if event["type"] == "bridge.alert":
        alert = data["alert"]
        return f"{_alert_title(alert, _)} ({alert['detail']})"
    asset = data["asset"]
    where = f"{asset['workspace']}/{asset['project_id']}"
    _emoji, words = headline(event["type"], data["analysis"].get("status"))
    return _("%(title)s: asset %(asset_id)s (%(where)s)") % {
        "title": _(words), "asset_id": asset_name(asset, data), "where": where,
    }  # fmt: skip


def asset_name(asset: dict[str, Any], data: dict[str, Any]) -> str:
    """The asset's id, or the key of the object it is imported from until the import gives one."""
    if asset.get("asset_id") is not None:
        return str(asset["asset_id"])
    imported = data.get("import") or {}
    return str(imported.get("key") or "?")


def alert_message(
    alert: dict[str, Any], public_url: str | None, _: Gettext | None = None
) -> SlackMessage:
    """A ``bridge.alert``: what is wrong (or no longer is), since when, and in a sentence."""
    _ = _ or gettext_for(None)
    firing = alert["state"] == "firing"
    title = f"{'🚨' if firing else '✅'} {_alert_title(alert, _)}"
    since = _("Since")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(title, HEADER_LIMIT)}},
        _section(f"{escape(alert['detail'])}\n*{since}* {escape(alert['since'])}"),
    ]
    if public_url:
        link = f"<{public_url.rstrip('/')}/|{_(OPEN_BRIDGE)}>"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
    text = f"{_alert_title(alert, _)} ({alert['detail']})"
    return SlackMessage(text=truncate(escape(text), TEXT_LIMIT), blocks=blocks)


def _alert_title(alert: dict[str, Any], _: Gettext) -> str:
    if alert["state"] == "firing":
        return _("mi-bridge alert firing: %(kind)s") % {"kind": alert["kind"]}
    return _("mi-bridge alert resolved: %(kind)s") % {"kind": alert["kind"]}


def with_text(message: SlackMessage, text: str) -> SlackMessage:
    """``message`` whose fallback text and first section block's text are ``text`` (mrkdwn, already
    escaped where it must be); the other blocks and fields are kept."""
    blocks = [dict(block) for block in message.blocks]
    for block in blocks:
        if block["type"] == "section":
            block["text"] = {"type": "mrkdwn", "text": truncate(text, SECTION_LIMIT)}
            break
    return SlackMessage(text=truncate(text, TEXT_LIMIT), blocks=blocks)


def _fields(data: dict[str, Any], _: Gettext) -> list[dict[str, str]]:
    asset, analysis, watch = data["asset"], data["analysis"], data["watch"]
    pairs = [
        (_("Asset"), f"`{escape(asset_name(asset, data))}`"),
        (_("Workspace / project"), f"{escape(asset['workspace'])} / {escape(asset['project_id'])}"),
        (_("Status"), escape(status_name(analysis.get("status"), _))),
        (_("API"), escape(asset["api"])),
    ]
    if watch.get("stage") in STAGES:
        pairs.insert(2, (_("Stage"), _(STAGES[watch["stage"]])))
    for part, label in (("import", _("Import")), ("summary", _("Scene summary"))):
        status = (data.get(part) or {}).get("status")
        if status:
            pairs.append((label, f"`{escape(status)}`"))
    if analysis.get("index_id") is not None:
        pairs.append((_("Index id"), f"`{analysis['index_id']}`"))
    elapsed = _elapsed(data["detection"])
    if elapsed:
        pairs.append((_("Elapsed"), elapsed))
    return [
        {"type": "mrkdwn", "text": truncate(f"*{name}*\n{value}", FIELD_LIMIT)}
        for name, value in pairs[:MAX_FIELDS]
    ]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_LIMIT)}}


def _context(watch_id: str, public_url: str | None, _: Gettext) -> dict[str, Any]:
    text = f"{_(WATCH_WORD)} `{watch_id}`"
    if public_url:
        text += f" · <{public_url.rstrip('/')}/watches/{watch_id}|{_(OPEN_WATCH)}>"
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
