"""What the poison matrix's scenario records (``tests/poison_scenario.py``): rows read from the
bridge's database after the run, as plain values, and everything else the run saw (``Run``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.models import Delivery, DeliveryAttempt, Event, Target
from tests.hostile_servers import Arrival, FrontCall, Hit


@dataclass(frozen=True)
class AttemptRow:
    at: float
    duration_ms: int
    outcome: str
    status_code: int | None
    excerpt: str | None
    error: str | None


@dataclass(frozen=True)
class DeliveryRow:
    id: str
    event_id: str
    event_type: str
    target_type: str
    state: str
    attempt_count: int
    next_attempt_at: float | None
    attempts: tuple[AttemptRow, ...]


@dataclass(frozen=True)
class EventRow:
    id: str
    type: str
    created_at: float
    body: dict[str, Any]


@dataclass(frozen=True)
class WatchRow:
    id: str
    state: str
    status: str | None
    message: str | None
    index_id: int | None
    history: tuple[str | None, ...]


@dataclass(frozen=True)
class AssetRow:
    at: float  # when this was read
    poll_count: int
    consecutive_errors: int
    last_error: str | None
    index_id: int | None
    next_poll_at: float | None
    sim_requests: int  # requests the simulator counted for the asset, read just after the row
    fault_matched: int  # how often the asset's fault rule answered


@dataclass
class Run:
    """What one scenario saw; times are wall-clock seconds (``time.time()``)."""

    database: str
    marks: dict[str, float] = field(default_factory=dict)
    reached: dict[str, bool] = field(default_factory=dict)
    watches: dict[str, WatchRow] = field(default_factory=dict)
    events: dict[str, list[EventRow]] = field(default_factory=dict)
    deliveries: dict[str, list[DeliveryRow]] = field(default_factory=dict)
    probes: dict[str, AssetRow] = field(default_factory=dict)  # upstream poisons, end of phase B
    assets: dict[str, AssetRow] = field(default_factory=dict)  # every asset, at the end
    bridge: dict[str, Any] = field(default_factory=dict)
    readyz: dict[str, Any] = field(default_factory=dict)
    #: Arrival times (wall clock) of every status request the simulator answered, per asset id.
    requests: dict[str, list[float]] = field(default_factory=dict)
    arrivals: dict[str, list[Arrival]] = field(default_factory=dict)
    hits: dict[str, list[Hit]] = field(default_factory=dict)
    slack: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    front_calls: list[FrontCall] = field(default_factory=list)
    memory_kb: dict[str, dict[str, int]] = field(default_factory=dict)
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def received(self, receiver: str, webhook_id: str) -> list[Arrival]:
        """The requests ``receiver`` got for one event (``webhook-id``)."""
        return [a for a in self.arrivals[receiver] if a.webhook_id == webhook_id]


def ts(value: Any) -> float | None:
    return value.timestamp() if value is not None else None


def events_of(session: Any, watch_id: str) -> list[EventRow]:
    rows = session.scalars(select(Event).where(Event.watch_id == watch_id).order_by(Event.seq))
    return [EventRow(e.id, e.type, e.created_at.timestamp(), json.loads(e.body)) for e in rows]


def deliveries_of(session: Any, watch_id: str) -> list[DeliveryRow]:
    rows = session.execute(
        select(Delivery, Event.type, Target.type)
        .join(Event, Event.id == Delivery.event_id)
        .join(Target, Target.id == Delivery.target_id)
        .where(Delivery.watch_id == watch_id)
        .order_by(Delivery.seq)
    ).all()
    found = []
    for delivery, event_type, target_type in rows:
        attempts = session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_seq == delivery.seq)
            .order_by(DeliveryAttempt.pk)
        )
        found.append(
            DeliveryRow(
                delivery.id, delivery.event_id, event_type, target_type, delivery.state,
                delivery.attempt_count, ts(delivery.next_attempt_at),
                tuple(
                    AttemptRow(
                        a.at.timestamp(), a.duration_ms, a.outcome, a.status_code,
                        a.response_excerpt, a.error,
                    )
                    for a in attempts
                ),
            )
        )  # fmt: skip
    return found


def memory_kb(pid: int) -> dict[str, int]:
    """``VmHWM`` (peak resident set) and ``VmRSS`` of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0])
    return fields
