"""Waiting for the database: the worker's jobs run only while it answers with this code's schema.

At start, and again whenever a job finds it gone, one check job asks the database (``check_database``:
it answers, and its Alembic revision is this code's head) every ``WorkerRuntime.database_check_seconds``
until it does; the jobs meanwhile skip their ticks without touching it. Everything said about it goes
through the runtime's ``DatabaseGate``: one line when it goes, at most one a minute meanwhile, one when
it is back. The check is one self-rescheduling run, never two at once, so a check stuck in a connect
timeout never makes the scheduler warn about skipped runs.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler

from app.db import db
from app.health.readiness import check_database
from app.vocabulary import DatabaseHealth
from app.worker.runtime import WorkerRuntime

CHECK_JOB_ID = "database"

Result = TypeVar("Result")


def database_ready(runtime: WorkerRuntime) -> bool:
    """Check the database once and tell the runtime's gate; True when the jobs may run."""
    with runtime.app.app_context():
        check = check_database(db.engine)
    if check.health == DatabaseHealth.OK:
        runtime.database.up()
        return True
    runtime.database.down(check.health, check.reason)
    return False


def keep_checking(scheduler: BaseScheduler, runtime: WorkerRuntime) -> None:
    """Check the database now and until it is ready, and again each time a job finds it gone."""

    def schedule(delay: float) -> None:
        when = datetime.now(UTC) + timedelta(seconds=delay)
        # misfire_grace_time None: a late check still runs (a skipped one would never come back).
        scheduler.add_job(
            check, "date", run_date=when, id=CHECK_JOB_ID, replace_existing=True,
            misfire_grace_time=None,
        )  # fmt: skip

    def check() -> None:
        if not database_ready(runtime) and not runtime.stop.is_set():
            schedule(runtime.database_check_seconds)

    def on_down() -> None:
        if not runtime.stop.is_set():
            with contextlib.suppress(JobLookupError):  # the scheduler is shutting down
                schedule(0)

    runtime.database.on_down = on_down
    schedule(0)


def guarded(job: Callable[..., Result], runtime: WorkerRuntime) -> Callable[..., Result | None]:
    """``job`` as the scheduler runs it: skipped while the database is not usable; an error that
    says the database went away (or lost its schema) goes to the gate instead of the log. Any other
    error propagates, and the scheduler logs it with its traceback as ever."""
    gate = runtime.database

    @functools.wraps(job)
    def run(*args: Any) -> Result | None:
        if not gate.usable:
            return None
        try:
            result = job(*args)
        except Exception as exc:
            if gate.report(exc):
                return None
            raise
        gate.confirm()
        return result

    return run
