"""Liveness and readiness (no token): ``/healthz`` says the process serves, ``/readyz`` what it needs."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, jsonify
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from app.clock import rfc3339
from app.db import db
from app.models import BridgeState, WorkerHeartbeat
from app.services import services

health = Blueprint("health", __name__)

#: A worker not seen for this long makes the bridge unready (the contract's 30 s).
WORKER_STALE_AFTER = timedelta(seconds=30)


@health.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@health.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Database reachable and a worker (embedded included) seen within 30 s: 200, else 503.

    Upstream and Slack credential health and a rate-limit pause are reported but do not make the
    bridge unready: polling and delivering go on and recover by themselves.
    """
    try:
        last_seen = db.session.scalar(select(func.max(WorkerHeartbeat.last_seen_at)))
        state = db.session.get(BridgeState, 1)
    except SQLAlchemyError:
        db.session.rollback()
        body = {
            "status": "unavailable",
            "database": "unreachable",
            "worker_last_seen": None,
            "upstream_auth": "unknown",
            "slack_auth": "unknown",
            "rate_limited_until": None,
        }
        return jsonify(body), 503
    now = services().clock()
    worker_ok = last_seen is not None and now - last_seen <= WORKER_STALE_AFTER
    rate_limited_until = state.rate_limited_until if state else None
    body = {
        "status": "ready" if worker_ok else "no_worker",
        "database": "ok",
        "worker_last_seen": rfc3339(last_seen),
        "upstream_auth": state.upstream_auth if state else "unknown",
        "slack_auth": state.slack_auth if state else "unknown",
        "rate_limited_until": rfc3339(
            rate_limited_until if rate_limited_until and rate_limited_until > now else None
        ),
    }
    return jsonify(body), 200 if worker_ok else 503
