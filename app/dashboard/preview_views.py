"""The Preview buttons: the registration form's (one target of the form, the first filled in unless
another is picked) and the endpoint page's
(the endpoint as its edit form would make it). Each is a form post (CSRF-protected like every
dashboard form) that renders the message for a sample event of the chosen type with the same
validation and the same function as ``POST /api/v1/preview``, sends nothing, stores nothing, and
shows the page again with the form as it was typed and the preview (or the problems next to their
fields).
"""

from __future__ import annotations

import dataclasses

from flask import request

from app.dashboard import dashboard
from app.dashboard.endpoint_forms import EDIT_FIELDS, read_change
from app.dashboard.endpoint_pages import endpoint_or_404, endpoint_page
from app.dashboard.previewing import PREVIEW_EVENT_FIELD, ShownPreview, chosen_event, preview
from app.dashboard.registering import form_page
from app.dashboard.watch_form import (
    ENDPOINTS_FIELD,
    TARGET_FIELDS,
    WatchForm,
    add_api_errors,
    read_form,
)
from app.endpoints.validation import EndpointChange, validated
from app.models import Endpoint
from app.notify.results import TargetSnapshot
from app.services import services
from app.watches.preview_request import PreviewRequest, endpoint_snapshot, spec_snapshot
from app.watches.validation import EndpointRefIn, InvalidWatch

#: The select of which of the form's targets to preview ("": the first filled in).
PREVIEW_FIELD = "preview_target"
#: How each target type is named above its preview.
TARGET_NAMES = {
    "webhook": "Webhook",
    "slack": "Slack channel",
    "slack_webhook": "Slack incoming webhook",
    "http": "HTTP request",
}
NOT_FILLED = "fill in this target to preview its message"
NO_TARGET = "fill in a target to preview its message (an endpoint's preview is on its page)"


@dashboard.post("/watches/new/preview")
def preview_new_target() -> tuple[str, int]:
    """The registration form again, as typed, with one target's message rendered for a sample
    event (nothing sent, nothing registered); 422 with the problems next to their fields."""
    form = read_form(
        request.form, request.form.getlist("events"), request.form.getlist(ENDPOINTS_FIELD)
    )
    target_type = str(request.form.get(PREVIEW_FIELD, ""))
    event_type = chosen_event(request.form)
    form.values[PREVIEW_FIELD], form.values[PREVIEW_EVENT_FIELD] = target_type, event_type
    inline = [kind for kind in form.target_types if kind in TARGET_NAMES]
    fields = dict(TARGET_FIELDS).get(target_type or (inline[0] if inline else ""))
    # Only the previewed target's own problems count (label lines are the registration's).
    own = {name for name, _key in fields or ()}
    form.errors = {name: errors for name, errors in form.errors.items() if name in own}
    if target_type and fields is None:
        form.add_error(PREVIEW_FIELD, f"must be one of {', '.join(TARGET_NAMES)}")
        return form_page(form, 422, preview_failed=True)
    if fields is None:
        form.add_error("targets", NO_TARGET)
        return form_page(form, 422, preview_failed=True)
    target_type = target_type or inline[0]
    if target_type not in form.target_types:
        form.add_error(fields[0][0], NOT_FILLED)
        return form_page(form, 422, preview_failed=True)
    shown = _target_preview(form, target_type, event_type)
    if shown is None or form.errors:
        return form_page(form, 422, preview_failed=True)
    return form_page(form, preview=shown)


def _target_preview(form: WatchForm, target_type: str, event_type: str) -> ShownPreview | None:
    """The form's ``target_type`` target rendered, or None with the problems filed on the form."""
    position = form.target_types.index(target_type)
    body = {"target": form.body["targets"][position], "event_type": event_type}
    try:
        wanted = validated(PreviewRequest, body, services().validation)
        spec = wanted.target
        assert not isinstance(spec, EndpointRefIn)  # the form's inline targets only
        return preview(spec_snapshot(spec), wanted.event_type, TARGET_NAMES[target_type])
    except InvalidWatch as exc:
        add_api_errors(form, [_on_the_form(error, f"#/targets/{position}") for error in exc.errors])
        return None


def _on_the_form(error: dict[str, str], target_pointer: str) -> dict[str, str]:
    """A preview error (``#/target/...``, ``#/event_type``) as a pointer into the form's body."""
    pointer = error["pointer"]
    if pointer == "#/event_type":
        pointer = f"#/{PREVIEW_EVENT_FIELD}"
    elif pointer == "#/target" or pointer.startswith("#/target/"):
        pointer = target_pointer + pointer.removeprefix("#/target")
    return {"pointer": pointer, "detail": error["detail"]}


@dashboard.post("/endpoints/<ref>/preview")
def preview_endpoint(ref: str) -> tuple[str, int]:
    """The endpoint page again, the edit form as typed (not saved), with the endpoint's message as
    that form would make it, rendered for a sample event: its stored header values as ``****``."""
    endpoint = endpoint_or_404(ref)
    form = read_change(request.form, endpoint.type)
    event_type = chosen_event(request.form)
    form.values[PREVIEW_EVENT_FIELD] = event_type
    fields = (*EDIT_FIELDS, PREVIEW_EVENT_FIELD)
    try:
        change = validated(EndpointChange, form.body, services().validation)
        wanted = validated(
            PreviewRequest, {"target": {"endpoint": endpoint.id}, "event_type": event_type},
            services().validation,
        )  # fmt: skip
    except InvalidWatch as exc:
        form.add_api_errors([_on_the_form(e, "#") for e in exc.errors], fields)
        return endpoint_page(endpoint, edit=form, status=422)
    if form.errors:
        return endpoint_page(endpoint, edit=form, status=422)
    target, withheld = _as_edited(endpoint, change)
    try:
        shown = preview(target, wanted.event_type, f"Endpoint {endpoint.name}", withheld)
    except InvalidWatch as exc:
        form.add_api_errors([_on_the_form(e, "#") for e in exc.errors], fields)
        return endpoint_page(endpoint, edit=form, status=422)
    return endpoint_page(endpoint, edit=form, preview=shown)


#: The fields of an endpoint that shape its message, as a change may set them.
MESSAGE_FIELDS = ("method", "body", "template", "language")


def _as_edited(endpoint: Endpoint, change: EndpointChange) -> tuple[TargetSnapshot, list[str]]:
    """The endpoint as its notifier would see it with ``change`` applied (nothing stored), and the
    names of the headers whose values are its stored ones (withheld from the preview)."""
    given = change.model_fields_set
    edited = {name: getattr(change, name) for name in MESSAGE_FIELDS if name in given}
    target = dataclasses.replace(endpoint_snapshot(endpoint), **edited)
    if "headers" in given and change.headers is not None:
        return dataclasses.replace(target, headers=tuple(change.headers.items())), []
    return target, list(endpoint.headers or {})
