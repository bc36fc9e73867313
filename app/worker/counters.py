"""What this worker has done, counted in memory and persisted in its heartbeat row for ``/metrics``."""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.worker.poll_rules import PollChain

#: Upper bounds (seconds) of the poll duration histogram's buckets.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Upper bounds (seconds) of the poll lateness histogram: how long after its due time an asset was
#: claimed. Steadily growing lateness means the workers do not keep up with the watches.
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
#: Upper bounds (seconds) of the poll earliness histogram: how long before its due time an asset's
#: request was sent (on time or late counts as 0). Anything above the first bucket is a bug: a claim
#: may be made early, its request may not.
EARLINESS_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


class Histogram:
    """Cumulative-bucket histogram in the Prometheus sense (not thread-safe: callers lock)."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._per_bucket = [0] * len(bounds)  # observations in (previous bound, bound]
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        if index < len(self.bounds):
            self._per_bucket[index] += 1
        self.count += 1
        self.sum += value

    def snapshot(self) -> dict[str, Any]:
        """``{"buckets": [[bound, cumulative count], ...], "count": n, "sum": s}``."""
        cumulative, running = [], 0
        for bound, in_bucket in zip(self.bounds, self._per_bucket, strict=True):
            running += in_bucket
            cumulative.append((bound, running))
        return {"buckets": cumulative, "count": self.count, "sum": self.sum}


class WorkerCounters:
    """Monotonic counters and histograms of poll duration, lateness and earliness; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._polls: Counter[str] = Counter()
        self._deliveries: Counter[str] = Counter()
        self._duration = Histogram(DURATION_BUCKETS)
        self._lateness = Histogram(LATENESS_BUCKETS)
        self._earliness = Histogram(EARLINESS_BUCKETS)

    def poll(self, outcome: str, seconds: float) -> None:
        """One request to Media Intelligence, by outcome."""
        with self._lock:
            self._polls[outcome] += 1
            self._duration.observe(seconds)

    def polled(self, chains: Iterable[PollChain]) -> None:
        """The requests of polled claims (``poll`` for each) and when each claim's first went out
        (``sent_early``), under one lock: thousands arrive a second."""
        with self._lock:
            for chain in chains:
                for _, result in chain.requests:
                    self._polls[result.outcome.value] += 1
                    self._duration.observe(result.duration)
                self._earliness.observe(max(0.0, chain.sent_early))

    def claimed_late(self, seconds_list: list[float]) -> None:
        """Claimed assets, each this many seconds after it was due."""
        with self._lock:
            for seconds in seconds_list:
                self._lateness.observe(max(0.0, seconds))

    def delivery(self, outcome: str, target_type: str) -> None:
        """One delivery attempt, by outcome and target type."""
        with self._lock:
            self._deliveries[f"{outcome}|{target_type}"] += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy (cumulative since this worker started)."""
        with self._lock:
            return {
                "polls": dict(self._polls),
                "deliveries": dict(self._deliveries),
                "poll_duration": self._duration.snapshot(),
                "poll_lateness": self._lateness.snapshot(),
                "poll_earliness": self._earliness.snapshot(),
            }

    def polls_total(self) -> int:
        """Requests made so far."""
        with self._lock:
            return sum(self._polls.values())


def merge_snapshots(total: dict[str, Any], snapshot: dict[str, Any]) -> dict[str, Any]:
    """``total`` plus ``snapshot``, both shaped like ``WorkerCounters.snapshot()``, as a new dict:
    counts add up by key, histograms by bucket (bounds are module constants, so bucket ``i`` of one
    worker is bucket ``i`` of every other)."""
    merged = dict(total)
    for key, value in snapshot.items():
        merged[key] = _add(total[key], value) if key in total else value
    return merged


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, dict) and isinstance(right, dict):
        return merge_snapshots(left, right)
    if isinstance(left, list) and isinstance(right, list):  # [[bound, cumulative count], ...]
        longer, shorter = (left, right) if len(left) >= len(right) else (right, left)
        return [
            [pair[0], pair[1] + (shorter[index][1] if index < len(shorter) else 0)]
            for index, pair in enumerate(longer)
        ]
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left + right
    return right
