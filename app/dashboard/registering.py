"""``/watches/new``: register a watch through a form, validated exactly as ``POST /api/v1/watches``.

The form becomes the API's JSON body, ``WatchCreate`` validates it with the same context, and its
errors come back field by field with the API's own messages. A generated webhook secret is shown
once, on the page that answers the successful post; it is never shown again.
"""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request

from app.dashboard import dashboard
from app.dashboard.watch_form import (
    API_CHOICES,
    WatchForm,
    add_api_errors,
    blank_form,
    read_form,
)
from app.db import db
from app.resources.targets import target_resource
from app.services import services
from app.vocabulary import SUBSCRIBABLE_EVENTS
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


def _form_page(form: WatchForm, status: int = 200) -> tuple[str, int]:
    context: dict[str, Any] = {
        "form": form,
        "events": SUBSCRIBABLE_EVENTS,
        "apis": API_CHOICES,
        "default_api": services().settings.mi_default_api,
        "has_default_targets": bool(services().default_targets),
        "default_timeout": services().settings.bridge_watch_timeout,
    }
    return render_template("dashboard/new.html", **context), status


@dashboard.route("/watches/new", methods=["GET", "POST"])
def new_watch() -> tuple[str, int] | Response:
    """The registration form; a valid post registers the watch and shows it, with any generated
    secret, once. Invalid posts answer 422 with every problem next to its field."""
    if request.method == "GET":
        return _form_page(blank_form())
    form = read_form(request.form, request.form.getlist("events"))
    model = validate(form)
    if model is None:
        return _form_page(form, 422)
    registration = register_watch(
        db.session(), model, services().settings, services().default_targets, services().clock()
    )
    watch = registration.watch
    secrets = [
        (target_resource(target).as_json(), registration.generated_secrets[target.id])
        for target in watch.targets
        if target.id in registration.generated_secrets
    ]
    db.session.commit()
    html = render_template("dashboard/created.html", watch=watch, secrets=secrets)
    return Response(html, status=201, mimetype="text/html")
