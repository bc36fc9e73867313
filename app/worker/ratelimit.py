"""A token bucket capping requests per second to Media Intelligence from this process (``MI_MAX_RPS``)."""

from __future__ import annotations

import asyncio
import threading
import time

#: Longest single sleep of ``acquire``, so a stop is noticed soon even at a low rate.
STOP_CHECK_SECONDS = 0.25


class RateLimiter:
    """A token bucket for coroutines (the poller's event loop); its state is lock-guarded, so it may
    be shared between loops."""

    def __init__(self, per_second: float, burst: float | None = None) -> None:
        self.per_second = per_second
        self.capacity = burst if burst is not None else max(1.0, per_second)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    async def acquire(self, stop: threading.Event) -> bool:
        """Take one token, sleeping on the loop as needed; False if ``stop`` was set first."""
        while not stop.is_set():
            wait = self._take_or_wait()
            if wait == 0:
                return True
            await asyncio.sleep(min(wait, STOP_CHECK_SECONDS))
        return False

    def _take_or_wait(self) -> float:
        """Take a token and return 0, or return how long until one is available."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(
                self.capacity, self._tokens + (now - self._updated) * self.per_second
            )
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.per_second
