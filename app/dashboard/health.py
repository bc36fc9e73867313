"""The bridge health banner: what an on-call engineer must know before reading anything else.

The rule is ``/readyz``'s (``app.health.readiness``): a worker not seen for 30 s, upstream and
Slack credential health, and a rate-limit pause from the upstream (each NCP account's, named by its
fingerprint); then the firing ``bridge.alert`` conditions that only the alerts table knows
(unreachable upstream, dead deliveries, disabled receivers).
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
from app.health.readiness import AccountHealth, read_health
from app.models import Alert as AlertRow
from app.services import services
from app.upstream.accounts import Accounts, accounts_of
from app.vocabulary import AlertKind, AlertState, AuthHealth


@dataclass(frozen=True)
class Alert:
    """One bridge-wide problem: a short title, what it means, and (optionally) a time it refers to."""

    key: str
    title: str
    detail: str
    at: datetime | None = None
    remaining: timedelta | None = None
    #: The NCP account it concerns, by fingerprint (upstream trouble only).
    account: str | None = None


def bridge_alerts(session: Session, now: datetime, accounts: Accounts | None = None) -> list[Alert]:
    """Every current bridge-wide problem, most severe first; empty when all is well. Upstream
    trouble is told per NCP account of ``accounts`` (the configured ones by default)."""
    accounts = accounts or accounts_of(services().settings)
    bridge = read_health(session, now, accounts)
    alerts: list[Alert] = []
    if bridge.worker_last_seen is None:
        alerts.append(Alert("worker", "No worker has been seen", "Nothing is polled or delivered."))
    elif not bridge.worker_ok:
        detail = "Polling and deliveries stop while no worker runs. Last seen:"
        alerts.append(
            Alert("worker", "No worker seen for over 30 s", detail, bridge.worker_last_seen)
        )
    upstream = bridge.accounts
    several = accounts.several
    alerts += [
        _auth_alert(account, several) for account in upstream if account.auth == AuthHealth.FAILING
    ]
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
    alerts += [
        _pause_alert(account.fingerprint, until, now, several)
        for account in upstream
        if (until := account.rate_limited_until) is not None
    ]
    alerts += _recorded_alerts(session)
    return alerts


def _named(fingerprint: str) -> str:
    """How the banner names an NCP account: its fingerprint, never its key."""
    return f" (account {fingerprint})" if fingerprint else ""


def _auth_alert(account: AccountHealth, several: bool) -> Alert:
    detail = account.auth_detail or "the API Gateway answers 401"
    name = _named(account.fingerprint)
    if several:
        title = f"Media Intelligence rejects the credentials of account {account.fingerprint}"
        text = f"Its watches keep watching but learn nothing: {detail}. Since:"
    else:
        title = f"Media Intelligence rejects the bridge's credentials (or its clock){name}"
        text = f"Watches keep watching but learn nothing: {detail}. Since:"
    return Alert(
        "upstream_auth", title, text, account.auth_since, account=account.fingerprint or None
    )


def _pause_alert(fingerprint: str, until: datetime, now: datetime, several: bool) -> Alert:
    if several:
        title = f"Media Intelligence is rate-limiting account {fingerprint}"
        text = "Polling of its workspaces is paused until"
    else:
        title = f"Media Intelligence is rate-limiting the bridge{_named(fingerprint)}"
        text = "Polling is paused until"
    return Alert("rate_limited", title, text, until, until - now, account=fingerprint or None)


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
