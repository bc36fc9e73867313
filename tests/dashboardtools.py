"""Helpers for the dashboard tests: sign in through the form, read CSRF tokens, seed watches.

``sign_in(client)`` signs a Flask test client in with the test token and returns a CSRF token valid
for its new session. ``seed_watch(app, ...)`` registers a watch straight through the domain
function (as the API would) and can move it to another state.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from tests.fixtures import API_TOKEN

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
FIELD_ERROR = re.compile(r'<p class="field__error" id="([a-z_]+)-error-\d+">([^<]*)</p>')


def csrf_from(html: str) -> str:
    """The first CSRF token in a page."""
    match = CSRF_FIELD.search(html)
    assert match, "no csrf_token field in the page"
    return match.group(1)


def sign_in(client: Any, token: str = API_TOKEN, **headers: str) -> str:
    """Sign ``client`` in through ``/login``; returns a CSRF token of the signed-in session."""
    form_token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"token": token, "csrf_token": form_token}, headers=headers
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return csrf_from(client.get("/watches/new").get_data(as_text=True))


def field_errors(html: str) -> dict[str, list[str]]:
    """The form's error messages by field name, unescaped."""
    import html as html_module

    found: dict[str, list[str]] = {}
    for name, message in FIELD_ERROR.findall(html):
        found.setdefault(name, []).append(html_module.unescape(message))
    return found


def seed_watch(
    app: Flask,
    asset_id: str,
    *,
    workspace: str = "ws",
    project_id: str = "1",
    labels: dict[str, str] | None = None,
    state: str | None = None,
    targets: list[dict[str, Any]] | None = None,
    **columns: Any,
) -> str:
    """Register a watch as the API would (no HTTP), then set ``state`` and other ``columns``."""
    from app.db import db
    from app.services import services
    from app.watches.registration import register_watch
    from app.watches.validation import WatchCreate

    body = {
        "workspace": workspace,
        "project_id": project_id,
        "asset_id": asset_id,
        "labels": labels or {},
        "targets": targets or [{"type": "webhook", "url": "https://hooks.example.test/in"}],
    }
    with app.app_context():
        model = WatchCreate.model_validate(body, context=services().validation)
        now = datetime.now(UTC)
        watch = register_watch(db.session, model, services().settings, [], now).watch
        if state is not None and state != "watching":
            watch.state, watch.finished_at = state, now
        for name, value in columns.items():
            setattr(watch, name, value)
        db.session.commit()
        return watch.id


#: The outcome of the attempt that ended a delivery in each state (``app.outbox.attempts``).
ENDED_BY = {
    "dead": "gave_up",
    "failed": "disable_target",
    "pending": "retry",
    "succeeded": "succeeded",
}


def dead_delivery(app: Flask, watch_id: str, state: str = "dead", error: str = "HTTP 500") -> str:
    """Give the watch an ``analysis.completed`` event whose first delivery ended in ``state``."""
    from app.db import db
    from app.models import Delivery, DeliveryAttempt, Watch
    from app.outbox.emit import emit_event
    from app.outbox.envelopes import Analysis

    with app.app_context():
        watch = db.session.get(Watch, watch_id)
        assert watch is not None
        now = datetime.now(UTC)
        analysis = Analysis("ANALYZE_COMPLETED", "ANALYZING", 1001, None)
        event = emit_event(db.session, watch, "analysis.completed", f"seed:{now}", analysis, now)
        db.session.flush()
        delivery = db.session.query(Delivery).filter_by(event_id=event.id).first()
        assert delivery is not None
        delivery.state, delivery.attempt_count, delivery.last_error = state, 2, error
        delivery.next_attempt_at = None
        db.session.add(
            DeliveryAttempt(
                delivery_seq=delivery.seq, at=now, duration_ms=12, outcome=ENDED_BY.get(state, "retry"),
                status_code=500, response_excerpt="boom", error=error,
            )
        )  # fmt: skip
        db.session.commit()
        return delivery.id
