"""Query parameters of list endpoints: strict parsing, 400 for anything this API did not promise."""

from __future__ import annotations

import re

from app.api.blueprint import fail

_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only (str.isdigit accepts "²"); fits a 64-bit integer


def bounded_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    """``value`` as an integer in [low, high], ``default`` when absent; 400 otherwise."""
    if value is None:
        return default
    if not _DIGITS.fullmatch(value) or not low <= int(value) <= high:
        fail(400, f"{name} must be an integer from {low} to {high}")
    return int(value)


def sequence_cursor(value: str | None, name: str) -> int | None:
    """A numeric cursor this API returned (a sequence number), None when absent; 400 otherwise."""
    if not value:
        return None
    if not _DIGITS.fullmatch(value):
        fail(400, f"{name} must be a cursor this API returned")
    return int(value)
