"""Token buckets capping requests per second to Media Intelligence from this process (``MI_MAX_RPS``),
one bucket per NCP account: each access key has its own rate, so one account's traffic never takes
another's tokens."""

from __future__ import annotations

import asyncio
import threading
import time

#: Longest single sleep of ``acquire``, so a stop is noticed soon even at a low rate.
STOP_CHECK_SECONDS = 0.25


class RateLimiter:
    """Token buckets for coroutines (the poller's event loop), one per key (an account's
    fingerprint; ``""`` when the caller has a single one); their state is lock-guarded, so a
    limiter may be shared between loops."""

    def __init__(self, per_second: float, burst: float | None = None) -> None:
        self.per_second = per_second
        self.capacity = burst if burst is not None else max(1.0, per_second)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    async def acquire(self, stop: threading.Event, key: str = "") -> bool:
        """Take one token of ``key``'s bucket, sleeping on the loop as needed; False if ``stop``
        was set first."""
        while not stop.is_set():
            wait = self._take_or_wait(key)
            if wait == 0:
                return True
            await asyncio.sleep(min(wait, STOP_CHECK_SECONDS))
        return False

    def _take_or_wait(self, key: str) -> float:
        """Take a token of ``key``'s bucket and return 0, or return how long until one is there."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self.capacity, time.monotonic())
            now = time.monotonic()
            bucket.tokens = min(
                self.capacity, bucket.tokens + (now - bucket.updated) * self.per_second
            )
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.per_second


class _Bucket:
    """One key's tokens and when they were last counted (``time.monotonic``)."""

    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated
