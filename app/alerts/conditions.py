"""What is wrong right now, read from the database: one ``Condition`` per (kind, subject).

Pure reads, no writes; ``app.alerts.evaluate`` turns changes of this set into ``bridge.alert``
events. Every kind is derived from rows the bridge keeps anyway (bridge state, assets, heartbeats,
targets, deliveries), so any process can evaluate it and all of them agree.

The alerts' own watch (``ALERTS_WATCH_ID``) is left out of the per-receiver kinds: a failing alert
delivery never raises an alert of its own.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.endpoints.actions import ENDPOINT_DELETED
from app.health.bridge_state import ROW_ID
from app.health.readiness import AccountHealth, accounts_health
from app.models import (
    ALERTS_WATCH_ID,
    BridgeState,
    Delivery,
    Endpoint,
    Target,
    Watch,
    WorkerHeartbeat,
)
from app.models.watches import Asset
from app.upstream.accounts import Accounts
from app.vocabulary import AlertKind, AuthHealth, DeliveryState, PollFailureKind, WatchState

#: A target disabled this recently still counts for ``endpoint_disabled`` after its watch ended.
RECENTLY_DISABLED = timedelta(hours=1)


@dataclass(frozen=True)
class Thresholds:
    """How long a condition must last before it is one (the contract's defaults in ``Settings``)."""

    unreachable_after: timedelta
    rate_limited_after: timedelta
    workers_after: timedelta
    #: ``deliveries_dead`` counts the deliveries that died within this window (``BRIDGE_ALERT_REPEAT``).
    dead_window: timedelta
    #: When the evaluating process started: with no heartbeat ever written, workers count as
    #: missing only ``workers_after`` after that (a web process starting before its first worker,
    #: as ``honcho start`` does, raises nothing).
    started_at: datetime | None = None
    #: The NCP accounts: ``upstream_auth`` and ``upstream_rate_limited`` are per account (subject:
    #: its fingerprint). None: the bridge state row's, subject ``""`` (as before accounts).
    accounts: Accounts | None = None


@dataclass(frozen=True)
class Condition:
    """One thing wrong: since when, and a short secret-free description."""

    kind: AlertKind
    subject: str
    since: datetime
    detail: str


def current_conditions(session: Session, now: datetime, limits: Thresholds) -> list[Condition]:
    """Every condition that holds at ``now``."""
    found: list[Condition] = []
    state = session.get(BridgeState, ROW_ID)
    if limits.accounts is not None:
        for account in accounts_health(session, now, limits.accounts):
            found += _account_conditions(account, account.fingerprint, now, limits)
    elif state is not None:
        shared = AccountHealth(
            "", AuthHealth(state.upstream_auth), state.upstream_auth_detail,
            state.upstream_auth_changed_at, state.rate_limited_until, state.rate_limited_since,
        )  # fmt: skip
        found += _account_conditions(shared, "", now, limits)
    if state is not None:
        found += _slack_condition(state)
    found += _unreachable_condition(session, now, limits)
    found += _workers_condition(session, now, limits)
    found += _disabled_conditions(session, now)
    found += _dead_conditions(session, now, limits)
    return found


def _account_conditions(
    account: AccountHealth, subject: str, now: datetime, limits: Thresholds
) -> list[Condition]:
    """``upstream_auth`` and ``upstream_rate_limited`` of one NCP account, named in the detail by
    its fingerprint (never its key)."""
    name = _account_name(account.fingerprint)
    found = []
    if account.auth == AuthHealth.FAILING and account.auth_since is not None:
        detail = account.auth_detail or "the API Gateway answers 401"
        found.append(
            Condition(
                AlertKind.UPSTREAM_AUTH,
                subject,
                account.auth_since,
                f"Media Intelligence rejects the credentials of {name} (or the bridge's clock):"
                f" {detail}"[:512],
            )
        )
    until, since = account.rate_limited_until, account.rate_limited_since
    if until is None or since is None or until <= now or until - since < limits.rate_limited_after:
        return found
    minutes = (until - since).total_seconds() / 60
    detail = f"Media Intelligence rate-limits {name}: its polling paused ({minutes:.0f} min so far)"
    found.append(Condition(AlertKind.UPSTREAM_RATE_LIMITED, subject, since, detail))
    return found


def _account_name(fingerprint: str) -> str:
    return f"account {fingerprint}" if fingerprint else "the bridge's account (no access key set)"


def _slack_condition(state: BridgeState) -> list[Condition]:
    if state.slack_auth == AuthHealth.FAILING and state.slack_auth_changed_at is not None:
        detail = state.slack_auth_detail or "invalid_auth"
        return [
            Condition(
                AlertKind.SLACK_AUTH,
                "",
                state.slack_auth_changed_at,
                f"Slack rejects the bridge's bot token ({detail}): Slack deliveries are held",
            )
        ]
    return []


def _unreachable_condition(session: Session, now: datetime, limits: Thresholds) -> list[Condition]:
    """Every poll of the last ``unreachable_after`` failed (transiently), and failures go back
    that far: the upstream is down or unreachable from here."""
    recent = now - limits.unreachable_after
    succeeded = session.scalar(
        select(func.count())
        .select_from(Asset)
        .where(Asset.last_polled_at >= recent, Asset.last_error.is_(None))
    )
    if succeeded:
        return []
    failing = session.execute(
        select(func.min(Asset.failing_since), func.count(), func.max(Asset.last_error)).where(
            Asset.last_polled_at >= recent,
            Asset.last_error.is_not(None),
            Asset.last_error_kind == PollFailureKind.TRANSIENT,
        )
    ).one()
    since, count, example = failing
    if not count or since is None or since > recent:
        return []
    detail = f"every poll has failed since then ({count} assets), e.g. {example}"
    return [Condition(AlertKind.UPSTREAM_UNREACHABLE, "", since, detail[:512])]


def _workers_condition(session: Session, now: datetime, limits: Thresholds) -> list[Condition]:
    last_seen = session.scalar(select(func.max(WorkerHeartbeat.last_seen_at)))
    if last_seen is not None and now - last_seen <= limits.workers_after:
        return []
    if last_seen is None:
        if limits.started_at is None or now - limits.started_at <= limits.workers_after:
            return []
        detail = "no worker has ever run against this database: nothing is polled or delivered"
        return [Condition(AlertKind.WORKERS_MISSING, "", limits.started_at, detail)]
    detail = "no worker heartbeat: nothing is polled or delivered until one runs"
    return [Condition(AlertKind.WORKERS_MISSING, "", last_seen, detail)]


def receiver_key(target_type: str, url: str | None, channel: str | None) -> str:
    """Who receives a target's deliveries, without secrets: ``webhook https://host:port`` or
    ``slack #channel`` (an incoming-webhook URL's path is its secret, so only the origin shows)."""
    if channel is not None:
        return f"{target_type} {channel}"
    parts = urlsplit(url or "")
    return f"{target_type} {parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def subject_of(receiver: str) -> str:
    """A row key for a receiver: its text when short, else a prefix and a hash (255 characters)."""
    if len(receiver) <= 200:
        return receiver
    return f"{receiver[:180]}#{hashlib.sha256(receiver.encode()).hexdigest()[:16]}"


def _disabled_conditions(session: Session, now: datetime) -> list[Condition]:
    """Receivers that said they are gone (410, channel_not_found...), for watches still watching
    or within the last hour."""
    rows = session.execute(
        select(Target.type, Target.url, Target.channel, Target.disabled_at, Target.disabled_reason)
        .join(Watch, Watch.id == Target.watch_id)
        .where(
            Target.disabled.is_(True),
            Target.watch_id != ALERTS_WATCH_ID,
            Target.disabled_reason.is_distinct_from(ENDPOINT_DELETED),
            (Watch.state == WatchState.WATCHING) | (Target.disabled_at >= now - RECENTLY_DISABLED),
        )
    ).all()
    by_receiver: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for kind, url, channel, at, reason in rows:
        by_receiver[receiver_key(kind, url, channel)].append((at or now, reason or "disabled"))
    alerts_own = select(Target.endpoint_id).where(
        Target.watch_id == ALERTS_WATCH_ID, Target.endpoint_id.is_not(None)
    )
    endpoints = session.execute(
        select(Endpoint.name, Endpoint.disabled_at, Endpoint.disabled_reason).where(
            Endpoint.disabled.is_(True), Endpoint.id.not_in(alerts_own)
        )
    ).all()
    found = [
        Condition(
            AlertKind.ENDPOINT_DISABLED,
            subject_of(f"endpoint {name}"),
            at or now,
            f"endpoint {name} disabled ({reason or 'disabled'})"[:512],
        )
        for name, at, reason in endpoints
    ]
    for receiver, disabled in by_receiver.items():
        since = min(at for at, _ in disabled)
        latest = max(disabled)[1]
        detail = f"{receiver}: {len(disabled)} target(s) disabled ({latest})"
        found.append(Condition(AlertKind.ENDPOINT_DISABLED, subject_of(receiver), since, detail))
    return found


def _dead_conditions(session: Session, now: datetime, limits: Thresholds) -> list[Condition]:
    """Receivers whose deliveries ran out of attempts within the window."""
    rows = session.execute(
        select(
            Target.type,
            Target.url,
            Target.channel,
            Endpoint.name,
            func.count(),
            func.min(Delivery.updated_at),
            func.max(Delivery.last_error),
        )
        .join(Target, Target.id == Delivery.target_id)
        .outerjoin(Endpoint, Endpoint.id == Target.endpoint_id)
        .where(
            Delivery.state == DeliveryState.DEAD,
            Delivery.updated_at >= now - limits.dead_window,
            Delivery.watch_id != ALERTS_WATCH_ID,
        )
        .group_by(Target.type, Target.url, Target.channel, Endpoint.name)
    ).all()
    by_receiver: dict[str, tuple[int, datetime, str]] = {}
    for kind, url, channel, endpoint, count, first, error in rows:
        receiver = f"endpoint {endpoint}" if endpoint else receiver_key(kind, url, channel)
        total, since, _ = by_receiver.get(receiver, (0, first, ""))
        by_receiver[receiver] = (total + count, min(since, first), error or "")
    return [
        Condition(
            AlertKind.DELIVERIES_DEAD,
            subject_of(receiver),
            since,
            f"{receiver}: {count} deliveries dead ({error})"[:512],
        )
        for receiver, (count, since, error) in by_receiver.items()
    ]
