"""Text shown by ``mi-bridge endpoint``: the list table, one endpoint in detail, secrets shown once.

Every function takes the API's JSON shape of an endpoint (``endpoint_resource(...).as_json()``) and
returns lines, so what an operator reads and what the API answers cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

NONE = "-"
LIST_COLUMNS = ("NAME", "TYPE", "DESTINATION", "STATE", "PENDING", "DEAD", "WATCHING")


def destination(body: dict[str, Any]) -> str:
    """Where the endpoint sends: its channel or URL (a Slack webhook's credential stays masked)."""
    return body.get("channel") or body.get("url") or NONE


def state_text(body: dict[str, Any]) -> str:
    """``enabled``, ``failing since ...`` or ``disabled (reason)``."""
    if body["disabled"]:
        return f"disabled ({body['disabled_reason'] or 'no reason recorded'})"
    if body["failing_since"]:
        return f"failing since {body['failing_since']}"
    return "enabled"


def endpoint_table(items: Sequence[dict[str, Any]]) -> list[str]:
    """The ``endpoint list`` table: one aligned row per endpoint under a header."""
    rows = [LIST_COLUMNS] + [
        (
            item["name"],
            item["type"],
            destination(item),
            "disabled" if item["disabled"] else "enabled",
            str(item["pending_deliveries"]),
            str(item["dead_deliveries"]),
            str(item["watching_watches"]),
        )
        for item in items
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(LIST_COLUMNS))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def endpoint_detail(body: dict[str, Any]) -> list[str]:
    """``endpoint show``: what it is, where it sends, and its health."""
    rate = body["rate_limit_per_second"]
    deliveries = (
        f"{body['pending_deliveries']} pending ({body['held_deliveries']} held),"
        f" {body['dead_deliveries']} dead, {body['failed_deliveries']} failed"
    )
    pairs = [
        ("id", body["id"]),
        ("type", body["type"]),
        ("sends to", destination(body)),
        ("about", body["description"]),
        ("rate limit", None if rate is None else f"{rate:g} per second"),
        ("state", state_text(body)),
        ("last ok", body["last_success_at"]),
        ("last error", body["last_failure_at"]),
        ("deliveries", deliveries),
        ("used by", _watches_text(body["watching_watches"])),
        ("old secret", _overlap_text(body["previous_secret_until"])),
        ("created", body["created_at"]),
        ("changed", body["updated_at"]),
    ]
    return [f"Endpoint {body['name']}"] + [
        f"  {name:<10} {value}" for name, value in pairs if value not in (None, "")
    ]


def _watches_text(count: int) -> str:
    return f"{count} watching watch{'' if count == 1 else 'es'}"


def _overlap_text(until: str | None) -> str | None:
    return None if until is None else f"still signs (a second signature) until {until}"


def created_summary(body: dict[str, Any]) -> list[str]:
    """What ``endpoint add`` prints: the new endpoint, its secret once, and how to use it."""
    lines = [f"Created endpoint {body['name']} ({body['id']}): {body['type']} {destination(body)}"]
    if body.get("secret"):
        lines.append(f"Webhook secret of {body['name']} (shown only this once): {body['secret']}")
    lines.append(
        f'Refer to it in registrations as {{"endpoint": "{body["name"]}"}}'
        f" (mi-bridge watch add ... --endpoint {body['name']})."
    )
    return lines


def rotated_summary(body: dict[str, Any]) -> list[str]:
    """What ``endpoint rotate`` prints: the new secret once, and how long the old one still signs."""
    lines = [f"New webhook secret of {body['name']} (shown only this once): {body['secret']}"]
    until = body["previous_secret_until"]
    if until is None:
        lines.append("The previous secret no longer signs: requests carry the new signature only.")
    else:
        lines.append(
            f"Until {until} every request carries two signatures, the new and the previous"
            " secret's: switch your receiver to the new secret before then."
        )
    return lines
