"""``BRIDGE_EMBEDDED_WORKER``: the worker's scheduler inside a web process (single-dyno setups, demo).

Started after gunicorn forks (``post_worker_init``), once per process; the copies coordinate through
leases like separate workers.
"""

from __future__ import annotations

import atexit
import threading

from flask import Flask

from app.worker.runtime import WorkerRuntime
from app.worker.scheduler import start_background

_started: dict[int, WorkerRuntime] = {}
_lock = threading.Lock()


def start_embedded_worker(app: Flask) -> WorkerRuntime:
    """Start the embedded scheduler for ``app`` (idempotent per app); stops at interpreter exit."""
    with _lock:
        if id(app) in _started:
            return _started[id(app)]
        runtime = WorkerRuntime.from_app(app, kind="embedded")
        scheduler = start_background(runtime)

        def stop() -> None:
            runtime.stop.set()
            scheduler.shutdown(wait=True)
            runtime.close()

        atexit.register(stop)
        _started[id(app)] = runtime
        return runtime
