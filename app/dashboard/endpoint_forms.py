"""The endpoint page's edit and replay forms as the API's JSON bodies (``EndpointChange``,
``Replay``), and the API's field errors filed back under the form's fields.

Pure functions of the submitted fields; the views validate the bodies with the API's own models, so
the page says exactly what ``PATCH`` or ``POST .../replay`` would.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.vocabulary import ReplayState, TargetType

EDIT_FIELDS = ("url", "channel", "description", "rate_limit_per_second")
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
            self.add_error(field_for_pointer(error["pointer"], fields), error["detail"])


def field_for_pointer(pointer: str, fields: tuple[str, ...]) -> str:
    """The form field of an API error pointer (``#/rate_limit_per_second``); ``form`` if none."""
    head = pointer.removeprefix("#").strip("/").split("/")[0]
    return head if head in fields else FORM_ERRORS


def read_change(form: Mapping[str, Any], endpoint_type: str) -> EndpointForm:
    """The ``PATCH`` body of the edit form for an endpoint of ``endpoint_type``.

    An empty URL or channel keeps the current one (a Slack incoming-webhook URL is a credential the
    page never shows, so its field starts empty); an empty description or rate limit removes it.
    """
    values = {name: str(form.get(name, "")).strip() for name in EDIT_FIELDS}
    body: dict[str, Any] = {}
    where = "channel" if endpoint_type == TargetType.SLACK else "url"
    if values[where]:
        body[where] = values[where]
    body["description"] = values["description"] or None
    rate = values["rate_limit_per_second"]
    body["rate_limit_per_second"] = _number(rate) if rate else None
    return EndpointForm(values, body)


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
