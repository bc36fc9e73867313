"""A token bucket capping requests per second to Media Intelligence from this process (``MI_MAX_RPS``)."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Thread-safe token bucket; ``acquire`` waits for a token or gives up when ``stop`` is set."""

    def __init__(self, per_second: float, burst: float | None = None) -> None:
        self.per_second = per_second
        self.capacity = burst if burst is not None else max(1.0, per_second)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, stop: threading.Event) -> bool:
        """Take one token, waiting as needed; False if ``stop`` was set first."""
        while not stop.is_set():
            with self._lock:
                now = time.monotonic()
                self._tokens = min(
                    self.capacity, self._tokens + (now - self._updated) * self.per_second
                )
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return True
                wait = (1 - self._tokens) / self.per_second
            stop.wait(wait)
        return False
