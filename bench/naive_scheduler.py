"""The naive alternative design, measured: one APScheduler job per watch, polling nginx.

    .venv/bin/python bench/naive_scheduler.py [--watches 10000 50000] [--interval 15] [--seconds 60]
        [--stores memory sqlalchemy [postgres]] [--add-cap 300]

Nothing from ``app/`` is used: this is what a poller without the product's worker would look like.
Each watch is an APScheduler 3 ``interval`` job (``--interval`` s, first run spread uniformly over the
first interval) whose function GETs that watch's status URL from nginx with one shared
``requests.Session`` (pool of 16 = the thread pool), parses the JSON, and records the poll in one short
transaction (``UPDATE watch_polls SET polls = polls + 1, last_polled_at = now`` of its row, SQLAlchemy 2).

The scheduler is a ``BackgroundScheduler`` with ``ThreadPoolExecutor(16)`` (the product's poll
concurrency) and APScheduler 3.11's job defaults, which this script does not override:
``misfire_grace_time`` 1 s (a run starting more than 1 s late is dropped, EVENT_JOB_MISSED),
``coalesce`` True (stated explicitly; several due runs of one job collapse into one, silently) and
``max_instances`` 1 (a job still queued or running when due again is skipped, EVENT_JOB_MAX_INSTANCES).

Job stores: ``memory`` (MemoryJobStore), ``sqlalchemy`` (SQLAlchemyJobStore on a SQLite file) and, on
request, ``postgres`` (SQLAlchemyJobStore on a fresh PostgreSQL database). The naive app has one
database, so the poll table lives in the same database as the job store (for ``memory``: a SQLite
file). SQLite gets WAL, synchronous=NORMAL and a 30 s busy timeout, as the product's SQLite does.

Each (store, size) runs in a fresh subprocess (so its RSS is its own) with a hard time cap: seed the
poll table, start the scheduler paused, add every job (timed), resume, wait one interval (warm-up),
then measure ``--seconds``. Figures over that window: polls expected (watches * window / interval),
polls executed (the database counter's increase), their ratio, EVENT_JOB_MISSED and
EVENT_JOB_MAX_INSTANCES counts, lateness of the executed runs (the job function's start minus its
scheduled run time; at most ~1 s by construction, later ones are the misses), how late the scheduler
thread submitted runs to the pool, and the subprocess's RSS. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PG_ADMIN_URL, fresh_postgres, machine, nginx_far_end, rss_mb, status_urls

STORES = ("memory", "sqlalchemy", "postgres")
POOL_THREADS = 16  # = app.worker.runtime.POLL_CONCURRENCY
PG_DB = "mi_bridge_bench_naive"
RSS_SAMPLE_SECONDS = 0.5


# --- the child: one configuration -------------------------------------------------------------------


class Poller:
    """What every job needs; module-level (``_POLLER``) because persisted jobs can only name functions."""

    def __init__(self, urls: list[str], engine: Any, table: Any) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from sqlalchemy import bindparam

        self.urls = urls
        self.engine = engine
        self.session = requests.Session()
        self.session.mount(
            "http://",
            HTTPAdapter(pool_connections=1, pool_maxsize=POOL_THREADS, max_retries=0),
        )
        self.update = (
            table.update()
            .where(table.c.id == bindparam("watch"))
            .values(polls=table.c.polls + 1, last_polled_at=bindparam("now"))
        )
        # When each job's function last started, by watch: max_instances=1 keeps one entry per job.
        self.starts: dict[int, float] = {}


_POLLER: Poller | None = None


def poll(index: int) -> None:
    """One watch's job: GET its status, parse it, record the poll in one short transaction."""
    poller = _POLLER
    poller.starts[index] = time.time()
    response = poller.session.get(poller.urls[index], timeout=(3.05, 10))
    response.raise_for_status()
    if response.json()["code"] != "0":
        raise RuntimeError(f"unexpected status body: {response.text[:200]}")
    with poller.engine.begin() as connection:
        connection.execute(poller.update, {"watch": index, "now": datetime.now(UTC)})


