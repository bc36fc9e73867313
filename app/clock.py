"""Time: the injectable clock type, now in UTC, and how the contract writes a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: What the app and the worker take "now" from (tests inject their own).
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the default ``Clock``)."""
    return datetime.now(UTC)


def rfc3339(value: datetime | None) -> str | None:
    """RFC 3339 UTC with a ``Z`` and millisecond precision (every time the API shows)."""
    if value is None:
        return None
    # The fields as written (the offset dropped: every time here is UTC): isoformat is ~2x faster.
    return value.isoformat(timespec="milliseconds")[:23] + "Z"
