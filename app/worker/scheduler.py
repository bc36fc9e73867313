"""APScheduler wiring: the worker's jobs on a ~1 s tick, in a blocking (worker) or background
(embedded) scheduler. The scheduler only ticks; leases in the database coordinate the workers.

The jobs run only while the database answers with this code's schema (``app.worker.database_wait``):
a worker started before ``mi-bridge db upgrade``, or one whose database goes away, waits with a line a
minute instead of a traceback a tick, and resumes by itself.
"""

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
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from app.worker.alerting import alert_tick
from app.worker.database_wait import guarded, keep_checking
from app.worker.delivery import deliver_once
from app.worker.heartbeat import beat
from app.worker.housekeeping import housekeep
from app.worker.poll_transport import transport_of
from app.worker.polling import poll_once
from app.worker.runtime import WorkerRuntime
from app.worker.workflows import workflow_once

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
HEARTBEAT_SECONDS = 5.0
#: SIGTERM to exit: Heroku kills 30 s after SIGTERM; in-flight polls end within the read timeout.
SHUTDOWN_GRACE_SECONDS = 25.0


def add_jobs(scheduler: BaseScheduler, runtime: WorkerRuntime) -> None:
    """Register the worker's jobs (explicit ids, one instance each, missed runs coalesced), each
    guarded by the database gate, and the check that opens the gate."""
    now = datetime.now(UTC)
    common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    keep_checking(scheduler, runtime)
    scheduler.add_job(
        guarded(poll_once, runtime), "interval", seconds=TICK_SECONDS, id="poll",
        args=[runtime, TICK_SECONDS], next_run_time=now, **common,
    )  # fmt: skip
    scheduler.add_job(
        guarded(deliver_once, runtime), "interval", seconds=TICK_SECONDS, id="deliver",
        args=[runtime], next_run_time=now, **common,
    )  # fmt: skip
    scheduler.add_job(
        guarded(workflow_once, runtime), "interval", seconds=TICK_SECONDS, id="workflows",
        args=[runtime], next_run_time=now, **common,
    )  # fmt: skip

    def wake_delivery() -> None:
        # A running delivery tick drains full batches itself; waking it again would only log
        # that its one instance is busy.
        if not runtime.delivery_lock.locked():
            with contextlib.suppress(JobLookupError):  # removed: the scheduler is shutting down
                scheduler.modify_job("deliver", next_run_time=datetime.now(UTC))

    runtime.wake_delivery = wake_delivery
    scheduler.add_job(
        guarded(housekeep, runtime), "interval",
        seconds=runtime.settings.bridge_housekeeping_interval, id="housekeeping", args=[runtime],
        **common,
    )  # fmt: skip
    scheduler.add_job(
        guarded(alert_tick, runtime), "interval", seconds=runtime.settings.bridge_alert_interval,
        id="alerts", args=[runtime], next_run_time=now, **common,
    )  # fmt: skip
    scheduler.add_job(
        guarded(beat, runtime), "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat",
        args=[runtime], next_run_time=now, **common,
    )  # fmt: skip


def _executors() -> dict[str, ThreadPoolExecutor]:
    # One thread per job: poll, deliver, workflows, housekeeping, alerts, heartbeat and the
    # database check.
    return {"default": ThreadPoolExecutor(max_workers=7)}


def run_worker(runtime: WorkerRuntime) -> None:
    """Run the worker until SIGTERM/SIGINT, then stop claiming, finish in-flight work and return."""
    scheduler = BlockingScheduler(executors=_executors(), timezone=UTC)
    add_jobs(scheduler, runtime)

    def request_stop(signum: int, _frame: object) -> None:
        log.info("worker %s: signal %s, stopping", runtime.worker_id, signum)
        runtime.stop.set()
        # shutdown takes scheduler locks: never from inside the signal handler itself
        threading.Thread(target=_shut_down, args=[scheduler], daemon=True).start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        transport_of(runtime).start()  # a poll process (if configured) starts now, not in a tick
        # A signal while it started found no scheduler to shut down: then none is started.
        if not runtime.stop.is_set():
            log.info("worker %s started", runtime.worker_id)
            scheduler.start()
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        # In-flight ticks finish first.
        for lock in (runtime.tick_lock, runtime.delivery_lock, runtime.workflow_lock):
            if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                lock.release()
        # The final counters, so /metrics misses nothing this worker did (when there is a database
        # to write them to: a worker stopped while waiting for it has none).
        guarded(beat, runtime)(runtime)
    finally:
        runtime.close()
    log.info("worker %s stopped", runtime.worker_id)


def _shut_down(scheduler: BaseScheduler) -> None:
    with contextlib.suppress(SchedulerNotRunningError):  # a second signal: already stopping
        scheduler.shutdown(wait=False)


def start_background(runtime: WorkerRuntime) -> BackgroundScheduler:
    """Start the same jobs on a background scheduler (the embedded worker)."""
    scheduler = BackgroundScheduler(executors=_executors(), timezone=UTC, daemon=True)
    add_jobs(scheduler, runtime)
    transport_of(runtime).start()
    scheduler.start()
    return scheduler
