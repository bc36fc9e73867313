"""How a refused registration reads: one sentence per pydantic error, shared by the API's ``422``
``errors[].detail``, ``mi-bridge watch add`` and the dashboard's form.

Pydantic's own messages name regular expressions and its internals (``String should match pattern
'^[^\\x00-\\x20\\x7f]+$'``); people get the rule instead, worded for the field it is about. The
sentences start lowercase, since they follow a JSON pointer or a field name (``#/targets/0/url:
must be ...``). Only the wording lives here: what is accepted is decided by the schemas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.vocabulary import EventType, Language, TargetType

#: What an upstream id may be, as people read it (shown as the 422 detail and in the document).
UPSTREAM_ID_RULE = "must be 1 to 128 letters, digits, '.', '_' or '-', and not '.' or '..'"
URL_RULE = "must be an http(s) URL without spaces or control characters"
CHANNEL_RULE = (
    "must be 1 to 80 letters, digits, '.', '_' or '-', optionally after a '#' "
    "(a channel id like C0123456789 or a name)"
)
TIMEOUT_RULE = "must be a number of seconds from 60 to 2592000 (30 days)"
WHSEC_RULE = "must be a string: whsec_ followed by the standard base64 of 24 to 64 bytes"
CONTROL_CHARACTERS = "control characters (a newline, a tab...)"
OPTIONS_RULE = "must be an object of options (passed to NCP as given; {} for none)"


def one_of(values: Sequence[str]) -> str:
    """``'a', 'b' or 'c'``: the way pydantic lists choices, kept for every list of choices."""
    *first, last = (f"'{value}'" for value in values)
    return f"{', '.join(first)} or {last}" if first else last


ENDPOINT_NAME_RULE = "1 to 63 lower-case letters, digits, '.', '_' or '-', first a letter or digit"
TARGET_TYPES = one_of([kind.value for kind in TargetType])

#: Sentences for one field, by pydantic error type; a field's ``*`` answers any type not listed.
FIELD_SENTENCES: dict[str, dict[str, str]] = {
    "id": {
        "string_type": "must be a string or a whole number "
        "(1 to 128 letters, digits, '.', '_' or '-', and not '.' or '..')"
    },
    "url": {"string_too_long": "must be at most 2048 characters", "*": URL_RULE},
    "channel": {"*": CHANNEL_RULE},
    "name": {"*": ENDPOINT_NAME_RULE},
    "endpoint": {"*": "must be the name or id of an endpoint (" + ENDPOINT_NAME_RULE + ")"},
    "rate_limit_per_second": {"*": "must be a number above 0 and at most 1000"},
    "overlap_seconds": {"*": "must be a number of seconds from 0 to 2592000 (30 days)"},
    "secret": {"*": WHSEC_RULE},
    "method": {"*": "must be 'POST' or 'PUT'"},
    "body": {"*": "must be a string: a template that renders JSON"},
    "template": {"*": "must be a string: a template of the message text (mrkdwn, at most 4 KiB)"},
    "language": {"*": "must be " + one_of([language.value for language in Language])},
    "headers": {
        "too_long": "must have at most 20 headers",
        "*": "must be an object of header names to value templates (strings)",
    },
    "event_type": {"*": "must be an event type (" + one_of([e.value for e in EventType]) + ")"},
    "type": {
        "union_tag_not_found": f"required: {TARGET_TYPES}",
        "*": f"must be {TARGET_TYPES}",
    },
    "target": {
        "*": "must be an object with a type: " + TARGET_TYPES + ', or {"endpoint": "<name>"}'
    },
    "targets": {"*": "must be a list of 1 to 10 targets"},
    "events": {"list_type": "must be a list of event names", "*": "must name at least one event"},
    "labels": {
        "too_long": "must have at most 20 labels",
        "*": "must be an object whose keys and values are strings",
    },
    "label_key": {
        "string_too_short": "the key must not be empty",
        "string_too_long": "the key must be at most 64 characters",
        "*": f"the key must not contain {CONTROL_CHARACTERS}",
    },
    "label_value": {
        "string_type": "the value must be a string",
        "string_too_long": "the value must be at most 256 characters",
        "*": f"the value must not contain {CONTROL_CHARACTERS}",
    },
    "timeout_seconds": {"*": TIMEOUT_RULE},
    "import": {"*": 'must be an object: {"bucket_name", "key"}'},
    "bucket_name": {
        "*": "must be an Object Storage bucket name: 3 to 63 lower-case letters, digits, '.' or "
        "'-', starting and ending with a letter or digit"
    },
    "key": {
        "string_too_short": "must not be empty",
        "string_too_long": "must be at most 1024 characters",
        "*": "must be a string: the object's key in its bucket",
    },
    "analyze": {"too_long": "must have at most 20 options", "*": OPTIONS_RULE},
    "summarize": {"too_long": "must have at most 20 options", "*": OPTIONS_RULE},
    "stalled_after_seconds": {"*": "must be a number of seconds from 1 to 2592000 (30 days)"},
}

#: Sentences for any field, by pydantic error type (``{ge}`` and the like come from the error's ``ctx``).
TYPE_SENTENCES: dict[str, str] = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "enum": "must be {expected}",
    "literal_error": "must be {expected}",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "string_too_short": "must have at least {min_length} characters",
    "string_too_long": "must be at most {max_length} characters",
    "too_short": "must have at least {min_length} items",
    "too_long": "must have at most {max_length} items",
    "string_pattern_mismatch": "has characters that are not allowed here",
    "union_tag_invalid": f"must be {TARGET_TYPES}",
    "union_tag_not_found": f"required: {TARGET_TYPES}",
}
#: For a pydantic error type no table names (none is known to reach a registration).
FALLBACK = "is not valid here"
#: Where pydantic puts a label's key in an error's location.
KEY_MARKER = "[key]"
UPSTREAM_IDS = ("workspace", "project_id", "asset_id")


def describe(error: Mapping[str, Any]) -> str:
    """The sentence for one pydantic error (an item of ``ValidationError.errors()``).

    Our own validators' messages (``value_error``: the address guard, secrets, ids) are already
    sentences and are kept; every other type is worded by field, then by type.
    """
    kind = str(error["type"])
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind in ("missing", "extra_forbidden"):
        return TYPE_SENTENCES[kind]
    sentences = FIELD_SENTENCES.get(_field(error["loc"], kind), {})
    if kind in sentences or "*" in sentences:
        return sentences.get(kind, sentences.get("*", FALLBACK))
    template = TYPE_SENTENCES.get(kind)
    if template is None:
        return FALLBACK
    try:
        return template.format(**(error.get("ctx") or {}))
    except (KeyError, IndexError):
        return FALLBACK


def _field(loc: Sequence[Any], kind: str) -> str:
    """Which field of a registration an error location is about (a key of ``FIELD_SENTENCES``)."""
    head = loc[0] if loc else ""
    if head in UPSTREAM_IDS:
        return "id"
    if head == "events" and len(loc) > 1:
        return "event"
    if head == "labels" and len(loc) > 1:
        return "label_key" if loc[-1] == KEY_MARKER else "label_value"
    if head == "import" and len(loc) > 1:
        return str(loc[-1])
    if head in ("targets", "target") and len(loc) > 1:
        if kind.startswith("union_tag"):
            return "type"
        if head == "targets" and len(loc) == 2:
            return "target"
        # ("targets", 0, "webhook", "url"), or the preview's ("target", "webhook", "url")
        return str(loc[-1])
    return str(head)
