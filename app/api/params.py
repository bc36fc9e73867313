"""Query parameters of list endpoints: strict parsing, 400 for anything this API did not promise.

Every value is checked before it reaches a query, so text no column can hold (PostgreSQL refuses
NUL) and numbers no key can reach are refused here, naming the parameter, rather than failing in
the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

from app.api.blueprint import fail

#: ASCII digits only (``str.isdigit`` accepts "²"); 18 of them always fit a 64-bit key.
_DIGITS = re.compile(r"[0-9]{1,18}")
#: What a filter on an id or a coordinate may be: the characters every stored id is made of.
_FILTER = re.compile(r"[A-Za-z0-9._-]{1,128}")
FILTER_RULE = "must be 1 to 128 letters, digits, '.', '_' or '-'"
#: The same rules for the OpenAPI document (empty: no filter, the first page).
FILTER_PATTERN = r"^[A-Za-z0-9._-]{0,128}$"
SEQ_CURSOR_PATTERN = r"^([0-9]{1,18})?$"


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


def text_cursor(value: str | None, name: str, pattern: re.Pattern[str]) -> str | None:
    """A textual cursor (an id) matching all of ``pattern``, None when absent; 400 otherwise."""
    if not value:
        return None
    if not pattern.fullmatch(value):
        fail(400, f"{name} must be a cursor this API returned")
    return value


def id_filter(value: str | None, name: str) -> str | None:
    """A filter on an id or coordinate, None when absent or empty; 400 for text no id can be."""
    if not value:
        return None
    if not _FILTER.fullmatch(value):
        fail(400, f"{name} {FILTER_RULE}")
    return value


def choice(value: str | None, name: str, allowed: Iterable[str]) -> str | None:
    """``value`` when it is one of ``allowed``, None when absent; 400 naming them otherwise."""
    if value is None:
        return None
    options = tuple(allowed)
    if value not in options:
        fail(400, f"{name} must be one of {', '.join(options)}")
    return value


def id_filters(args: Mapping[str, str], names: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``(name, value)`` for each of ``names`` given in ``args`` (checked as by ``id_filter``)."""
    for name in names:
        value = id_filter(args.get(name), name)
        if value is not None:
            yield name, value
