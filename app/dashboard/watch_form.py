"""The registration form as the API's JSON: build the body from form fields, and map the API's
field errors (JSON pointers) back to the fields, so the form says exactly what the API would.

Pure functions of the submitted fields; the view validates with ``WatchCreate`` itself. Endpoints
ticked on the form become ``{"endpoint": name}`` targets after the inline ones. The one language
select applies to every inline target with default messages (``slack``, ``slack_webhook``,
``http``); an ``http`` target's headers are typed one ``Name: value`` a line.

A workflow is asked for with the import fields (``import``: bucket and key, instead of an asset id),
the two "request" checkboxes with their options typed as JSON objects (``analyze``, ``summarize``)
and ``stalled_after_seconds``, which subscribes ``analysis.stalled`` too (the API reports a stalled
analysis only to watches that subscribe it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.vocabulary import DEFAULT_EVENTS, ApiGeneration, EventType

#: Text fields of the form, copied into the body under the same name when not empty.
TEXT_FIELDS = ("workspace", "project_id", "asset_id")
#: Target fields in the order their targets are added to the body, with the body key they fill.
#: The first field of each is where an error about the target as a whole is shown.
TARGET_FIELDS = (
    ("webhook", (("webhook_url", "url"), ("webhook_secret", "secret"))),
    ("slack", (("slack_channel", "channel"), ("slack_template", "template"))),
    ("slack_webhook", (("slack_webhook_url", "url"), ("slack_webhook_template", "template"))),
    (
        "http",
        (
            ("http_url", "url"),
            ("http_method", "method"),
            ("http_headers", "headers"),
            ("http_body", "body"),
        ),
    ),
)
#: Fields that only qualify a target (a select always has a value): filling them alone adds none.
QUALIFIERS = frozenset({"http_method"})
#: Multi-line fields: kept as typed (line endings made ``\n``), not stripped.
MULTILINE = frozenset(
    {
        "slack_template", "slack_webhook_template", "http_headers", "http_body",
        "analyze_options", "summarize_options",
    }
)  # fmt: skip
#: The object to import instead of an asset id: form field and key of the body's ``import``.
IMPORT_FIELDS = (("import_bucket_name", "bucket_name"), ("import_key", "key"))
#: Work to request: the checkbox (also the body key), its options field, the checkbox's label and
#: what the options are of.
WORK_FIELDS = (
    ("analyze", "analyze_options", "Request an analysis", "analysis request"),
    ("summarize", "summarize_options", "Request a scene summary after it", "summary request"),
)
STALLED_FIELD = "stalled_after_seconds"
#: The one language select, given to every target type that has default messages.
LANGUAGE_FIELD = "language"
LANGUAGE_TYPES = ("slack", "slack_webhook", "http")
API_CHOICES = tuple(ApiGeneration)
FORM_ERRORS = "form"
#: The form field of the endpoint checkboxes, and the target type ``target_types`` records for
#: each ``{"endpoint": name}`` target (errors about one are filed under the checkboxes).
ENDPOINTS_FIELD = "endpoints"
ENDPOINT_TARGET = "endpoint"


@dataclass
class WatchForm:
    """What was typed (to show it again), the API body it makes, and errors per form field."""

    values: dict[str, Any]
    body: dict[str, Any]
    errors: dict[str, list[str]] = field(default_factory=dict)
    #: For each target in ``body["targets"]``: the type, to find its fields from a pointer.
    target_types: list[str] = field(default_factory=list)

    def add_error(self, name: str, message: str) -> None:
        """File ``message`` under the form field ``name`` (``form`` for the form as a whole)."""
        self.errors.setdefault(name, []).append(message)


def blank_form() -> WatchForm:
    """The form as first shown: default events ticked, everything else empty."""
    return WatchForm(values={"events": list(DEFAULT_EVENTS)}, body={})


def read_form(
    form: Mapping[str, Any], events: list[str], endpoints: Sequence[str] = ()
) -> WatchForm:
    """The API body for the submitted fields (``events``, ``endpoints``: the ticked checkboxes).

    Empty fields are left out of the body, so the API's own "required" and defaults apply. Label
    lines that are not ``key=value`` are form errors of their own (the API takes an object).
    """
    values: dict[str, Any] = {name: _text(form, name) for name in _all_fields()}
    values["labels"] = str(form.get("labels", ""))
    values["events"] = list(events)
    values[ENDPOINTS_FIELD] = list(dict.fromkeys(name for name in endpoints if name))
    parsed = WatchForm(values=values, body={})
    body = parsed.body
    for name in TEXT_FIELDS:
        if values[name]:
            body[name] = values[name]
    if values["api"]:
        body["api"] = values["api"]
    targets = []
    for target_type, _fields in TARGET_FIELDS:
        target = inline_target(parsed, target_type)
        if target is not None:
            targets.append(target)
            parsed.target_types.append(target_type)
    for name in values[ENDPOINTS_FIELD]:
        targets.append({"endpoint": name})
        parsed.target_types.append(ENDPOINT_TARGET)
    if targets:
        body["targets"] = targets
    body["labels"] = _labels(values["labels"], parsed)
    body["events"] = list(events)
    if values["timeout_seconds"]:
        body["timeout_seconds"] = _number(values["timeout_seconds"])
    _add_workflow(parsed, form)
    return parsed


def _add_workflow(parsed: WatchForm, form: Mapping[str, Any]) -> None:
    """The workflow's part of the body: ``import``, ``analyze``, ``summarize`` (options parsed
    from JSON, an unparseable one a form error) and ``stalled_after_seconds`` with its event."""
    values, body = parsed.values, parsed.body
    given = {key: values[name] for name, key in IMPORT_FIELDS if values[name]}
    if given:
        body["import"] = given
    for box, options_field, label, _what in WORK_FIELDS:
        values[box] = bool(form.get(box))
        if values[box]:
            body[box] = work_options(parsed, options_field)
        elif values[options_field]:
            parsed.add_error(options_field, f"tick “{label}” to send these options, or clear them")
    if values[STALLED_FIELD]:
        body[STALLED_FIELD] = _number(values[STALLED_FIELD])
        if EventType.ANALYSIS_STALLED not in body["events"]:
            body["events"].append(EventType.ANALYSIS_STALLED.value)


def work_options(form: WatchForm, name: str) -> Any:
    """The options typed in field ``name`` as JSON (``{}`` when empty). Text that is not JSON is a
    form error (``{}`` stands in); JSON that is not an object is returned for the API to refuse
    with its own message."""
    text = form.values[name]
    if not text:
        return {}
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        problem = f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    except ValueError as exc:  # NaN or Infinity, which Python's json reads and JSON has not
        problem = str(exc)
    form.add_error(name, f'must be a JSON object, e.g. {{"sceneRange": "ALL"}}: {problem}')
    return {}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def inline_target(form: WatchForm, target_type: str) -> dict[str, Any] | None:
    """The API's JSON of the form's ``target_type`` target; None when none of its fields is filled.

    Header lines that are not ``Name: value`` are form errors of the ``http_headers`` field.
    """
    values = form.values
    fields = dict(TARGET_FIELDS)[target_type]
    if not any(values[name] for name, _key in fields if name not in QUALIFIERS):
        return None
    target: dict[str, Any] = {"type": target_type}
    for name, key in fields:
        if not values[name]:
            continue
        if name == "http_headers":
            headers, problems = header_lines(values[name])
            for problem in problems:
                form.add_error(name, problem)
            target[key] = headers
        else:
            target[key] = values[name]
    if values[LANGUAGE_FIELD] and target_type in LANGUAGE_TYPES:
        target["language"] = values[LANGUAGE_FIELD]
    return target


def header_lines(text: str) -> tuple[dict[str, str], list[str]]:
    """Headers written one ``Name: value`` a line (blank lines skipped), and what is wrong with
    the lines that are not (a name given twice, in any case, among them)."""
    headers: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not name:
            problems.append(f"line {number}: write each header as Name: value")
        elif name.lower() in (known.lower() for known in headers):
            problems.append(f"line {number}: {name} is given twice")
        else:
            headers[name] = value.strip()
    return headers, problems


def _text(form: Mapping[str, Any], name: str) -> str:
    text = str(form.get(name, ""))
    if name in MULTILINE:
        text = text.replace("\r\n", "\n")
        return text if text.strip() else ""
    return text.strip()


def _all_fields() -> list[str]:
    names = [*TEXT_FIELDS, "api", "timeout_seconds", LANGUAGE_FIELD, STALLED_FIELD]
    names += [name for name, _key in IMPORT_FIELDS]
    names += [options for _box, options, _label, _what in WORK_FIELDS]
    names += [name for _type, fields in TARGET_FIELDS for name, _key in fields]
    return names


def _number(text: str) -> int | float | str:
    """A number when the text is one (as a JSON client would send it); else the text, which the
    schema refuses with its own message."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _labels(text: str, parsed: WatchForm) -> dict[str, str]:
    labels: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            parsed.add_error("labels", f"line {number}: write each label as key=value")
            continue
        if key.strip() in labels:
            parsed.add_error("labels", f"line {number}: {key.strip()} is given twice")
            continue
        labels[key.strip()] = value.strip()
    return labels


