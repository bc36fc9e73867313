"""Reading watches and their deliveries: the queries the API, the CLI and the dashboard share."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.models import USER_WATCHES, Delivery, Event, Watch


def load_watches(session: Session, statement: Any) -> list[Watch]:
    """Run a ``select(Watch)`` with everything a watch resource reads loaded in a few queries."""
    return list(
        session.scalars(
            statement.options(
                selectinload(Watch.targets),
                selectinload(Watch.history),
                selectinload(Watch.asset),
                selectinload(Watch.workflow),
            )
        )
    )


def deliveries_by_watch(
    session: Session, watch_ids: Iterable[str]
) -> dict[str, list[tuple[Delivery, str]]]:
    """Every delivery (with attempts and its event type) of these watches, in creation order."""
    ids = list(watch_ids)
    grouped: dict[str, list[tuple[Delivery, str]]] = defaultdict(list)
    if not ids:
        return grouped
    rows = session.execute(
        select(Delivery, Event.type)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.watch_id.in_(ids))
        .options(selectinload(Delivery.attempts))
        .order_by(Delivery.seq)
    )
    for delivery, event_type in rows:
        grouped[delivery.watch_id].append((delivery, event_type))
    return grouped


def find_watch(session: Session, watch_id: str) -> Watch | None:
    """The watch with this id, loaded as ``load_watches`` loads it, or None (API, CLI, dashboard)."""
    found = load_watches(session, select(Watch).where(Watch.id == watch_id, USER_WATCHES))
    return found[0] if found else None
