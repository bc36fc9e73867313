"""What the dashboard's buttons do: stop a watch, send it a test, retry an ended delivery.

Each acts through the same domain function as the API, then redirects (POST/redirect/GET) to a page
whose flash messages say what really happened.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from app.dashboard import dashboard
from app.dashboard.auth import safe_next
from app.dashboard.formatting import duration, excerpt
from app.db import db
from app.models import Watch
from app.outbox import retries
from app.outbox.bridge_test import TestOutcome, send_test
from app.resources.targets import target_resource
from app.services import services
from app.vocabulary import DeliveryOutcome
from app.watches.queries import find_watch
from app.watches.registration import stop_watch


def _watch_or_404(watch_id: str) -> Watch:
    watch = find_watch(db.session(), watch_id)
    if watch is None:
        abort(404)
    return watch


def _next_or_watch(watch_id: str) -> str:
    return safe_next(request.form.get("next")) or url_for("dashboard.watch", watch_id=watch_id)


def _back_to_watch(watch_id: str) -> Response:
    return redirect(url_for("dashboard.watch", watch_id=watch_id))


@dashboard.post("/watches/<watch_id>/stop")
def stop(watch_id: str) -> Response:
    """Stop watching (state ``stopped``); an ended watch is left as it is, and the page says so."""
    watch = _watch_or_404(watch_id)
    if stop_watch(db.session(), watch, services().clock()):
        db.session.commit()
        flash("Stopped: no events will be sent for this watch from now on.", "success")
    else:
        db.session.rollback()
        flash(f"Nothing to stop: this watch already ended ({watch.state}).", "info")
    return _back_to_watch(watch_id)


def target_label(target: dict[str, Any]) -> str:
    """A target as a person names it: its type and where it points (credentials masked)."""
    where = target.get("channel") or target.get("url") or target["id"]
    return f"{target['type'].replace('_', ' ')} {where}"


def test_message(outcome: TestOutcome, target: dict[str, Any]) -> tuple[str, str]:
    """The flash message and category saying what one target answered to a test."""
    result = outcome.result
    answer = f"HTTP {result.status_code}" if result.status_code else "no HTTP answer"
    text = f"{target_label(target)}: {answer} in {duration(result.duration_ms / 1000)}"
    if result.outcome is DeliveryOutcome.SUCCEEDED:
        return f"Test delivered to {text}.", "success"
    detail = excerpt(result.error or result.excerpt or result.outcome.value)
    return f"Test failed for {text}: {detail}", "error"


@dashboard.post("/watches/<watch_id>/test")
def test(watch_id: str) -> Response:
    """Send ``bridge.test`` to every target now (disabled ones too) and report each real outcome."""
    watch = _watch_or_404(watch_id)
    targets = {target.id: target_resource(target).as_json() for target in watch.targets}
    _event_id, outcomes = send_test(db.session(), watch, services().notifier, services().clock)
    if not outcomes:
        flash("This watch has no targets to test.", "info")
    for outcome in outcomes:
        flash(*test_message(outcome, targets[outcome.target_id]))
    return _back_to_watch(watch_id)


@dashboard.post("/deliveries/<delivery_id>/retry")
def retry(delivery_id: str) -> Response:
    """Send a ``dead`` or ``failed`` delivery again (same ``webhook-id``); then back to ``next``."""
    try:
        delivery = retries.retry_delivery(db.session(), delivery_id, services().clock())
    except retries.NoSuchDelivery:
        abort(404)
    except retries.NotRetryable as exc:
        back = _next_or_watch(exc.delivery.watch_id)
        db.session.rollback()
        flash(f"Not retried: {exc}.", "error")
        return redirect(back)
    back = _next_or_watch(delivery.watch_id)
    db.session.commit()
    flash(
        f"Delivery {delivery_id} is queued again: a worker sends it within a few seconds, "
        "and its attempt appears below.",
        "success",
    )
    return redirect(back)
