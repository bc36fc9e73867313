"""One watch's story: the phases of its status history, its detection, its events and deliveries.

``phases`` and ``detection`` are pure functions of rows and ``now``; ``events_with_deliveries`` reads
the outbox rows the API reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Delivery, Event, StatusChange, Watch
from app.vocabulary import DeliveryState, WatchState
from app.watches.queries import deliveries_by_watch


@dataclass(frozen=True)
class Phase:
    """A stretch of time during which the watch saw one status (``None`` before the first poll).

    ``ended_at`` is None while the phase goes on; ``final`` marks the status the watch ended on.
    """

    status: str | None
    api: str
    started_at: datetime
    ended_at: datetime | None
    duration: timedelta
    final: bool = False
    message: str | None = None
    index_id: int | None = None
    kind: ClassVar[str] = "phase"


@dataclass(frozen=True)
class Detection:
    """When the watch's last change was seen, and how late that could be.

    ``lag`` (an ended analysis): detected_at minus the poll before it (or the registration), the
    longest the outcome can have waited unseen. ``since_last_poll`` (a watch still watching): how
    late a change happening now would be seen at the least.
    """

    detected_at: datetime | None
    after_registration: timedelta | None
    lag: timedelta | None
    poll_count: int
    last_polled_at: datetime | None
    since_last_poll: timedelta | None
    next_poll_at: datetime | None


@dataclass
class EventDeliveries:
    """One event of the watch and its deliveries (one per target), each with its attempts."""

    event: Event
    deliveries: list[Delivery] = field(default_factory=list)


def phases(
    registered_at: datetime,
    api: str,
    history: Sequence[StatusChange],
    finished_at: datetime | None,
    now: datetime,
) -> list[Phase]:
    """The watch's phases in order: "registered, no status yet", then one per recorded change.

    Each lasts until the next change; the last one until the watch ended, or until ``now``
    (ongoing). A last change observed when the watch ended is its final status (no duration).
    """
    end = finished_at or now
    starts: list[tuple[str | None, str, datetime, StatusChange | None]] = [
        (None, history[0].api if history else api, registered_at, None)
    ]
    starts += [(change.status, change.api, change.observed_at, change) for change in history]
    result = []
    for position, (status, phase_api, started_at, change) in enumerate(starts):
        last = position == len(starts) - 1
        stop = end if last else starts[position + 1][2]
        final = last and finished_at is not None and started_at >= finished_at
        if position == 0 and len(starts) > 1 and starts[1][2] <= started_at:
            continue  # the first poll came in the same instant: no "no status yet" phase
        result.append(
            Phase(
                status=status,
                api=phase_api,
                started_at=started_at,
                ended_at=None if last and finished_at is None else stop,
                duration=max(stop - started_at, timedelta(0)),
                final=final,
                message=change.message if change else None,
                index_id=change.index_id if change else None,
            )
        )
    return result


def detection(watch: Watch, now: datetime) -> Detection:
    """The last change's detection time and lag, and for a watch still watching, its freshness."""
    detected_at = watch.history[-1].observed_at if watch.history else None
    watching = watch.state == WatchState.WATCHING
    last_polled = watch.last_polled_at
    lag = watch.detection_lag_seconds
    return Detection(
        detected_at=detected_at,
        after_registration=detected_at - watch.created_at if detected_at else None,
        lag=timedelta(seconds=lag) if lag is not None else None,
        poll_count=watch.poll_count,
        last_polled_at=last_polled,
        since_last_poll=now - last_polled if watching and last_polled else None,
        next_poll_at=watch.asset.next_poll_at if watching and watch.asset else None,
    )


def events_with_deliveries(session: Session, watch: Watch) -> list[EventDeliveries]:
    """Every event of ``watch`` (``bridge.test`` included), newest first, with its deliveries."""
    events = session.scalars(
        select(Event).where(Event.watch_id == watch.id).order_by(Event.seq.desc())
    )
    grouped = {event.id: EventDeliveries(event) for event in events}
    for delivery, _event_type in deliveries_by_watch(session, [watch.id]).get(watch.id, []):
        if delivery.event_id in grouped:
            grouped[delivery.event_id].deliveries.append(delivery)
    return list(grouped.values())


def still_live(watch: Watch, events: Sequence[EventDeliveries]) -> bool:
    """True while the page has news to wait for: the watch watches or a delivery is pending."""
    if watch.state == WatchState.WATCHING:
        return True
    return any(d.state == DeliveryState.PENDING for item in events for d in item.deliveries)
