"""Body templates of ``http`` targets: sandboxed Jinja2 whose autoescape is JSON-string escaping.

``"{{ asset.asset_id }}"`` inserts the value's text escaped for a JSON string (quotes, backslashes,
control characters; no quotes added), so a label can never break out of the string it sits in;
``{{ labels | tojson }}`` inserts any value as JSON, not escaped again. Unknown variables and None
render empty. Templates are at most ``MAX_SOURCE_BYTES``, their output at most
``MAX_OUTPUT_BYTES``; ``range`` and repetition (``*``, ``**``) are bounded, and the sandbox keeps
templates away from Python internals. Every failure is a ``TemplateFailed`` with a short sentence.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError, Undefined
from jinja2.sandbox import SandboxedEnvironment

MAX_SOURCE_BYTES = 16 * 1024
MAX_OUTPUT_BYTES = 64 * 1024
#: Items all ``range()`` calls of one render may produce together (nested loops multiply).
MAX_RANGE_ITEMS = 10_000
MAX_EXPONENT = 64


class TemplateFailed(ValueError):
    """A template that cannot be compiled or rendered; ``str()`` is a short human sentence."""


class JsonText(str):
    """Text that is JSON already (``tojson``'s output): inserted as it is, never escaped again."""

    __slots__ = ()


def json_string_text(value: Any) -> str:
    """``value``'s text escaped for the inside of a JSON string (no quotes added); None is empty."""
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:  # a dict or list: its JSON text, as a string
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _finalize(value: Any) -> str:
    # Runs on every ``{{ ... }}`` output: this is the autoescape.
    return value if isinstance(value, JsonText) else json_string_text(value)


def _tojson(value: Any) -> JsonText:
    if isinstance(value, Undefined):
        value = None
    return JsonText(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str))


class BoundedRange:
    """``range`` for one render: at most ``MAX_RANGE_ITEMS`` items over all its calls."""

    def __init__(self) -> None:
        self.left = MAX_RANGE_ITEMS

    def __call__(self, *args: int) -> range:
        items = range(*args)
        self.left -= len(items)
        if self.left < 0:
            raise TemplateFailed(f"range() produced more than {MAX_RANGE_ITEMS} items")
        return items


class BoundedSandbox(SandboxedEnvironment):
    """The sandbox with bounded repetition: ``"x" * 10**9`` fails instead of eating memory.
    Shared by every template language of the bridge (``app.notify.mrkdwn_templates`` too)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise TemplateFailed(f"exponents above {MAX_EXPONENT} are not allowed")
            return left**right
        for sequence, count in ((left, right), (right, left)):
            repeated = isinstance(sequence, str | list | tuple) and isinstance(count, int)
            if repeated and len(sequence) * count > MAX_OUTPUT_BYTES:
                raise TemplateFailed("a repetition would exceed the output limit")
        return left * right


@cache
def _environment() -> BoundedSandbox:
    env = BoundedSandbox(
        autoescape=False,
        finalize=_finalize,
        undefined=ChainableUndefined,
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = _tojson
    return env


def compile_source(environment: BoundedSandbox, source: str, max_bytes: int) -> Any:
    """``source`` compiled by ``environment``; ``TemplateFailed`` (a short sentence) when it is over
    ``max_bytes`` or not a valid template. Shared by the http body and the Slack text templates."""
    if len(source.encode("utf-8")) > max_bytes:
        raise TemplateFailed(f"is longer than {max_bytes // 1024} KiB")
    try:
        return environment.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateFailed(f"template syntax error on line {exc.lineno}: {exc.message}") from None


@lru_cache(maxsize=256)
def _compiled(source: str) -> Any:
    return compile_source(_environment(), source, MAX_SOURCE_BYTES)


def check_syntax(source: str) -> None:
    """Raise ``TemplateFailed`` unless ``source`` compiles (and is small enough)."""
    _compiled(source)


def render(source: str, variables: Mapping[str, Any]) -> str:
    """``source`` rendered with ``variables``; ``TemplateFailed`` for any error or an output over
    ``MAX_OUTPUT_BYTES`` (rendering stops as soon as it is over)."""
    return render_compiled(_compiled(source), variables)


def render_compiled(template: Any, variables: Mapping[str, Any]) -> str:
    """A template compiled by a ``BoundedSandbox`` rendered with ``variables`` and a bounded
    ``range``; ``TemplateFailed`` for any error or an output over ``MAX_OUTPUT_BYTES``."""
    parts: list[str] = []
    size = 0
    try:
        for part in template.generate({**variables, "range": BoundedRange()}):
            size += len(part.encode("utf-8"))
            if size > MAX_OUTPUT_BYTES:
                raise TemplateFailed(f"renders more than {MAX_OUTPUT_BYTES // 1024} KiB")
            parts.append(part)
    except TemplateFailed:
        raise
    except TemplateError as exc:
        raise TemplateFailed(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # the template's own arithmetic (1 / 0), bad calls...
        raise TemplateFailed(f"{type(exc).__name__}: {exc}") from None
    return "".join(parts)


def render_json(source: str, variables: Mapping[str, Any]) -> str:
    """``render``, then ``TemplateFailed`` unless the output is one valid JSON document."""
    text = render(source, variables)
    check_json(text)
    return text


def check_json(text: str) -> None:
    """``TemplateFailed`` (``does not render valid JSON: ...``) unless ``text`` is valid JSON."""
    try:
        json.loads(text)
    except ValueError as exc:
        raise TemplateFailed(f"does not render valid JSON: {exc}") from None


def variables(envelope: Mapping[str, Any], public_url: str | None) -> dict[str, Any]:
    """The template variables for one event envelope (its parsed JSON): ``event``, ``watch``,
    ``asset``, ``analysis``, ``labels`` and ``dashboard_url`` (empty without ``public_url``)."""
    data = envelope.get("data") or {}
    watch = data.get("watch") or {}
    watch_id = watch.get("id")
    dashboard = f"{public_url.rstrip('/')}/watches/{watch_id}" if public_url and watch_id else ""
    return {
        "event": dict(envelope),
        "watch": watch,
        "asset": data.get("asset") or {},
        "analysis": data.get("analysis") or {},
        "labels": watch.get("labels") or {},
        "dashboard_url": dashboard,
    }
