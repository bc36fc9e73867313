"""``/metrics`` (bearer token): Prometheus text for the whole bridge, every worker included.

Workers persist cumulative counters in their heartbeat rows; this endpoint sums them and adds gauges
derived from the database at scrape time, so any web process reports the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Response, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from app.db import db
from app.health.readiness import worker_alive
from app.models import BridgeState, Delivery, Watch, WorkerHeartbeat
from app.services import services
from app.vocabulary import WATCH_STATES, DeliveryState
from app.web.problems import problem
from app.web.throttle import bearer_refusal
from app.worker.counters import DURATION_BUCKETS, LATENESS_BUCKETS
from app.worker.retention import pruned_totals

metrics = Blueprint("metrics", __name__)
LAG_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class BridgeCollector(Collector):
    """Reads heartbeats and tables once per scrape."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        session = db.session()
        beats = session.execute(
            select(WorkerHeartbeat.counters, WorkerHeartbeat.last_seen_at)
        ).all()
        state = session.execute(
            select(BridgeState.pruned_rows, BridgeState.retired_counters)
        ).first()
        pruned, retired = state if state is not None else ({}, {})
        # Pruned heartbeat rows live on in ``retired``: the sums stay monotonic when a gone
        # worker's row is deleted (a drop would read as a counter reset and a false increase).
        yield from _worker_counters([retired or {}, *(counters or {} for counters, _ in beats)])
        yield _pruned_rows(pruned)
        alive = sum(1 for _, seen in beats if worker_alive(seen, self.now))
        yield GaugeMetricFamily(
            "mi_bridge_workers_alive", "Workers seen in the last 30 s", value=alive
        )
        yield from _database_gauges(self.now)


def _worker_counters(all_counters: list[dict]) -> Iterator[Metric]:
    polls: dict[str, float] = defaultdict(float)
    deliveries: dict[tuple[str, str], float] = defaultdict(float)
    for counters in all_counters:
        for outcome, value in counters.get("polls", {}).items():
            polls[outcome] += value
        for key, value in counters.get("deliveries", {}).items():
            outcome, _, target_type = key.partition("|")
            deliveries[(outcome, target_type)] += value
    poll_family = CounterMetricFamily(
        "mi_bridge_polls", "Requests to Media Intelligence by outcome", labels=["outcome"]
    )
    for outcome, value in sorted(polls.items()):
        poll_family.add_metric([outcome], value)
    yield poll_family
    delivery_family = CounterMetricFamily(
        "mi_bridge_deliveries", "Delivery attempts by outcome and target type",
        labels=["outcome", "target_type"],
    )  # fmt: skip
    for (outcome, target_type), value in sorted(deliveries.items()):
        delivery_family.add_metric([outcome, target_type], value)
    yield delivery_family
    yield _summed_histogram(
        "mi_bridge_poll_duration_seconds", "Duration of requests to Media Intelligence",
        DURATION_BUCKETS, [c.get("poll_duration", {}) for c in all_counters],
    )  # fmt: skip
    yield _summed_histogram(
        "mi_bridge_poll_lateness_seconds", "How long after its due time an asset was claimed",
        LATENESS_BUCKETS, [c.get("poll_lateness", {}) for c in all_counters],
    )  # fmt: skip


def _pruned_rows(pruned: dict | None) -> Metric:
    """Housekeeping's deletions by table, cumulative since installation (kept in ``bridge_state``,
    updated in the transaction of each deletion): monotonic however many workers come and go."""
    family = CounterMetricFamily(
        "mi_bridge_pruned_rows", "Rows deleted by housekeeping (retention and expiry), by table",
        labels=["table"],
    )  # fmt: skip
    for table, value in pruned_totals(pruned):
        family.add_metric([table], value)
    return family


def _summed_histogram(
    name: str, documentation: str, bounds: tuple[float, ...], snapshots: list[dict]
) -> HistogramMetricFamily:
    """One histogram summed over the workers' cumulative-bucket snapshots."""
    buckets = [0.0] * len(bounds)
    count = total = 0.0
    for snapshot in snapshots:
        for index, (_bound, value) in enumerate(snapshot.get("buckets", [])[: len(buckets)]):
            buckets[index] += value
        count += snapshot.get("count", 0)
        total += snapshot.get("sum", 0.0)
    pairs = [(str(bound), value) for bound, value in zip(bounds, buckets, strict=True)]
    return HistogramMetricFamily(
        name, documentation, buckets=[*pairs, ("+Inf", count)], sum_value=total
    )


def _database_gauges(now: datetime) -> Iterator[Metric]:
    session = db.session()
    watches = GaugeMetricFamily("mi_bridge_watches", "Watches by state", labels=["state"])
    counts = dict(session.execute(select(Watch.state, func.count()).group_by(Watch.state)).all())
    for state in WATCH_STATES:
        watches.add_metric([state], counts.get(state, 0))
    yield watches
    pending = select(func.count(), func.min(Delivery.next_attempt_at)).where(
        Delivery.state == DeliveryState.PENDING
    )
    depth, oldest = session.execute(pending).one()
    yield GaugeMetricFamily("mi_bridge_delivery_queue_depth", "Pending deliveries", value=depth)
    overdue = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    yield GaugeMetricFamily(
        "mi_bridge_delivery_oldest_due_seconds", "How long the oldest pending delivery is overdue",
        value=overdue,
    )  # fmt: skip
    yield _detection_lag_histogram()


def _detection_lag_histogram() -> Metric:
    """Buckets counted in SQL: one query however many watches ended."""
    lag = Watch.detection_lag_seconds
    columns = [func.sum(case((lag <= bound, 1), else_=0)) for bound in LAG_BUCKETS]
    row = db.session.execute(
        select(func.count(lag), func.coalesce(func.sum(lag), 0.0), *columns).where(lag.is_not(None))
    ).one()
    count, total, counts = row[0], row[1], row[2:]
    buckets = [(str(bound), value or 0) for bound, value in zip(LAG_BUCKETS, counts, strict=True)]
    return HistogramMetricFamily(
        "mi_bridge_detection_lag_seconds",
        "Time from the poll before a terminal status to the poll that saw it",
        buckets=[*buckets, ("+Inf", count)], sum_value=total,
    )  # fmt: skip


@metrics.get("/metrics")
def metrics_view() -> Response:
    """Prometheus text format; needs a bearer token like the API."""
    refusal = bearer_refusal(
        request.headers.get("Authorization"),
        lambda: problem(
            401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        ),
    )
    if refusal is not None:
        return refusal
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(services().clock()))
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4; charset=utf-8")
