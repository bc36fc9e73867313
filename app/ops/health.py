"""Liveness and readiness (no token): ``/healthz`` says the process serves, ``/readyz`` what it needs."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError

from app.alerts.evaluate import firing_kinds
from app.db import db
from app.health.readiness import failed_read_health, read_health
from app.resources.health import Health, Readiness
from app.services import services
from app.upstream.accounts import accounts_of
from app.vocabulary import AlertKind, AuthHealth, DatabaseHealth, Liveness, ReadinessStatus

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz() -> Response:
    """The process is up."""
    return jsonify(Health(status=Liveness.OK).as_json())


@health.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready (200) or not (503) by the one readiness rule of ``app.health.readiness``; without a
    usable database, ``database`` says whether it is unreachable or has no schema yet."""
    try:
        bridge = read_health(db.session(), services().clock(), accounts_of(services().settings))
    except SQLAlchemyError as exc:
        db.session.rollback()
        unavailable = Readiness(
            status=ReadinessStatus.UNAVAILABLE,
            database=failed_read_health(exc, db.engine),
            worker_last_seen=None,
            upstream_auth=AuthHealth.UNKNOWN,
            slack_auth=AuthHealth.UNKNOWN,
            rate_limited_until=None,
            accounts={},
            alerts=[],
        )
        return jsonify(unavailable.as_json()), 503
    alerts = firing_kinds(db.session())
    status = bridge.status
    if status == ReadinessStatus.READY and alerts:
        status = ReadinessStatus.DEGRADED
    ready = Readiness(
        status=status,
        database=DatabaseHealth.OK,
        worker_last_seen=bridge.worker_last_seen,
        upstream_auth=bridge.upstream_auth,
        slack_auth=bridge.slack_auth,
        rate_limited_until=bridge.rate_limited_until,
        accounts={a.fingerprint: a.auth for a in bridge.accounts if a.fingerprint},
        alerts=[AlertKind(kind) for kind in alerts],
    )
    return jsonify(ready.as_json()), 200 if bridge.worker_ok else 503
