"""The alerts' own watch: the row that ``bridge.alert`` events, their targets and deliveries hang
from, so the outbox delivers alerts exactly as it delivers every other event (retries, order,
signatures, the Needs-attention page).

It is a watch of nothing (state ``system``, no asset): never polled, never expired, never pruned by
retention, never listed with the users' watches (``USER_WATCHES``) and answered ``404`` by the API.
Its targets follow ``BRIDGE_ALERT_TARGETS``: ``sync_targets`` adds configured ones and disables the
ones no longer configured (their deliveries end; the rows stay for the record).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ALERTS_WATCH_ID, SYSTEM_STATE, Target, Watch
from app.watches.validation import SlackTargetIn, TargetIn, WebhookTargetIn

#: What a target no longer in ``BRIDGE_ALERT_TARGETS`` says of itself.
REMOVED = "removed from BRIDGE_ALERT_TARGETS"
#: The watch's deadline is never used; a far date keeps the column's meaning harmless.
_NEVER = timedelta(days=365 * 100)


def alerts_watch(session: Session, now: datetime) -> Watch:
    """The alerts' watch, created on first use (the caller commits)."""
    watch = session.get(Watch, ALERTS_WATCH_ID)
    if watch is None:
        watch = Watch(
            id=ALERTS_WATCH_ID,
            state=SYSTEM_STATE,
            workspace="-",
            project_id="-",
            asset_id="bridge-alerts",
            api="index",
            labels={},
            events=[],
            created_at=now,
            updated_at=now,
            deadline_at=now + _NEVER,
            poll_count=0,
        )
        session.add(watch)
        session.flush()
    return watch


def _identity(kind: str, url: str | None, channel: str | None, secret: str | None) -> tuple:
    return (kind, url, channel, secret)


def _spec_identity(spec: TargetIn) -> tuple:
    url = None if isinstance(spec, SlackTargetIn) else spec.url
    channel = spec.channel if isinstance(spec, SlackTargetIn) else None
    secret = spec.secret if isinstance(spec, WebhookTargetIn) else None
    return _identity(spec.type, url, channel, secret)


def sync_targets(
    session: Session, watch: Watch, specs: tuple[TargetIn, ...], now: datetime
) -> None:
    """Make ``watch``'s enabled targets exactly ``specs`` (same type, address and secret)."""
    wanted = {_spec_identity(spec): spec for spec in specs}
    current = list(session.scalars(select(Target).where(Target.watch_id == watch.id)))
    have: set[tuple] = set()
    for target in current:
        identity = _identity(target.type, target.url, target.channel, target.secret)
        if identity in wanted and not (target.disabled and target.disabled_reason == REMOVED):
            have.add(identity)
        elif not target.disabled:
            target.disabled, target.disabled_reason, target.disabled_at = True, REMOVED, now
    position = max((t.position for t in current), default=-1) + 1
    for identity in wanted:
        if identity in have:
            continue
        kind, url, channel, secret = identity
        target = Target(
            watch_id=watch.id, position=position, type=kind, url=url, channel=channel,
            secret=secret, created_at=now,
        )  # fmt: skip
        session.add(target)
        position += 1
    session.flush()
