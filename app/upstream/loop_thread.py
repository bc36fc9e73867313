"""An asyncio event loop (uvloop's, the faster implementation) on a daemon thread of its own, for
callers that are plain threads.

The worker's ticks run on APScheduler's threads and write to the database synchronously; only the
status requests are asynchronous. ``LoopThread`` lets those threads hand a coroutine to the loop and
wait on a ``concurrent.futures.Future`` (one per batch, not one per request).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

new_event_loop: Callable[[], asyncio.AbstractEventLoop]
try:
    from uvloop import new_event_loop
except ImportError:  # no uvloop on Windows: asyncio's own loop does the same, a little slower
    from asyncio import new_event_loop

T = TypeVar("T")

#: How long ``stop`` waits for the loop's cleanup and the thread's end.
STOP_TIMEOUT_SECONDS = 10.0


class LoopThread:
    """Starts its thread on the first ``submit`` (so building one is cheap, and fork-safe until used).

    Thread-safe. After ``stop`` it cannot be used again.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Schedule ``coroutine`` on the loop; its result (or exception) arrives in the Future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._running_loop(coroutine))

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """``submit`` and wait for the result."""
        return self.submit(coroutine).result()

    def stop(self, cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
        """Cancel what still runs, await ``cleanup()`` on the loop, then end the thread (once; later
        calls do nothing)."""
        with self._lock:
            loop, thread, already = self._loop, self._thread, self._stopped
            self._stopped = True
        if already or loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(_shutdown(cleanup), loop).result(STOP_TIMEOUT_SECONDS)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT_SECONDS)
        if not thread.is_alive():
            loop.close()

    def _running_loop(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._stopped:
                coroutine.close()  # never awaited: say so quietly instead of a RuntimeWarning
                raise RuntimeError(f"{self._name} is stopped")
            if self._loop is None:
                loop = new_event_loop()
                thread = threading.Thread(
                    target=_run_forever, args=(loop,), name=self._name, daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop


def _run_forever(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


async def _shutdown(cleanup: Callable[[], Awaitable[None]] | None) -> None:
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if cleanup is not None:
        await cleanup()
