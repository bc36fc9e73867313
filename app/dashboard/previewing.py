"""Previews on the dashboard: a target's message for a sample event, rendered by the same function
as ``POST /api/v1/preview`` (``preview_request.preview_message``) and never sent, laid out for a
page: each part (text, blocks, body, headers) as text for a ``<pre>``, JSON pretty-printed.

Also the choices the message fields offer: the languages by their own names, the methods of an
``http`` target and the event types that have a sample event.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, get_args

from app.notify.results import TargetSnapshot
from app.notify.samples import SAMPLE_TYPES
from app.services import services
from app.vocabulary import EventType, Language
from app.watches.preview_request import preview_message
from app.watches.validation import HttpMethod

#: Each language of the default messages by its own name (as a language picker shows them).
LANGUAGE_NAMES: dict[str, str] = {
    Language.EN: "English",
    Language.KO: "한국어",
    Language.JA: "日本語",
}
#: The methods an ``http`` target may use.
HTTP_METHODS: tuple[str, ...] = get_args(HttpMethod)
#: The form field of the sample event's type, its choices and its default.
PREVIEW_EVENT_FIELD = "preview_event"
PREVIEW_EVENTS: tuple[str, ...] = SAMPLE_TYPES
DEFAULT_PREVIEW_EVENT = EventType.ANALYSIS_COMPLETED.value
#: The parts of a preview in the order shown, with their headings.
PARTS = (
    ("text", "Text (the notification's fallback)"),
    ("blocks", "Blocks (Slack Block Kit)"),
    ("headers", "Headers (webhook-signature left out)"),
    ("body", "Body"),
)


@dataclass(frozen=True)
class ShownPreview:
    """A rendered preview as a page shows it: what was previewed, and ``(part, heading, text)``."""

    target: str
    event_type: str
    parts: list[tuple[str, str, str]]


def chosen_event(form: Any) -> str:
    """The sample event type picked on a form; the default when none (an unknown one is kept, for
    the validation to refuse with its message)."""
    return str(form.get(PREVIEW_EVENT_FIELD, "") or DEFAULT_PREVIEW_EVENT).strip()


def bridge_language_name() -> str:
    """The bridge's ``BRIDGE_LANGUAGE``, by its own name."""
    language = services().settings.bridge_language
    return LANGUAGE_NAMES.get(language, str(language))


def preview(
    target: TargetSnapshot, event_type: str, what: str, withheld: Collection[str] = ()
) -> ShownPreview:
    """``target``'s message for a sample ``event_type`` event, nothing sent; the values of the
    ``withheld`` headers shown as ``****``. Raises ``InvalidWatch`` (``#/target/...``) for a
    template that fails."""
    settings = services().settings
    rendered = preview_message(
        target, event_type, services().clock(), settings.bridge_public_url,
        settings.bridge_language, withheld=withheld,
    )  # fmt: skip
    parts = [
        (name, heading, _shown(name, rendered[name]))
        for name, heading in PARTS
        if rendered.get(name) is not None
    ]
    return ShownPreview(what, event_type, parts)


def _shown(name: str, value: Any) -> str:
    """A part as text: JSON indented (a body only when it parses; else as it would be sent)."""
    if name == "text":
        return str(value)
    if name == "body":
        try:
            value = json.loads(value)
        except ValueError:
            return str(value)
    return json.dumps(value, indent=2, ensure_ascii=False)
