"""``/watches/new``: register a watch through a form, validated exactly as ``POST /api/v1/watches``.

The form becomes the API's JSON body, ``WatchCreate`` validates it with the same context, and its
errors come back field by field with the API's own messages. A valid post answers ``303`` to
``/watches/<id>/registered`` (post/redirect/get: reloading that page never registers again). A
generated webhook secret travels to that page in the signed session, never in a URL, and is taken
out of the session by the one request that shows it: a reload shows the watch without the secret.
"""

from __future__ import annotations

from typing import Any

from flask import abort, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from app.dashboard import dashboard
from app.dashboard.endpoint_queries import endpoint_choices
from app.dashboard.previewing import (
    DEFAULT_PREVIEW_EVENT,
    HTTP_METHODS,
    LANGUAGE_NAMES,
    PREVIEW_EVENT_FIELD,
    PREVIEW_EVENTS,
    ShownPreview,
    bridge_language_name,
)
from app.dashboard.watch_form import (
    API_CHOICES,
    ENDPOINTS_FIELD,
    WORK_FIELDS,
    WatchForm,
    add_api_errors,
    blank_form,
    read_form,
)
from app.db import db
from app.resources.targets import target_resource
from app.services import services
from app.vocabulary import SUBSCRIBABLE_EVENTS
from app.watches.queries import find_watch
from app.watches.registration import register_watch
from app.watches.validation import InvalidWatch, WatchCreate, validate_watch


def validate(form: WatchForm) -> WatchCreate | None:
    """The validated registration, or None with the API's errors filed under the form's fields.

    It is the API's and the CLI's validation (``validate_watch``), so the form shows every problem
    the API would report, at once.
    """
    try:
        model = validate_watch(form.body, services().validation, bool(services().default_targets))
    except InvalidWatch as exc:
        add_api_errors(form, exc.errors)
        return None
    return None if form.errors else model  # the form's own errors (label lines) count too


def form_page(
    form: WatchForm,
    status: int = 200,
    *,
    preview: ShownPreview | None = None,
    preview_failed: bool = False,
) -> tuple[str, int]:
    """The registration form: ``form`` as typed, with its errors (of the registration, or of a
    preview when ``preview_failed``) and a target's ``preview``."""
    context: dict[str, Any] = {
        "form": form,
        "preview": preview,
        "preview_failed": preview_failed,
        "preview_events": PREVIEW_EVENTS,
        "preview_event": form.values.get(PREVIEW_EVENT_FIELD) or DEFAULT_PREVIEW_EVENT,
        "languages": LANGUAGE_NAMES,
        "bridge_language": bridge_language_name(),
        "methods": HTTP_METHODS,
        "events": SUBSCRIBABLE_EVENTS,
        "apis": API_CHOICES,
        "default_api": services().settings.mi_default_api,
        "has_default_targets": bool(services().default_targets),
        "default_timeout": services().settings.bridge_watch_timeout,
        "default_stalled": services().settings.bridge_stalled_after,
        "work_fields": WORK_FIELDS,
        "endpoint_choices": endpoint_choices(db.session()),
    }
    return render_template("dashboard/new.html", **context), status


#: Session key: generated secrets of watches just registered, by watch id, until shown once.
SECRETS_KEY = "registered_secrets"
#: Session key: the watch whose generated secrets were shown (so a reload can say so).
SHOWN_KEY = "registered_secrets_shown"


@dashboard.route("/watches/new", methods=["GET", "POST"])
def new_watch() -> tuple[str, int] | Response:
    """The registration form; a valid post registers the watch and answers 303 to the page that
    shows it (with any generated secret, once). Invalid posts answer 422 with every problem next
    to its field."""
    if request.method == "GET":
        return form_page(blank_form())
    form = read_form(
        request.form, request.form.getlist("events"), request.form.getlist(ENDPOINTS_FIELD)
    )
    model = validate(form)
    if model is None:
        return form_page(form, 422)
    try:
        registration = register_watch(
            db.session(), model, services().settings, services().default_targets,
            services().clock(),
        )  # fmt: skip
    except InvalidWatch as exc:  # a reference to no endpoint
        db.session.rollback()
        add_api_errors(form, exc.errors)
        return form_page(form, 422)
    watch_id = registration.watch.id
    db.session.commit()
    if registration.generated_secrets:
        pending = dict(session.get(SECRETS_KEY) or {})
        pending[watch_id] = dict(registration.generated_secrets)
        session[SECRETS_KEY] = pending
    return redirect(url_for("dashboard.registered", watch_id=watch_id), 303)


@dashboard.get("/watches/<watch_id>/registered")
def registered(watch_id: str) -> str:
    """The watch just registered, with its generated webhook secrets the first time only: they
    leave the session as this page is rendered, so a reload says they were shown once."""
    watch = find_watch(db.session(), watch_id)
    if watch is None:
        abort(404)
    pending = dict(session.get(SECRETS_KEY) or {})
    generated: dict[str, str] = pending.pop(watch_id, None) or {}
    if generated:
        if pending:
            session[SECRETS_KEY] = pending
        else:
            session.pop(SECRETS_KEY, None)
        session[SHOWN_KEY] = watch_id
    secrets = [
        (target_resource(target).as_json(), generated[target.id])
        for target in watch.targets
        if target.id in generated
    ]
    shown_before = not secrets and session.get(SHOWN_KEY) == watch_id
    return render_template(
        "dashboard/created.html", watch=watch, secrets=secrets, shown_before=shown_before
    )
