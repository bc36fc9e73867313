"""``/endpoints`` (every endpoint with its health) and ``/endpoints/<id or name>`` (one endpoint: its
fields, health, recent deliveries across watches, and the forms that act on it).

A rotated secret reaches the endpoint page the way a generated one reaches the page after
registering (``registering.py``): ``keep_rotated_secret`` puts it in the signed session, never in a
URL, and the one request that shows it takes it out, so a reload shows it no more.
"""

from __future__ import annotations

from typing import Any

from flask import abort, render_template, session

from app.dashboard import dashboard
from app.dashboard.endpoint_forms import REPLAY_STATES, EndpointForm
from app.dashboard.endpoint_queries import recent_deliveries, summaries, summary
from app.dashboard.previewing import (
    HTTP_METHODS,
    LANGUAGE_NAMES,
    PREVIEW_EVENTS,
    ShownPreview,
    bridge_language_name,
)
from app.db import db
from app.endpoints.actions import find_endpoint
from app.models import Endpoint
from app.services import services
from app.vocabulary import TargetType

#: The endpoint types whose URL the page shows (a Slack incoming-webhook URL is a credential).
SHOWN_URL_TYPES = (TargetType.WEBHOOK, TargetType.HTTP)
#: Session key: secrets of endpoints just rotated, by endpoint id, until shown once.
ROTATED_KEY = "rotated_secrets"
#: Session key: the endpoint whose rotated secret was shown (so a reload can say so).
ROTATED_SHOWN_KEY = "rotated_secret_shown"


def keep_rotated_secret(endpoint_id: str, secret: str) -> None:
    """Hold ``secret`` in the session until the endpoint's page shows it (once)."""
    pending = dict(session.get(ROTATED_KEY) or {})
    pending[endpoint_id] = secret
    session[ROTATED_KEY] = pending


def take_rotated_secret(endpoint_id: str) -> tuple[str | None, bool]:
    """The endpoint's rotated secret, taken out of the session, and whether one was shown before
    (the page says so instead). (None, False) when there is nothing to say."""
    pending = dict(session.get(ROTATED_KEY) or {})
    secret = pending.pop(endpoint_id, None)
    if secret is None:
        return None, session.get(ROTATED_SHOWN_KEY) == endpoint_id
    if pending:
        session[ROTATED_KEY] = pending
    else:
        session.pop(ROTATED_KEY, None)
    session[ROTATED_SHOWN_KEY] = endpoint_id
    return secret, False


def endpoint_or_404(ref: str) -> Endpoint:
    """The endpoint with this id or name; 404 when there is none."""
    endpoint = find_endpoint(db.session(), ref)
    if endpoint is None:
        abort(404)
    return endpoint


@dashboard.get("/endpoints")
def endpoints() -> str:
    """Every endpoint with its health at a glance; how to create one when there is none."""
    return render_template("dashboard/endpoints.html", summaries=summaries(db.session()))


@dashboard.get("/endpoints/<ref>")
def endpoint(ref: str) -> tuple[str, int]:
    """One endpoint, by id or name: fields, health, deliveries, actions; a secret just rotated
    is shown this once."""
    found = endpoint_or_404(ref)
    secret, shown_before = take_rotated_secret(found.id)
    return endpoint_page(found, secret=secret, secret_shown_before=shown_before)


def endpoint_page(
    endpoint: Endpoint,
    *,
    edit: EndpointForm | None = None,
    replay: EndpointForm | None = None,
    preview: ShownPreview | None = None,
    status: int = 200,
    secret: str | None = None,
    secret_shown_before: bool = False,
) -> tuple[str, int]:
    """The endpoint's page; ``edit``/``replay``: a refused (or previewed) form, shown again with
    its errors; ``preview``: the edit form's message rendered for a sample event."""
    session_ = db.session()
    deliveries, total = recent_deliveries(session_, endpoint)
    now = services().clock()
    until = endpoint.previous_secret_until
    context: dict[str, Any] = {
        "summary": summary(session_, endpoint),
        "endpoint": endpoint,
        "deliveries": deliveries,
        "deliveries_total": total,
        "edit": edit or EndpointForm(_current_values(endpoint), {}),
        "replay": replay or EndpointForm({"state": "dead"}, {}),
        "replay_states": REPLAY_STATES,
        "preview": preview,
        "preview_events": PREVIEW_EVENTS,
        "languages": LANGUAGE_NAMES,
        "methods": HTTP_METHODS,
        "bridge_language": bridge_language_name(),
        "masked_headers": list(endpoint.headers or {}),
        "secret": secret,
        "secret_shown_before": secret_shown_before,
        "previous_secret_until": until if until is not None and until > now else None,
    }
    return render_template("dashboard/endpoint.html", **context), status


def _current_values(endpoint: Endpoint) -> dict[str, str]:
    """The edit form's starting values. A Slack incoming-webhook URL and an ``http`` endpoint's
    header values are left out: they are credentials, and an empty field keeps them."""
    rate = endpoint.rate_limit_per_second
    return {
        "url": (endpoint.url or "") if endpoint.type in SHOWN_URL_TYPES else "",
        "channel": endpoint.channel or "",
        "method": endpoint.method or "POST",
        "body": endpoint.body or "",
        "template": endpoint.template or "",
        "language": endpoint.language or "",
        "description": endpoint.description or "",
        "rate_limit_per_second": "" if rate is None else f"{rate:g}",
    }
