"""What the endpoint page's buttons do: edit, disable, enable, rotate the secret, replay, delete.

Each acts through the same function as ``/api/v1/endpoints`` (``app.endpoints.actions``), with the
API's validation, then redirects (POST/redirect/GET) to a page whose flash messages say what really
happened. A refused edit or replay answers 422 with the page and every problem next to its field.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response

from app.dashboard import dashboard
from app.dashboard.endpoint_forms import (
    EDIT_FIELDS,
    REPLAY_FIELDS,
    EndpointForm,
    read_change,
    read_replay,
)
from app.dashboard.endpoint_pages import endpoint_or_404, endpoint_page, keep_rotated_secret
from app.dashboard.formatting import when
from app.db import db
from app.endpoints import actions
from app.endpoints.validation import EndpointChange, Replay, validated
from app.models import Endpoint
from app.services import services
from app.watches.validation import InvalidWatch


def _back(endpoint: Endpoint) -> Response:
    return redirect(url_for("dashboard.endpoint", ref=endpoint.name), 303)


def _valid(model: Any, form: EndpointForm, fields: tuple[str, ...]) -> Any:
    """``form.body`` as ``model``, or None with the API's errors filed under the form's fields."""
    try:
        return validated(model, form.body, services().validation)
    except InvalidWatch as exc:
        form.add_api_errors(exc.errors, fields)
        return None


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@dashboard.post("/endpoints/<ref>/edit")
def edit_endpoint(ref: str) -> Response | tuple[str, int]:
    """Change the endpoint's URL or channel, request or message fields, description and rate
    limit, for every watch at once."""
    endpoint = endpoint_or_404(ref)
    form = read_change(request.form, endpoint.type)
    change = _valid(EndpointChange, form, EDIT_FIELDS)
    if change is not None and not form.errors:  # the form's own errors (header lines) count too
        try:
            actions.change_endpoint(db.session(), endpoint, change, services().clock())
        except actions.EndpointFieldError as exc:
            db.session.rollback()
            form.add_api_errors([{"pointer": exc.pointer, "detail": exc.detail}], EDIT_FIELDS)
        else:
            db.session.commit()
            flash("Saved: every watch that uses this endpoint sends as changed from now on.",
                  "success")  # fmt: skip
            return _back(endpoint)
    return endpoint_page(endpoint, edit=form, status=422)


@dashboard.post("/endpoints/<ref>/disable")
def disable_endpoint(ref: str) -> Response:
    """Disable the endpoint: its deliveries are held (kept, not sent) until it is enabled."""
    endpoint = endpoint_or_404(ref)
    if endpoint.disabled:
        flash("Nothing to disable: this endpoint is disabled already.", "info")
        return _back(endpoint)
    change = EndpointChange(disabled=True)
    actions.change_endpoint(db.session(), endpoint, change, services().clock())
    db.session.commit()
    flash("Disabled: its deliveries are held, not sent, until it is enabled again.", "success")
    return _back(endpoint)


@dashboard.post("/endpoints/<ref>/enable")
def enable_endpoint(ref: str) -> Response:
    """Enable the endpoint: its held deliveries go out now, in event order."""
    endpoint = endpoint_or_404(ref)
    if not endpoint.disabled:
        flash("Nothing to enable: this endpoint is enabled.", "info")
        return _back(endpoint)
    released = actions.enable_endpoint(db.session(), endpoint, services().clock())
    db.session.commit()
    held = _plural(released, "held delivery goes", "held deliveries go")
    flash(f"Enabled: {held} out now, in order.", "success")
    return _back(endpoint)


@dashboard.post("/endpoints/<ref>/rotate-secret")
def rotate_endpoint_secret(ref: str) -> Response:
    """A new signing secret, shown once on the page this redirects to (through the session, never
    the URL); the old one still signs for ``BRIDGE_SECRET_OVERLAP`` seconds."""
    endpoint = endpoint_or_404(ref)
    overlap = services().settings.bridge_secret_overlap
    try:
        secret = actions.rotate_secret(db.session(), endpoint, overlap, services().clock())
    except actions.EndpointConflict as exc:
        db.session.rollback()
        flash(f"Not rotated: {exc}.", "error")
        return _back(endpoint)
    until = endpoint.previous_secret_until
    db.session.commit()
    keep_rotated_secret(endpoint.id, secret)
    if until is not None:
        overlap_text = f"The previous secret also signs (a second signature) until {when(until)}."
    else:
        overlap_text = "The previous secret no longer signs."
    flash(f"Secret rotated: copy the new one below. {overlap_text}", "success")
    return _back(endpoint)


@dashboard.post("/endpoints/<ref>/replay")
def replay_endpoint(ref: str) -> Response | tuple[str, int]:
    """Send the endpoint's ended deliveries again (same ``webhook-id``), in event order."""
    endpoint = endpoint_or_404(ref)
    form = read_replay(request.form)
    wanted = _valid(Replay, form, REPLAY_FIELDS)
    if wanted is None:
        return endpoint_page(endpoint, replay=form, status=422)
    queued = actions.replay(db.session(), endpoint, wanted, services().clock())
    db.session.commit()
    if not queued:
        flash("Nothing to replay: no delivery of this endpoint matches.", "info")
    elif endpoint.disabled:
        flash(f"{_plural(queued, 'delivery', 'deliveries')} queued, held until the endpoint is "
              "enabled.", "success")  # fmt: skip
    else:
        flash(f"{_plural(queued, 'delivery', 'deliveries')} queued: a worker sends them within a "
              "few seconds, with their original webhook-id.", "success")  # fmt: skip
    return _back(endpoint)


@dashboard.post("/endpoints/<ref>/delete")
def delete_endpoint(ref: str) -> Response:
    """Delete the endpoint; refused (and said why) while a watching watch uses it."""
    endpoint = endpoint_or_404(ref)
    name = endpoint.name
    try:
        actions.delete_endpoint(
            db.session(), endpoint, services().clock(), services().configured_targets()
        )
    except actions.EndpointConflict as exc:
        db.session.rollback()
        flash(f"Not deleted: {exc}.", "error")
        return _back(endpoint)
    db.session.commit()
    flash(f"Deleted endpoint {name}. Ended watches that used it keep a copy of its destination, "
          "disabled.", "success")  # fmt: skip
    return redirect(url_for("dashboard.endpoints"), 303)
