"""Message templates of ``slack`` and ``slack_webhook`` targets: sandboxed Jinja2 whose autoescape is
mrkdwn escaping.

Every ``{{ ... }}`` value is escaped the way Slack asks (``&`` -> ``&amp;``, ``<`` -> ``&lt;``,
``>`` -> ``&gt;``; https://api.slack.com/reference/surfaces/formatting#escaping), so a label or an
upstream message can never become ``<!channel>``, a ``<@U123>`` mention or a ``<http://x|link>``;
what the template itself spells (``<{{ dashboard_url }}|Open>``) is mrkdwn as written. The sandbox
and its bounds are ``app.notify.templating``'s. Variables are the ``http`` body's (``event``,
``watch``, ``asset``, ``analysis``, ``labels``, ``dashboard_url``) and ``message``, the default
one-line text in the target's language. Templates are at most ``MAX_SOURCE_BYTES``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from functools import cache, lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Undefined

from app.notify import templating
from app.notify.languages import gettext_for
from app.notify.results import DeliveryResult
from app.notify.slack_blocks import SlackMessage, build_message, default_line, escape, with_text
from app.notify.templating import BoundedSandbox, TemplateFailed

MAX_SOURCE_BYTES = 4 * 1024
#: What an attempt records when the template failed and the default text went out instead.
FALLBACK_NOTE = "template failed, default text sent: "
NOTE_CHARS = 200


def mrkdwn_text(value: Any) -> str:
    """``value``'s text escaped for mrkdwn; None and undefined are empty, objects their JSON."""
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return escape(text)


@cache
def _environment() -> BoundedSandbox:
    # finalize runs on every ``{{ ... }}`` output: it is the autoescape, with no way around it.
    return BoundedSandbox(
        autoescape=False, finalize=mrkdwn_text, undefined=ChainableUndefined,
        keep_trailing_newline=True,
    )  # fmt: skip


@lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    return templating.compile_source(_environment(), source, MAX_SOURCE_BYTES)


def check_syntax(source: str) -> None:
    """Raise ``TemplateFailed`` (a short sentence) unless ``source`` compiles and is small enough."""
    _compiled(source)


def render(source: str, variables: Mapping[str, Any]) -> str:
    """``source`` rendered with ``variables``; ``TemplateFailed`` for any error or empty text
    (Slack refuses a section without text)."""
    text = templating.render_compiled(_compiled(source), variables)
    if not text.strip():
        raise TemplateFailed("renders empty text")
    return text


def variables(envelope: Mapping[str, Any], language: str | None, public_url: str | None) -> dict:
    """The template variables for one event envelope (parsed), ``message`` in ``language``: the
    same for ``http`` templates (``app.notify.http_target``) and message templates."""
    message = default_line(dict(envelope), gettext_for(language))
    return {**templating.variables(envelope, public_url), "message": message}


def message_for(
    event_body: str, template: str | None, language: str | None, public_url: str | None
) -> tuple[SlackMessage, str | None]:
    """The Slack message for one stored event and a note for the attempt: with a template, its
    text replaces the fallback text and the first section's; a template that fails leaves the
    default text and the note says why (``template failed, default text sent: ...``)."""
    message = build_message(event_body, public_url, language)
    if not template:
        return message, None
    try:
        text = render(template, variables(json.loads(event_body), language, public_url))
    except TemplateFailed as exc:
        return message, f"{FALLBACK_NOTE}{exc}"
    return with_text(message, text), None


def noted(result: DeliveryResult, note: str | None) -> DeliveryResult:
    """``result`` with a failed template's ``note`` recorded on the attempt, its outcome unchanged:
    as its ``error`` when the send itself went well (a success stays a success), else after the
    send's own ``error_detail`` (the send's error is what the outbox and health act on)."""
    if not note:
        return result
    if result.error is None:
        return replace(result, error=note[:NOTE_CHARS], error_detail=note)
    return replace(result, error_detail=f"{result.error_detail or result.error}; {note}")
