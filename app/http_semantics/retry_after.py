"""``Retry-After`` as a bounded wait: a peer may slow the bridge down, never stall or spin it.

RFC 9110 section 10.2.3 allows delta-seconds or an HTTP-date. Whatever a peer sends, the wait comes
back finite and between ``MIN_WAIT`` and ``MAX_WAIT`` (the contract's "1 s .. 1 h"): ``0`` or a date
in the past waits one second (a receiver cannot make the bridge retry every tick), and ``inf``,
``1e300``, ``NaN`` or text that is neither form wait the hour (the peer asked for a wait; we cannot
tell how long, so we take the longest we honour rather than none).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MIN_WAIT = 1.0
MAX_WAIT = 3600.0


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait, bounded to ``MIN_WAIT .. MAX_WAIT``; None only when the header is absent."""
    if value is None or not value.strip():
        return None
    return bounded_wait(_seconds(value.strip(), now))


def bounded_wait(seconds: float) -> float:
    """``seconds`` clamped to ``MIN_WAIT .. MAX_WAIT`` (NaN and infinities wait ``MAX_WAIT``)."""
    if not math.isfinite(seconds):
        return MAX_WAIT
    return min(MAX_WAIT, max(MIN_WAIT, seconds))


def _seconds(value: str, now: datetime) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return math.inf
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()
