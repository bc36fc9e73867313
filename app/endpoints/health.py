"""Endpoint health at a glance: delivery counts per endpoint (pending, held, dead) and the watches
that use it, read in one query each for any number of endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.models import Delivery, Endpoint, Target, Watch
from app.vocabulary import DeliveryState, WatchState


@dataclass(frozen=True)
class EndpointCounts:
    """What the endpoint's deliveries and users amount to."""

    #: Not yet delivered (held ones included).
    pending: int = 0
    #: Pending while the endpoint is disabled: waiting for it to be enabled.
    held: int = 0
    dead: int = 0
    failed: int = 0
    #: Watching watches that have it among their targets.
    watching: int = 0


def endpoint_counts(session: Session, endpoints: Sequence[Endpoint]) -> dict[str, EndpointCounts]:
    """Counts for each of ``endpoints`` by id (every id present, zeros included)."""
    ids = [endpoint.id for endpoint in endpoints]
    if not ids:
        return {}
    state = Delivery.state
    rows = session.execute(
        select(
            Delivery.lane,
            func.count(case((state == DeliveryState.PENDING, 1))),
            func.count(case((state == DeliveryState.DEAD, 1))),
            func.count(case((state == DeliveryState.FAILED, 1))),
        )
        .where(Delivery.lane.in_(ids))
        .group_by(Delivery.lane)
    ).all()
    users = dict(
        session.execute(
            select(Target.endpoint_id, func.count(func.distinct(Target.watch_id)))
            .join(Watch, Watch.id == Target.watch_id)
            .where(Target.endpoint_id.in_(ids), Watch.state == WatchState.WATCHING)
            .group_by(Target.endpoint_id)
        ).all()
    )
    disabled = {endpoint.id for endpoint in endpoints if endpoint.disabled}
    counts = {}
    for lane, pending, dead, failed in rows:
        held = pending if lane in disabled else 0
        counts[lane] = EndpointCounts(pending, held, dead, failed, users.get(lane, 0))
    return {i: counts.get(i, EndpointCounts(watching=users.get(i, 0))) for i in ids}