def field_for_pointer(pointer: str, target_types: list[str]) -> str:
    """The form field an API error pointer (``#/targets/1/url``) is about; ``form`` if none."""
    parts = [_unescape(part) for part in pointer.removeprefix("#").split("/")[1:]]
    if not parts:
        return FORM_ERRORS
    head = parts[0]
    if head in (*TEXT_FIELDS, "api", "timeout_seconds", "labels", "events", STALLED_FIELD):
        return head
    if head == "import":
        key = parts[1] if len(parts) > 1 else None
        return next((name for name, body_key in IMPORT_FIELDS if body_key == key),
                    IMPORT_FIELDS[0][0])  # fmt: skip
    work = {box: options for box, options, _label, _what in WORK_FIELDS}
    if head in work:
        return work[head]
    if head != "targets":
        return FORM_ERRORS
    if (
        len(parts) < 2
        or not (parts[1].isascii() and parts[1].isdigit())
        or int(parts[1]) >= len(target_types)
    ):
        return "targets"
    if target_types[int(parts[1])] == ENDPOINT_TARGET:
        return ENDPOINTS_FIELD
    fields = dict(TARGET_FIELDS)[target_types[int(parts[1])]]
    key = parts[2] if len(parts) > 2 else None
    if key == "language":
        return LANGUAGE_FIELD
    return next((name for name, body_key in fields if body_key == key), fields[0][0])


def add_api_errors(form: WatchForm, errors: list[dict[str, str]]) -> None:
    """File each API error under its field; a label error names its label."""
    for error in errors:
        name = field_for_pointer(error["pointer"], form.target_types)
        parts = error["pointer"].split("/")
        detail = error["detail"]
        if name == "labels" and len(parts) > 2:
            detail = f"{_unescape(parts[2])}: {detail}"
        if name == "http_headers" and len(parts) > 4:
            header = _unescape(parts[4])
            detail = detail if f"'{header}'" in detail else f"{header}: {detail}"
        form.add_error(name, detail)


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")
