"""A total time bound for one outbound send, whatever the peer does.

Socket timeouts bound each read, not a request: a receiver that answers one byte every 5 s never trips a
15 s read timeout and can hold a send (and the worker slot behind it) for ever. A ``Deadline`` is
opened around a send on the sending thread; every HTTP connection used on that thread while it is open
is registered with it (``app.outbound.http``), and when it expires a single watchdog thread shuts
those sockets down. The blocked read returns at once, the HTTP library raises, and the sender reports
``expired``. No thread is left behind: the send's own thread is the one that returns.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

_local = threading.local()


class Deadline:
    """The end of one send's time; connections used meanwhile are cut when it passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self.expired = False
        self._closed = False
        self._connections: list[Any] = []
        self._lock = threading.Lock()

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.expires_at - time.monotonic())

    def watch(self, connection: Any) -> None:
        """Cut ``connection`` (anything with a ``sock`` attribute) when the deadline passes."""
        with self._lock:
            if self.expired:
                _shut(connection)
            elif not self._closed:
                self._connections.append(connection)

    def _expire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.expired = True
            connections, self._connections = self._connections, []
        for connection in connections:
            _shut(connection)

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            self._connections = []


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is None:
        return
    # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would tear down the TLS state
    # under the reading thread's feet; closing the descriptor's both directions wakes it cleanly.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread per process that expires deadlines in time order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._wake:
            heapq.heappush(self._heap, (deadline.expires_at, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="send-deadlines", daemon=True
                )
                self._thread.start()
            # Woken only when this deadline is now the first to expire: the thread already sleeps
            # until the earlier one otherwise (a send's deadline is almost never the first: waking
            # the thread for every send cost a GIL hand-over each, hundreds a second in a burst).
            if self._heap[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                expires_at, _, deadline = self._heap[0]
                wait = expires_at - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
            deadline._expire()


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Bound every connection used on this thread inside the block to ``seconds`` in total."""
    bound = Deadline(seconds)
    outer = getattr(_local, "deadline", None)
    _local.deadline = bound
    _WATCHDOG.add(bound)
    try:
        yield bound
    finally:
        bound._close()
        _local.deadline = outer


def current() -> Deadline | None:
    """The deadline open on this thread, if any."""
    return getattr(_local, "deadline", None)