def make_engine(store: str, directory: Path) -> Any:
    """The naive app's one database: a SQLite file (memory, sqlalchemy) or a fresh PostgreSQL db."""
    from sqlalchemy import create_engine, event

    pool = {"pool_size": POOL_THREADS + 4, "max_overflow": 0}
    if store == "postgres":
        url = fresh_postgres(PG_DB).replace("postgresql://", "postgresql+psycopg://", 1)
        return create_engine(url, **pool)
    engine = create_engine(
        f"sqlite:///{directory / 'naive.sqlite'}",
        connect_args={"timeout": 30, "check_same_thread": False},
        **pool,
    )

    @event.listens_for(engine, "connect")
    def _tune(dbapi_connection: Any, _record: Any) -> None:
        # The usual settings for threads sharing one SQLite file (and the product's): without WAL,
        # readers and the writer block each other.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def seed_polls(engine: Any, watches: int) -> Any:
    """Create and fill the poll table (one row per watch, counter at 0); returns the table."""
    from sqlalchemy import Column, DateTime, Integer, MetaData, Table

    table = Table(
        "watch_polls",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("polls", Integer, nullable=False),
        Column("last_polled_at", DateTime(timezone=True)),
    )
    table.create(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), [{"id": i, "polls": 0} for i in range(watches)])
    return table


def polls_so_far(engine: Any, table: Any) -> int:
    from sqlalchemy import func, select

    with engine.connect() as connection:
        return int(connection.scalar(select(func.sum(table.c.polls))) or 0)


class Recorder:
    """Scheduler events, timestamped, kept as plain tuples (list.append is thread-safe)."""

    def __init__(self, starts: dict[int, float]) -> None:
        self.starts = starts
        self.executed: list[tuple[float, float]] = []  # (start, lateness)
        self.submitted: list[tuple[float, float]] = []  # (when, lag behind the latest due run time)
        self.missed: list[float] = []
        self.max_instances: list[float] = []
        self.errors: list[float] = []
        self.first_error = ""

    def __call__(self, event: Any) -> None:
        from apscheduler import events

        now = time.time()
        if event.code == events.EVENT_JOB_EXECUTED:
            start = self.starts.pop(int(event.job_id), None)
            if start is not None:
                self.executed.append((start, start - event.scheduled_run_time.timestamp()))
        elif event.code == events.EVENT_JOB_SUBMITTED:
            # Runs in the scheduler thread: how far behind the schedule it hands runs to the pool.
            self.submitted.append((now, now - event.scheduled_run_times[-1].timestamp()))
        elif event.code == events.EVENT_JOB_MISSED:
            self.missed.append(now)
        elif event.code == events.EVENT_JOB_MAX_INSTANCES:
            self.max_instances.append(now)
        elif event.code == events.EVENT_JOB_ERROR:
            self.errors.append(now)
            self.first_error = self.first_error or repr(event.exception)[:300]


def sample_rss(stop: threading.Event, peak: list[float]) -> None:
    while not stop.wait(RSS_SAMPLE_SECONDS):
        peak[0] = max(peak[0], rss_mb())


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def in_window(stamped: list[tuple[float, float]], start: float, stop: float) -> list[float]:
    return [value for when, value in stamped if start <= when < stop]


def count_in(stamps: list[float], start: float, stop: float) -> int:
    return sum(1 for when in stamps if start <= when < stop)


def build_scheduler(store: str, engine: Any, recorder: Recorder) -> Any:
    from apscheduler import events
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    jobstore = MemoryJobStore() if store == "memory" else SQLAlchemyJobStore(engine=engine)
    scheduler = BackgroundScheduler(
        jobstores={"default": jobstore},
        executors={"default": ThreadPoolExecutor(POOL_THREADS)},
        job_defaults={"coalesce": True},  # misfire_grace_time and max_instances: the defaults
        timezone="UTC",
    )
    mask = (
        events.EVENT_JOB_EXECUTED | events.EVENT_JOB_SUBMITTED | events.EVENT_JOB_MISSED
        | events.EVENT_JOB_MAX_INSTANCES | events.EVENT_JOB_ERROR
    )  # fmt: skip
    scheduler.add_listener(recorder, mask)
    return scheduler


