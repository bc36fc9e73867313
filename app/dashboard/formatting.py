"""How the dashboard writes times, durations, excerpts, URLs and JSON (Jinja filters; pure)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

from flask import Flask
from markupsafe import Markup

from app.clock import rfc3339

EXCERPT_CHARACTERS = 200
#: Where a URL may wrap: after each separator (but not between the two slashes of ``https://``).
_URL_BREAKS = re.compile(r"(?<=[/?&=#.])(?!/)")


def when(value: datetime | None) -> str:
    """``2026-11-25 12:00:03 UTC``, or an em dash for no time."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def clock_time(value: datetime | None) -> str:
    """``12:00:03`` (UTC), for timelines where the date is shown once."""
    return "—" if value is None else value.strftime("%H:%M:%S")


def duration(value: timedelta | float | None) -> str:
    """A human duration: ``350 ms``, ``4.2 s``, ``3 min 12 s``, ``2 h 5 min``, ``3 d 4 h``."""
    if value is None:
        return "—"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    seconds = max(seconds, 0.0)
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


def excerpt(value: str | None, limit: int = EXCERPT_CHARACTERS) -> str:
    """At most ``limit`` characters of ``value`` on one line, with an ellipsis when cut."""
    if not value:
        return ""
    text = " ".join(value.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_text(value: object, indent: int | None = None) -> str:
    """``value`` as JSON text, non-ASCII characters as themselves (escaped by the template)."""
    return json.dumps(value, ensure_ascii=False, indent=indent)


def breakable_url(value: str | None) -> Markup:
    """``value`` (a URL), escaped, with a line-break opportunity (``<wbr>``) after each ``/``,
    ``.``, ``?``, ``&``, ``=`` and ``#``: a long URL wraps at its separators, not mid-word."""
    if not value:
        return Markup("")
    return Markup("<wbr>").join(_URL_BREAKS.split(value))


def install_filters(app: Flask) -> None:
    """Make the filters above available to every template as ``when``, ``duration``..."""
    app.add_template_filter(when, "when")
    app.add_template_filter(clock_time, "clock_time")
    app.add_template_filter(duration, "duration")
    app.add_template_filter(excerpt, "excerpt")
    app.add_template_filter(breakable_url, "breakable_url")
    app.add_template_filter(rfc3339, "rfc3339")
    app.add_template_filter(json_text, "json_text")
