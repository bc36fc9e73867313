"""Housekeeping: remove rows nobody needs any more. Runs every ``BRIDGE_HOUSEKEEPING_INTERVAL``
seconds in every worker (and on demand, ``mi-bridge housekeep``); concurrent passes are safe.

One pass: idempotency keys past their 24 h lifetime; heartbeat rows of workers gone for a day;
then, unless ``BRIDGE_RETENTION_DAYS`` is 0, the watches that ended longer ago than that, with
everything that hangs off them, in batches of their own transactions (``app.worker.retention``),
and ``bridge.alert`` events as old (a batch a pass: alerts are rare).

On SQLite a pass pauses after each watch batch for ``SQLITE_PAUSE_RATIO`` times as long as the batch
took. SQLite has one write lock for the whole file, and a writer that finds it taken sleeps in
growing steps (up to 100 ms) before it tries again: batches back to back took the lock again before
the poller woke, and polls waited seconds for it while a large backlog was pruned
(``bench/cost_of_02.py``). PostgreSQL locks rows, so it prunes without pausing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.db import db
from app.worker.retention import (
    WATCH_BATCH,
    prune_alert_events,
    prune_heartbeats,
    prune_watch_batch,
    purge_expired_keys,
)
from app.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

#: SQLite: pause after a watch batch for this many times its duration (the lock free 2/3 of a pass).
SQLITE_PAUSE_RATIO = 2.0
#: ... and at least this long: a waiting writer's longest sleep between tries (``sqlite3``'s busy
#: handler) plus a margin, so a pause is never shorter than the wait of the writer it is for.
SQLITE_MIN_PAUSE = 0.15


@dataclass
class HousekeepingReport:
    """What one pass removed: rows by table, and each committed watch batch's rows by table."""

    removed: Counter[str] = field(default_factory=Counter)
    batches: list[Counter[str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows removed, every table together."""
        return sum(self.removed.values())


def housekeep(runtime: WorkerRuntime, batch_size: int = WATCH_BATCH) -> HousekeepingReport:
    """The scheduler's job: one pass with the runtime's settings and clock, stopping between
    batches once the worker is asked to stop."""
    with runtime.app.app_context():
        try:
            session = db.session()
            report = housekeeping_pass(
                session,
                runtime.clock,
                runtime.settings.bridge_retention_days,
                batch_size=batch_size,
                stop=runtime.stop,
                pause_ratio=pause_ratio_for(session),
            )
        finally:
            db.session.remove()  # rolls back a batch an error interrupted
    if report.total:
        log.info("housekeeping removed %s", _describe(report.removed))
    return report


def housekeeping_pass(
    session: Session,
    clock: Callable[[], datetime],
    retention_days: float,
    *,
    batch_size: int = WATCH_BATCH,
    stop: threading.Event | None = None,
    on_batch: Callable[[Counter[str]], None] | None = None,
    pause_ratio: float = 0.0,
) -> HousekeepingReport:
    """One pass; every step and every watch batch commits on its own. ``on_batch`` is called with
    each watch batch's counts once it has committed. ``retention_days`` 0 keeps every watch.

    ``pause_ratio`` > 0: after each watch batch, wait ``pause_ratio`` times as long as the batch took
    (at least ``SQLITE_MIN_PAUSE``) before the next, so other writers get the database (see the
    module's docstring); a stop request ends the wait."""
    stop = stop if stop is not None else threading.Event()
    report = HousekeepingReport()
    report.removed["idempotency_keys"] = purge_expired_keys(session, clock())
    session.commit()
    report.removed["worker_heartbeats"] = prune_heartbeats(session, clock())
    session.commit()
    while retention_days > 0 and not stop.is_set():
        now = clock()  # a long pass keeps its leases' view of "now" current
        started = time.monotonic()
        batch = prune_watch_batch(session, now, now - timedelta(days=retention_days), batch_size)
        session.commit()
        if not batch:
            break
        report.batches.append(batch)
        report.removed.update(batch)
        if on_batch is not None:
            on_batch(batch)
        if batch["watches"] < batch_size:
            break  # none left, or the rest have sends in flight: a later pass takes them
        if pause_ratio > 0:
            took = time.monotonic() - started
            stop.wait(max(took * pause_ratio, SQLITE_MIN_PAUSE))
    if retention_days > 0:
        report.removed.update(prune_alert_events(session, clock() - timedelta(days=retention_days)))
        session.commit()
    report.removed = Counter({table: n for table, n in report.removed.items() if n})
    return report


def pause_ratio_for(session: Session) -> float:
    """The pause between watch batches for ``session``'s database: SQLite's, or none."""
    return SQLITE_PAUSE_RATIO if session.get_bind().dialect.name == "sqlite" else 0.0


def _describe(removed: Counter[str]) -> str:
    return ", ".join(f"{count} {table}" for table, count in sorted(removed.items()))