def add_jobs(scheduler: Any, watches: int, interval: float, cap: float) -> float:
    """Add one interval job per watch, first runs uniform over one interval; seconds taken."""
    rng = random.Random(11)  # noqa: S311 - spreading start times, not secrets
    began = time.monotonic()
    for index in range(watches):
        first = datetime.now(UTC) + timedelta(seconds=rng.uniform(0, interval))
        scheduler.add_job(
            poll, "interval", seconds=interval, args=[index], id=str(index), next_run_time=first
        )
        if index % 1000 == 999 and time.monotonic() - began > cap:
            raise TimeoutError(f"added only {index + 1} of {watches} jobs in {cap:.0f} s")
    return time.monotonic() - began


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    """One configuration, start to finish, in this (fresh) process; returns its figures."""
    global _POLLER

    logging.basicConfig(level=logging.WARNING)  # APScheduler's misses are warnings, as deployed
    directory = Path(args.dir)
    engine = make_engine(args.store, directory)
    table = seed_polls(engine, args.watches)
    _POLLER = Poller(status_urls(args.far_end, args.watches), engine, table)
    recorder = Recorder(_POLLER.starts)
    scheduler = build_scheduler(args.store, engine, recorder)
    rss_base = rss_mb()
    peak = [rss_base]
    stop = threading.Event()
    threading.Thread(target=sample_rss, args=(stop, peak), daemon=True).start()

    scheduler.start(paused=True)  # jobs are added before anything runs, so the add time is its own
    add_seconds = add_jobs(scheduler, args.watches, args.interval, args.add_cap)
    rss_jobs = rss_mb()
    scheduler.resume()
    time.sleep(args.interval)  # warm-up: every job has come due once
    window_start = time.time()
    polls_before = polls_so_far(engine, table)
    time.sleep(args.seconds)
    polls_after = polls_so_far(engine, table)
    window_end = time.time()
    rss_end = rss_mb()
    stop.set()

    window = window_end - window_start
    lateness = in_window(recorder.executed, window_start, window_end)
    lag = in_window(recorder.submitted, window_start, window_end)
    expected = args.watches * window / args.interval
    executed = polls_after - polls_before
    return {
        "store": args.store,
        "watches": args.watches,
        "add_s": add_seconds,
        "window_s": window,
        "expected": expected,
        "executed": executed,
        "ratio": executed / expected,
        "executed_events": len(lateness),
        "missed": count_in(recorder.missed, window_start, window_end),
        "max_instances": count_in(recorder.max_instances, window_start, window_end),
        "errors": count_in(recorder.errors, window_start, window_end),
        "first_error": recorder.first_error,
        "late_p50_ms": percentile(lateness, 0.50) * 1000,
        "late_p99_ms": percentile(lateness, 0.99) * 1000,
        "lag_p50_s": percentile(lag, 0.50),
        "lag_p99_s": percentile(lag, 0.99),
        "rss_base_mb": rss_base,
        "rss_jobs_mb": rss_jobs,
        "rss_end_mb": rss_end,
        "rss_peak_mb": max(peak[0], rss_end),
    }


# --- the parent: one subprocess per configuration ---------------------------------------------------


def run_configuration(
    store: str, watches: int, args: argparse.Namespace, far_end: str
) -> dict[str, Any]:
    """Run one (store, size) in a fresh subprocess under a hard cap; its figures or an error."""
    cap = (
        args.add_cap + args.interval + args.seconds + 90
    )  # + seeding, start-up and the SUM queries
    with tempfile.TemporaryDirectory(prefix="mi-bench-naive-") as tmp:
        log = Path(tmp) / "child.log"
        command = [
            sys.executable, __file__, "--child", "--store", store, "--watches", str(watches),
            "--interval", str(args.interval), "--seconds", str(args.seconds),
            "--add-cap", str(args.add_cap), "--far-end", far_end, "--dir", tmp,
        ]  # fmt: skip
        began = time.monotonic()
        try:
            with log.open("wb") as stderr:
                done = subprocess.run(  # noqa: S603 - this very script
                    command, stdout=subprocess.PIPE, stderr=stderr, timeout=cap, check=False
                )
        except subprocess.TimeoutExpired:  # subprocess.run has killed it
            return {"store": store, "watches": watches, "error": f"hard cap {cap:.0f} s reached"}
        finally:
            if store == "postgres":
                drop_postgres()
        lines = done.stdout.decode().strip().splitlines()
        if done.returncode != 0 or not lines:
            tail = log.read_text(errors="replace")[-1500:]
            return {"store": store, "watches": watches, "error": f"exit {done.returncode}: {tail}"}
        result = json.loads(lines[-1])
        result["wall_s"] = time.monotonic() - began
        result["log_lines"] = sum(1 for _ in log.open("rb"))
        return result


