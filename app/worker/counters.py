"""What this worker has done, counted in memory and persisted in its heartbeat row for ``/metrics``."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

#: Upper bounds (seconds) of the poll duration histogram's buckets.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class WorkerCounters:
    """Monotonic counters and a poll-duration histogram; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._polls: Counter[str] = Counter()
        self._deliveries: Counter[str] = Counter()
        self._duration_buckets = [0] * len(DURATION_BUCKETS)
        self._duration_count = 0
        self._duration_sum = 0.0

    def poll(self, outcome: str, seconds: float) -> None:
        """One request to Media Intelligence, by outcome."""
        with self._lock:
            self._polls[outcome] += 1
            self._duration_count += 1
            self._duration_sum += seconds
            for index, bound in enumerate(DURATION_BUCKETS):
                if seconds <= bound:
                    self._duration_buckets[index] += 1

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
                "poll_duration": {
                    "buckets": list(zip(DURATION_BUCKETS, self._duration_buckets, strict=True)),
                    "count": self._duration_count,
                    "sum": self._duration_sum,
                },
            }

    def polls_total(self) -> int:
        """Requests made so far."""
        with self._lock:
            return sum(self._polls.values())
