"""The one readiness rule: what ``/readyz``, the dashboard's health banner and ``/metrics`` report.

The bridge is ready when its database answers and a worker (embedded included) was seen within
``WORKER_STALE_AFTER``. Upstream and Slack credential health and a rate-limit pause are reported
beside it but do not make the bridge unready: polling and delivering go on and recover by
themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.health.bridge_state import ROW_ID
from app.models import BridgeState, WorkerHeartbeat
from app.vocabulary import AuthHealth, ReadinessStatus

#: A worker not seen for this long is gone (the contract's 30 s).
WORKER_STALE_AFTER = timedelta(seconds=30)


def worker_alive(last_seen: datetime | None, now: datetime) -> bool:
    """Whether a worker last seen at ``last_seen`` counts as running at ``now``."""
    return last_seen is not None and now - last_seen <= WORKER_STALE_AFTER


@dataclass(frozen=True)
class BridgeHealth:
    """What the database says of the bridge's health at ``now``."""

    now: datetime
    worker_last_seen: datetime | None
    upstream_auth: AuthHealth
    upstream_auth_detail: str | None
    upstream_auth_since: datetime | None
    slack_auth: AuthHealth
    slack_auth_detail: str | None
    slack_auth_since: datetime | None
    #: The end of the upstream's rate-limit pause; None when polling is not paused.
    rate_limited_until: datetime | None

    @property
    def worker_ok(self) -> bool:
        return worker_alive(self.worker_last_seen, self.now)

    @property
    def status(self) -> ReadinessStatus:
        return ReadinessStatus.READY if self.worker_ok else ReadinessStatus.NO_WORKER


def read_health(session: Session, now: datetime) -> BridgeHealth:
    """Read the heartbeats and the bridge state row (raises SQLAlchemyError if the database is down)."""
    last_seen = session.scalar(select(func.max(WorkerHeartbeat.last_seen_at)))
    state = session.get(BridgeState, ROW_ID)
    if state is None:
        return BridgeHealth(
            now, last_seen, AuthHealth.UNKNOWN, None, None, AuthHealth.UNKNOWN, None, None, None
        )
    until = state.rate_limited_until
    return BridgeHealth(
        now=now,
        worker_last_seen=last_seen,
        upstream_auth=AuthHealth(state.upstream_auth),
        upstream_auth_detail=state.upstream_auth_detail,
        upstream_auth_since=state.upstream_auth_changed_at,
        slack_auth=AuthHealth(state.slack_auth),
        slack_auth_detail=state.slack_auth_detail,
        slack_auth_since=state.slack_auth_changed_at,
        rate_limited_until=until if until is not None and until > now else None,
    )
