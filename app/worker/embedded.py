"""``BRIDGE_EMBEDDED_WORKER``: the worker's scheduler inside a web process (single-dyno setups, demo).

Started after gunicorn forks (``post_worker_init``), once per process; the copies coordinate through
leases like separate workers.
"""

from __future__ import annotations

import atexit
import threading

from apscheduler.schedulers.base import BaseScheduler
from flask import Flask

from app.worker.database_wait import guarded
from app.worker.heartbeat import beat
from app.worker.runtime import WorkerRuntime
from app.worker.scheduler import start_background

_started: dict[int, tuple[WorkerRuntime, BaseScheduler]] = {}
_lock = threading.Lock()


def start_embedded_worker(app: Flask) -> WorkerRuntime:
    """Start the embedded scheduler for ``app`` (idempotent per app); stops at interpreter exit."""
    with _lock:
        if id(app) in _started:
            return _started[id(app)][0]
        runtime = WorkerRuntime.from_app(app, kind="embedded")
        _started[id(app)] = (runtime, start_background(runtime))
    atexit.register(stop_embedded_worker, app)
    return runtime


def stop_embedded_worker(app: Flask) -> None:
    """Stop the embedded scheduler of ``app`` (in-flight ticks finish, a last heartbeat is written)."""
    with _lock:
        started = _started.pop(id(app), None)
    if started is None:
        return
    runtime, scheduler = started
    runtime.stop.set()
    scheduler.shutdown(wait=True)
    try:
        guarded(beat, runtime)(runtime)  # quiet during a database outage
    finally:
        runtime.close()
