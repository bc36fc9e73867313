"""Checks of an ``http`` target's templates at registration: they compile, and render (the body as
valid JSON) for a sample event of each event type the target will be sent.

Each check raises ``ValueError`` with the sentence a ``422`` shows after the field's pointer, or
returns the errors as ``{"pointer", "detail"}`` items for checks that span fields (the events of a
registration and its targets).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.notify import mrkdwn_templates, templating
from app.notify.http_target import HEADER_NAME, render_headers, reserved_header
from app.notify.samples import sample_envelope
from app.notify.templating import TemplateFailed
from app.vocabulary import EventType

#: The event every ``http`` template is checked against, whatever it is subscribed to.
FIRST_SAMPLE = EventType.ANALYSIS_COMPLETED.value


def _variables(event_type: str) -> dict[str, Any]:
    return mrkdwn_templates.variables(sample_envelope(event_type), None, None)


def body_problem(source: str, event_type: str = FIRST_SAMPLE) -> str | None:
    """Why the body template ``source`` is refused for a sample ``event_type`` event, or None."""
    try:
        templating.check_syntax(source)
    except TemplateFailed as exc:
        return str(exc)
    variables = _variables(event_type)
    try:
        text = templating.render(source, variables)
    except TemplateFailed as exc:
        return f"fails for a sample {event_type} event: {exc}"
    try:
        templating.check_json(text)
    except TemplateFailed as exc:
        reason = str(exc).removeprefix("does not render valid JSON: ")
        return f"does not render valid JSON for a sample {event_type} event: {reason}"
    return None


def header_value_problem(source: str, event_type: str = FIRST_SAMPLE) -> str | None:
    """Why the header value template ``source`` is refused for a sample event, or None."""
    try:
        templating.check_syntax(source)
        render_headers({"value": source}, _variables(event_type))
    except TemplateFailed as exc:
        reason = str(exc).removeprefix("header value ").removeprefix("template failed: ")
        return f"{reason} (for a sample {event_type} event)"
    return None


def checked_body(source: str) -> str:
    """``source`` if it renders valid JSON for a sample ``analysis.completed``; else ValueError."""
    problem = body_problem(source)
    if problem is not None:
        raise ValueError(problem)
    return source


def checked_header_name(name: str) -> str:
    """``name`` if a template may set it; else ValueError."""
    if not HEADER_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} is not an HTTP header name (letters, digits and !#$%&'*+.^_`|~-)"
        )
    if reserved_header(name):
        raise ValueError(
            f"{name!r} may not be set: host, content-length, transfer-encoding, connection and "
            "webhook-* headers are the bridge's own"
        )
    return name


def checked_header_value(source: str) -> str:
    """``source`` if it renders for a sample ``analysis.completed``; else ValueError."""
    problem = header_value_problem(source)
    if problem is not None:
        raise ValueError(problem)
    return source


def event_errors(
    body: str, headers: Mapping[str, str], event_types: Iterable[str], pointer: str
) -> list[dict[str, str]]:
    """Problems of a target's templates (already valid for ``analysis.completed``) with the sample
    events of ``event_types``; ``pointer`` is the target's (``#/targets/0``). At most one per field."""
    errors: list[dict[str, str]] = []
    for event_type in dict.fromkeys(event_types):
        if event_type == FIRST_SAMPLE:
            continue
        problem = body_problem(body, event_type)
        if problem is not None and not any(e["pointer"] == f"{pointer}/body" for e in errors):
            errors.append({"pointer": f"{pointer}/body", "detail": problem})
        for name, value in headers.items():
            where = f"{pointer}/headers/{name.replace('~', '~0').replace('/', '~1')}"
            problem = header_value_problem(value, event_type)
            if problem is not None and not any(e["pointer"] == where for e in errors):
                errors.append({"pointer": where, "detail": problem})
    return errors
