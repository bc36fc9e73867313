"""Where ``hold`` and ``slow`` faults wait: released by the control API or a stopping server."""

from __future__ import annotations

import threading


class HoldGate:
    """Parks request threads until released, timed out, or closed. Thread-safe.

    ``release_all`` frees every request held at that moment (later holds wait for the next release).
    ``close`` frees everything and makes later waits return at once, so a stopping server never
    waits out a 60-second hold.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._epoch = 0
        self._held = 0
        self._closed = False

    @property
    def held(self) -> int:
        """How many requests are held right now."""
        with self._cond:
            return self._held

    def hold(self, timeout: float) -> bool:
        """Block until released or closed (True) or ``timeout`` seconds pass (False)."""
        with self._cond:
            epoch = self._epoch
            self._held += 1
            try:
                return self._cond.wait_for(lambda: self._epoch != epoch or self._closed, timeout)
            finally:
                self._held -= 1

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, cut short if the gate closes."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed, seconds)

    def release_all(self) -> int:
        """Free every held request; return how many there were."""
        with self._cond:
            released = self._held
            self._epoch += 1
            self._cond.notify_all()
            return released

    def close(self) -> None:
        """Free everything now and from now on (the server is stopping)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Undo ``close`` (a server starts serving this state)."""
        with self._cond:
            self._closed = False