def drop_postgres() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")


def ms(value: float) -> str:
    """Milliseconds for the table; "-" when nothing was executed (NaN)."""
    return "-" if math.isnan(value) else f"{value:.0f}ms"


def print_table(results: list[dict[str, Any]]) -> None:
    header = (
        f"{'store':10s} {'watches':>7s} {'add s':>6s} {'expected':>8s} {'executed':>8s} "
        f"{'ratio':>6s} {'missed':>7s} {'max-inst':>8s} {'errors':>6s} {'late p50':>8s} "
        f"{'late p99':>8s} {'lag p50':>7s} {'lag p99':>7s} {'RSS MB':>7s} {'peak':>6s}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if "error" in r:
            print(f"{r['store']:10s} {r['watches']:7d}  FAILED: {r['error']}")
            continue
        print(
            f"{r['store']:10s} {r['watches']:7d} {r['add_s']:6.1f} {r['expected']:8.0f} "
            f"{r['executed']:8d} {r['ratio']:6.1%} {r['missed']:7d} {r['max_instances']:8d} "
            f"{r['errors']:6d} {ms(r['late_p50_ms']):>8s} {ms(r['late_p99_ms']):>8s} "
            f"{r['lag_p50_s']:6.2f}s {r['lag_p99_s']:6.2f}s {r['rss_end_mb']:7.0f} "
            f"{r['rss_peak_mb']:6.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--interval", type=float, default=15.0, help="seconds between polls")
    parser.add_argument("--seconds", type=float, default=60.0, help="measurement window")
    parser.add_argument("--stores", nargs="+", choices=STORES, default=["memory", "sqlalchemy"])
    parser.add_argument("--add-cap", type=float, default=300.0, help="give up adding jobs after")
    parser.add_argument("--nginx-workers", type=int, default=1)
    # Internal: one configuration, run by the parent in a fresh subprocess.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store", choices=STORES, help=argparse.SUPPRESS)
    parser.add_argument("--far-end", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.watches = args.watches[0]
        print(json.dumps(run_child(args)), flush=True)
        os._exit(0)  # don't let the pool's queued runs (or the scheduler) delay the exit

    print(f"machine: {machine()}")
    print(
        f"one APScheduler {__import__('apscheduler').__version__} interval job per watch; "
        f"interval {args.interval:g} s; warm-up {args.interval:g} s; window {args.seconds:g} s; "
        f"ThreadPoolExecutor({POOL_THREADS}); misfire_grace_time 1 s, coalesce, max_instances 1"
    )
    results = []
    with nginx_far_end(args.nginx_workers) as far_end:
        print(f"far end: nginx at {far_end} ({args.nginx_workers} worker process)", flush=True)
        for store in args.stores:
            for watches in args.watches:
                result = run_configuration(store, watches, args, far_end)
                results.append(result)
                print(f"  {store} {watches}: {json.dumps(result)}", flush=True)
    print()
    print_table(results)
    print(
        "\nexpected = watches x window / interval; executed = increase of the poll counter in the "
        "window;\nmissed / max-inst / errors = APScheduler events in the window (coalesced runs are "
        "dropped silently);\nlate = job start - scheduled time of executed runs; lag = how late the "
        "scheduler thread submitted runs;\nRSS = the configuration's own process at the end of the "
        "window, and its peak."
    )


if __name__ == "__main__":
    main()
