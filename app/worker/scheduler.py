"""APScheduler wiring: the worker's jobs on a ~1 s tick, in a blocking (worker) or background
(embedded) scheduler. The scheduler only ticks; leases in the database coordinate the workers."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from datetime import UTC, datetime
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from app.worker.delivery import deliver_once
from app.worker.heartbeat import beat
from app.worker.housekeeping import housekeep
from app.worker.polling import poll_once
from app.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
HEARTBEAT_SECONDS = 5.0
#: SIGTERM to exit: Heroku kills 30 s after SIGTERM; in-flight polls end within the read timeout.
SHUTDOWN_GRACE_SECONDS = 25.0


def add_jobs(scheduler: BaseScheduler, runtime: WorkerRuntime) -> None:
    """Register the worker's jobs (explicit ids, one instance each, missed runs coalesced)."""
    now = datetime.now(UTC)
    common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    scheduler.add_job(
        poll_once, "interval", seconds=TICK_SECONDS, id="poll", args=[runtime, TICK_SECONDS],
        next_run_time=now, **common,
    )  # fmt: skip
    scheduler.add_job(
        deliver_once, "interval", seconds=TICK_SECONDS, id="deliver", args=[runtime],
        next_run_time=now, **common,
    )  # fmt: skip

    def wake_delivery() -> None:
        # A running delivery tick drains full batches itself; waking it again would only log
        # that its one instance is busy.
        if not runtime.delivery_lock.locked():
            with contextlib.suppress(JobLookupError):  # removed: the scheduler is shutting down
                scheduler.modify_job("deliver", next_run_time=datetime.now(UTC))

    runtime.wake_delivery = wake_delivery
    scheduler.add_job(
        housekeep, "interval", seconds=runtime.settings.bridge_housekeeping_interval,
        id="housekeeping", args=[runtime], **common,
    )  # fmt: skip
    scheduler.add_job(
        beat, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat", args=[runtime],
        next_run_time=now, **common,
    )  # fmt: skip


def _executors() -> dict[str, ThreadPoolExecutor]:
    return {"default": ThreadPoolExecutor(max_workers=4)}


def run_worker(runtime: WorkerRuntime) -> None:
    """Run the worker until SIGTERM/SIGINT, then stop claiming, finish in-flight work and return."""
    scheduler = BlockingScheduler(executors=_executors(), timezone=UTC)
    add_jobs(scheduler, runtime)

    def request_stop(signum: int, _frame: object) -> None:
        log.info("worker %s: signal %s, stopping", runtime.worker_id, signum)
        runtime.stop.set()
        # shutdown takes scheduler locks: never from inside the signal handler itself
        threading.Thread(target=scheduler.shutdown, kwargs={"wait": False}, daemon=True).start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    log.info("worker %s started", runtime.worker_id)
    scheduler.start()
    deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
    for lock in (runtime.tick_lock, runtime.delivery_lock):  # in-flight ticks finish first
        if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            lock.release()
    try:
        beat(runtime)  # the final counters, so /metrics misses nothing this worker did
    finally:
        runtime.close()
    log.info("worker %s stopped", runtime.worker_id)


def start_background(runtime: WorkerRuntime) -> BackgroundScheduler:
    """Start the same jobs on a background scheduler (the embedded worker)."""
    scheduler = BackgroundScheduler(executors=_executors(), timezone=UTC, daemon=True)
    add_jobs(scheduler, runtime)
    scheduler.start()
    return scheduler
