"""The endpoint page's edit and replay forms as the API's JSON bodies (``EndpointChange``,
``Replay``), and the API's field errors filed back under the form's fields.

Pure functions of the submitted fields; the views validate the bodies with the API's own models, so
the page says exactly what ``PATCH`` or ``POST .../replay`` would. The edit form also carries an
``http`` endpoint's method, headers (one ``Name: value`` a line, never shown: an empty field keeps
them) and body template, and a Slack endpoint's message template and language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.dashboard.watch_form import header_lines
from app.vocabulary import ReplayState, TargetType

EDIT_FIELDS = (
    "url", "channel", "method", "headers", "body", "template", "language", "description",
    "rate_limit_per_second",
)  # fmt: skip
#: The checkbox that removes every header of an ``http`` endpoint.
CLEAR_HEADERS = "clear_headers"
#: Multi-line fields: kept as typed (line endings made ``\n``), not stripped.
MULTILINE = frozenset({"headers", "body", "template"})
#: The endpoint types with a message template, and those with a message language.
TEMPLATE_TYPES = (TargetType.SLACK, TargetType.SLACK_WEBHOOK)
LANGUAGE_TYPES = (TargetType.SLACK, TargetType.SLACK_WEBHOOK, TargetType.HTTP)
REPLAY_FIELDS = ("state", "since", "until")
REPLAY_STATES = tuple(state.value for state in ReplayState)
FORM_ERRORS = "form"


@dataclass
class EndpointForm:
    """What was typed (to show it again), the API body it makes, and errors per form field."""

    values: dict[str, str]
    body: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add_error(self, name: str, message: str) -> None:
        """File ``message`` under the field ``name`` (``form`` for the form as a whole)."""
        self.errors.setdefault(name, []).append(message)

    def add_api_errors(self, errors: list[dict[str, str]], fields: tuple[str, ...]) -> None:
        """File each API error (``{pointer, detail}``) under the field its pointer names."""
        for error in errors:
            name, detail = field_for_pointer(error["pointer"], fields), error["detail"]
            parts = error["pointer"].split("/")
            if name == "headers" and len(parts) > 2:
                header = parts[2].replace("~1", "/").replace("~0", "~")
                detail = detail if f"'{header}'" in detail else f"{header}: {detail}"
            self.add_error(name, detail)


def field_for_pointer(pointer: str, fields: tuple[str, ...]) -> str:
    """The form field of an API error pointer (``#/rate_limit_per_second``); ``form`` if none."""
    head = pointer.removeprefix("#").strip("/").split("/")[0]
    return head if head in fields else FORM_ERRORS


def read_change(form: Mapping[str, Any], endpoint_type: str) -> EndpointForm:
    """The ``PATCH`` body of the edit form for an endpoint of ``endpoint_type``.

    An empty URL or channel keeps the current one (a Slack incoming-webhook URL is a credential the
    page never shows, so its field starts empty); an empty description or rate limit removes it.
    Empty headers keep the current ones (their values are never shown) unless ``clear_headers`` is
    ticked; an empty template or language removes it (the default text, ``BRIDGE_LANGUAGE``). The
    message fields change only when the form has them.
    """
    values = {name: _text(form, name) for name in EDIT_FIELDS}
    values[CLEAR_HEADERS] = "on" if form.get(CLEAR_HEADERS) else ""
    parsed = EndpointForm(values, {})
    body = parsed.body
    where = "channel" if endpoint_type == TargetType.SLACK else "url"
    if values[where]:
        body[where] = values[where]
    if endpoint_type == TargetType.HTTP:
        _read_request(form, parsed)
    if endpoint_type in TEMPLATE_TYPES and "template" in form:
        body["template"] = values["template"] or None
    if endpoint_type in LANGUAGE_TYPES and "language" in form:
        body["language"] = values["language"] or None
    body["description"] = values["description"] or None
    rate = values["rate_limit_per_second"]
    body["rate_limit_per_second"] = _number(rate) if rate else None
    return parsed


def _read_request(form: Mapping[str, Any], parsed: EndpointForm) -> None:
    """An ``http`` endpoint's method, headers and body, each when the form has it."""
    values, body = parsed.values, parsed.body
    if values["method"]:
        body["method"] = values["method"]
    if values["headers"]:
        headers, problems = header_lines(values["headers"])
        for problem in problems:
            parsed.add_error("headers", problem)
        body["headers"] = headers
    elif values[CLEAR_HEADERS]:
        body["headers"] = {}
    if "body" in form:
        body["body"] = values["body"]


def _text(form: Mapping[str, Any], name: str) -> str:
    text = str(form.get(name, ""))
    if name in MULTILINE:
        text = text.replace("\r\n", "\n")
        return text if text.strip() else ""
    return text.strip()


def read_replay(form: Mapping[str, Any]) -> EndpointForm:
    """The ``POST .../replay`` body of the replay form. A time without an offset is UTC (what a
    ``datetime-local`` field sends, and what the page says)."""
    values = {name: str(form.get(name, "")).strip() for name in REPLAY_FIELDS}
    body: dict[str, Any] = {"state": values["state"] or "dead"}
    for name in ("since", "until"):
        if values[name]:
            body[name] = _utc_text(values[name])
    return EndpointForm(values, body)


def _number(text: str) -> float | str:
    """A float when the text is one; else the text, which the schema refuses with its message."""
    try:
        return float(text)
    except ValueError:
        return text


def _utc_text(text: str) -> str:
    """``text`` as RFC 3339 with an offset (UTC when it had none); unparseable text unchanged, for
    the schema to refuse with its own message."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()
