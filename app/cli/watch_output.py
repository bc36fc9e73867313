"""Text shown by ``mi-bridge watch``: summaries, the list table, one watch in detail, the status line.

Every function here takes the contract's JSON shapes (``watch_resource(...).as_json()``) and
returns text, so what an operator reads and what the API answers cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

NONE = "-"
LIST_COLUMNS = ("ID", "STATE", "API", "STATUS", "ASSET", "CREATED")


def coordinates(body: dict[str, Any]) -> str:
    """``workspace/project_id/asset_id`` of a watch (the object being imported, until it has one)."""
    asset = body["asset_id"]
    if asset is None:
        imported = (body.get("workflow") or {}).get("import") or {}
        asset = f"(importing {imported.get('bucket_name')}/{imported.get('key')})"
    return f"{body['workspace']}/{body['project_id']}/{asset}"


def target_text(target: dict[str, Any]) -> str:
    """One target in a line: id, type, where it goes (Slack webhook URLs stay masked), and the
    endpoint it is, if any."""
    where = target.get("channel") or target.get("url") or NONE
    text = f"{target['id']}  {target['type']}  {where}"
    if target.get("endpoint"):
        text += f"  (endpoint {target['endpoint']})"
    if target.get("disabled"):
        text += f"  [disabled: {target.get('disabled_reason') or 'no reason recorded'}]"
    return text


def registration_summary(body: dict[str, Any]) -> list[str]:
    """What ``watch add`` prints: the new watch, its targets, and each generated secret once."""
    lines = [
        f"Watching {body['id']}: {coordinates(body)} (api {body['api']}),"
        f" deadline {body['deadline_at']}",
        *(f"  {target_text(target)}" for target in body["targets"]),
    ]
    for target in body["targets"]:
        if target.get("secret"):
            lines.append(
                f"Webhook secret of {target['id']} (shown only this once): {target['secret']}"
            )
    return lines


def watch_table(items: Sequence[dict[str, Any]]) -> list[str]:
    """The ``watch list`` table: one aligned row per watch under a header."""
    rows = [LIST_COLUMNS] + [
        (
            item["id"],
            item["state"],
            item["api"],
            _status_cell(item),
            coordinates(item),
            item["created_at"],
        )
        for item in items
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(LIST_COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _status_cell(item: dict[str, Any]) -> str:
    """The status, and ``!`` with the kind and count when the latest polls failed."""
    status = item["status"] or NONE
    error = item.get("last_error")
    if error:
        status += f" !{error['kind']} x{error['consecutive']}"
    return status


def _fields(pairs: Iterable[tuple[str, Any]]) -> list[str]:
    return [f"  {name:<10} {value}" for name, value in pairs if value not in (None, "", [], {})]


def watch_detail(body: dict[str, Any]) -> list[str]:
    """``watch show``: the watch's fields, then its targets, status history and deliveries."""
    status = body["status"] or NONE
    if body["index_id"] is not None:
        status += f" (index {body['index_id']})"
    lines = [f"Watch {body['id']}"]
    lines += _fields(
        [
            ("state", body["state"]),
            ("asset", f"{coordinates(body)} (api {body['api']})"),
            ("status", status),
            ("message", body["message"]),
            ("reason", body["reason"]),
            ("labels", ", ".join(f"{k}={v}" for k, v in body["labels"].items())),
            ("events", ", ".join(body["events"])),
            ("created", body["created_at"]),
            ("deadline", body["deadline_at"]),
            ("finished", body["finished_at"]),
            ("polls", f"{body['poll_count']} (last {body['last_polled_at'] or NONE})"),
            ("next poll", body["next_poll_at"]),
            ("last error", last_error_text(body["last_error"])),
        ]
    )
    lines.append("Targets")
    lines += [f"  {target_text(target)}" for target in body["targets"]]
    lines.append("History" if body["history"] else "History: none yet")
    lines += [_history_line(change) for change in body["history"]]
    lines.append("Deliveries" if body["deliveries"] else "Deliveries: none yet")
    lines += [_delivery_line(delivery) for delivery in body["deliveries"]]
    return lines


def last_error_text(error: dict[str, Any] | None) -> str | None:
    """The watch's ``last_error`` in one line: ``transient, HTTP 503, 3 in a row, at ...: text``."""
    if error is None:
        return None
    parts = [error["kind"]]
    if error["status_code"] is not None:
        parts.append(f"HTTP {error['status_code']}")
    parts.append(f"{error['consecutive']} in a row, last at {error['at']}")
    if error["request_id"]:
        parts.append(f"request id {error['request_id']}")
    return f"{', '.join(parts)}: {error['message']}"


def _history_line(change: dict[str, Any]) -> str:
    line = f"  {change['observed_at']}  {change['status'] or NONE}  (api {change['api']})"
    if change["index_id"] is not None:
        line += f"  index {change['index_id']}"
    if change["message"]:
        line += f"  {change['message']}"
    return line


def _delivery_line(delivery: dict[str, Any]) -> str:
    count = delivery["attempt_count"]
    line = (
        f"  {delivery['id']}  {delivery['event_type']} -> {delivery['target_id']}"
        f"  {delivery['state']}  {count} attempt{'' if count == 1 else 's'}"
    )
    if delivery["attempts"]:
        last = delivery["attempts"][-1]
        line += f", last {last['status_code'] or last['error'] or last['outcome']}"
    if delivery["state"] == "pending" and delivery["next_attempt_at"]:
        line += f", next {delivery['next_attempt_at']}"
    return line


def elapsed_text(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h03m00s``."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


@dataclass(frozen=True)
class Progress:
    """What ``watch add --wait`` shows of a watch at one database read."""

    state: str
    status: str | None
    api: str
    poll_count: int
    #: A workflow watch's stage while it watches (None: a plain watch, nothing to show).
    stage: str | None = None

    def line(self, elapsed: float) -> str:
        """The status line: state (and stage), upstream status, api, poll count, elapsed time."""
        state = f"{self.state} ({self.stage})" if self.stage else self.state
        return (
            f"{state}  status {self.status or NONE}  api {self.api}"
            f"  polls {self.poll_count}  elapsed {elapsed_text(elapsed)}"
        )


class StatusLine:
    """The live status line: rewritten in place (``\\r``) on a terminal, else a line per change."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last: Progress | None = None
        self.width = 0

    def show(self, progress: Progress, elapsed: float) -> None:
        """Render ``progress``; off a terminal only when it differs from the last one shown."""
        text = progress.line(elapsed)
        if self.tty:
            self.stream.write("\r" + text.ljust(self.width))
            self.width = len(text)
        elif progress != self.last:
            self.stream.write(text + "\n")
        self.last = progress
        self.stream.flush()

    def finish(self) -> None:
        """End an in-place line so that what follows starts on a line of its own."""
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


def end_summary(body: dict[str, Any]) -> str:
    """The last line of ``--wait``: how the watch ended, with the upstream's words when it gave any."""
    details = [body["status"]] if body["status"] else []
    if body["index_id"] is not None:
        details.append(f"index {body['index_id']}")
    if body["reason"] and body["reason"] != body["state"]:
        details.append(f"reason {body['reason']}")
    if body["message"]:
        details.append(body["message"])
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{body['id']} ended {body['state']}{suffix}"
