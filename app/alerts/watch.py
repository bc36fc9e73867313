"""The alerts' own watch: the row that ``bridge.alert`` events, their targets and deliveries hang
from, so the outbox delivers alerts exactly as it delivers every other event (retries, order,
signatures, the Needs-attention page).

It is a watch of nothing (state ``system``, no asset): never polled, never expired, never pruned by
retention, never listed with the users' watches (``USER_WATCHES``) and answered ``404`` by the API.
Its targets follow ``BRIDGE_ALERT_TARGETS``: ``sync_targets`` adds configured ones and disables the
ones no longer configured (their deliveries end; the rows stay for the record).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ALERTS_WATCH_ID, SYSTEM_STATE, Endpoint, Target, Watch
from app.watches.endpoint_refs import build_target, resolve_endpoint_refs
from app.watches.validation import (
    EndpointRefIn,
    HttpTargetIn,
    InvalidWatch,
    SlackTargetIn,
    TargetIn,
    WebhookTargetIn,
)

log = logging.getLogger(__name__)

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


def _identity(target: Target) -> tuple:
    if target.endpoint_id is not None:
        return ("endpoint", target.endpoint_id)
    request = _request_identity(target.method, target.headers, target.body)
    return (target.type, target.url, target.channel, target.secret, *request)


def _request_identity(method: str | None, headers: dict | None, body: str | None) -> tuple:
    """An ``http`` target's request as part of its identity (a changed template is a new target)."""
    return (method, json.dumps(headers or {}, sort_keys=True), body)


def _spec_identity(spec: TargetIn, endpoint: Endpoint | None) -> tuple:
    if endpoint is not None:
        return ("endpoint", endpoint.id)
    assert not isinstance(spec, EndpointRefIn)
    url = None if isinstance(spec, SlackTargetIn) else spec.url
    channel = spec.channel if isinstance(spec, SlackTargetIn) else None
    secret = spec.secret if isinstance(spec, WebhookTargetIn | HttpTargetIn) else None
    if isinstance(spec, HttpTargetIn):
        return (
            spec.type,
            url,
            channel,
            secret,
            *_request_identity(spec.method, spec.headers, spec.body),
        )
    return (spec.type, url, channel, secret, *_request_identity(None, None, None))


def _resolved(session: Session, specs: tuple[TargetIn, ...]) -> dict[tuple, tuple]:
    """Each configured target's identity -> (spec, endpoint); a reference to no endpoint is left out
    (logged: the endpoint may be created later, and the next evaluation picks it up)."""
    found: dict[tuple, tuple] = {}
    for spec in specs:
        endpoint = None
        if isinstance(spec, EndpointRefIn):
            try:
                endpoint = resolve_endpoint_refs(session, [spec])[0]
            except InvalidWatch:
                log.warning("BRIDGE_ALERT_TARGETS names no endpoint %r: skipped", spec.endpoint)
                continue
        found[_spec_identity(spec, endpoint)] = (spec, endpoint)
    return found


def sync_targets(
    session: Session, watch: Watch, specs: tuple[TargetIn, ...], now: datetime
) -> None:
    """Make ``watch``'s enabled targets exactly ``specs`` (same type, address and secret, or the
    same endpoint)."""
    wanted = _resolved(session, specs)
    current = list(session.scalars(select(Target).where(Target.watch_id == watch.id)))
    have: set[tuple] = set()
    for target in current:
        identity = _identity(target)
        if identity in wanted and not (target.disabled and target.disabled_reason == REMOVED):
            have.add(identity)
        elif not target.disabled:
            target.disabled, target.disabled_reason, target.disabled_at = True, REMOVED, now
    position = max((t.position for t in current), default=-1) + 1
    for identity, (spec, endpoint) in wanted.items():
        if identity in have:
            continue
        target = build_target(spec, endpoint, position, now)
        target.watch_id = watch.id
        session.add(target)
        position += 1
    session.flush()
