"""The bridge health banner: what an on-call engineer must know before reading anything else.

The rule is ``/readyz``'s (``app.health.readiness``): a worker not seen for 30 s, upstream and
Slack credential health, and a rate-limit pause from the upstream; then the firing ``bridge.alert``
conditions that only the alerts table knows (unreachable upstream, dead deliveries, disabled
receivers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import has_request_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.dashboard import dashboard
from app.dashboard.auth import signed_in
from app.db import db
from app.health.readiness import read_health
from app.models import Alert as AlertRow
from app.services import services
from app.vocabulary import AlertKind, AlertState, AuthHealth


@dataclass(frozen=True)
class Alert:
    """One bridge-wide problem: a short title, what it means, and (optionally) a time it refers to."""

    key: str
    title: str
    detail: str
    at: datetime | None = None
    remaining: timedelta | None = None


def bridge_alerts(session: Session, now: datetime) -> list[Alert]:
    """Every current bridge-wide problem, most severe first; empty when all is well."""
    bridge = read_health(session, now)
    alerts: list[Alert] = []
    if bridge.worker_last_seen is None:
        alerts.append(Alert("worker", "No worker has been seen", "Nothing is polled or delivered."))
    elif not bridge.worker_ok:
        detail = "Polling and deliveries stop while no worker runs. Last seen:"
        alerts.append(
            Alert("worker", "No worker seen for over 30 s", detail, bridge.worker_last_seen)
        )
    if bridge.upstream_auth == AuthHealth.FAILING:
        detail = bridge.upstream_auth_detail or "the API Gateway answers 401"
        alerts.append(
            Alert(
                "upstream_auth",
                "Media Intelligence rejects the bridge's credentials (or its clock)",
                f"Watches keep watching but learn nothing: {detail}. Since:",
                bridge.upstream_auth_since,
            )
        )
    if bridge.slack_auth == AuthHealth.FAILING:
        detail = bridge.slack_auth_detail or "Slack refuses the bot token"
        alerts.append(
            Alert(
                "slack_auth",
                "Slack rejects the bridge's bot token",
                f"Slack deliveries are held and retried: {detail}. Since:",
                bridge.slack_auth_since,
            )
        )
    until = bridge.rate_limited_until
    if until is not None:
        alerts.append(
            Alert(
                "rate_limited",
                "Media Intelligence is rate-limiting the bridge",
                "Polling is paused until",
                until,
                until - now,
            )
        )
    alerts += _recorded_alerts(session)
    return alerts


#: Firing ``bridge.alert`` kinds the live state above does not already show, and their titles.
_RECORDED_TITLES = {
    AlertKind.UPSTREAM_UNREACHABLE: "Media Intelligence cannot be reached: every poll fails",
    AlertKind.DELIVERIES_DEAD: "Notifications to a receiver ran out of attempts",
    AlertKind.ENDPOINT_DISABLED: "A receiver said it is gone: its target is disabled",
}


def _recorded_alerts(session: Session) -> list[Alert]:
    """The firing alerts of the kinds only the ``alerts`` table knows (see ``app.alerts``)."""
    rows = session.scalars(
        select(AlertRow)
        .where(AlertRow.state == AlertState.FIRING, AlertRow.kind.in_(list(_RECORDED_TITLES)))
        .order_by(AlertRow.since)
    )
    return [
        Alert(row.kind, _RECORDED_TITLES[AlertKind(row.kind)], f"{row.detail}. Since:", row.since)
        for row in rows
    ]


@dashboard.context_processor
def _health() -> dict[str, list[Alert]]:
    """``alerts`` for the banner of every dashboard page a signed-in user sees."""
    if not has_request_context() or not signed_in():
        return {"alerts": []}
    return {"alerts": bridge_alerts(db.session(), services().clock())}
