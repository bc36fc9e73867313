"""Liveness and readiness (no token): ``/healthz`` says the process serves, ``/readyz`` what it needs."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError

from app.clock import rfc3339
from app.db import db
from app.health.readiness import read_health
from app.services import services

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(status="ok")


@health.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready (200) or not (503) by the one readiness rule of ``app.health.readiness``."""
    try:
        bridge = read_health(db.session(), services().clock())
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
    body = {
        "status": bridge.status,
        "database": "ok",
        "worker_last_seen": rfc3339(bridge.worker_last_seen),
        "upstream_auth": bridge.upstream_auth,
        "slack_auth": bridge.slack_auth,
        "rate_limited_until": rfc3339(bridge.rate_limited_until),
    }
    return jsonify(body), 200 if bridge.worker_ok else 503
