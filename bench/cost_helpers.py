"""Reusable pieces of ``bench/cost_of_02.py`` (issue 24, item 4): a worker process that records the
lateness of every claim, the simulator counting the requests it receives by endpoint and asset, a
bulk-seeded backlog of ended watches for retention to prune, and the per-item savepoints of
``app.worker.apply`` switched off for a "before" measurement.

Two entry points run as child processes of the benchmark::

    .venv/bin/python bench/cost_helpers.py worker --lateness-out FILE    # env: the bridge's settings
    .venv/bin/python bench/cost_helpers.py simulator --port-file FILE    # env: NCP_ACCESS_KEY/SECRET

Nothing here is imported by the product.
"""

from __future__ import annotations

import argparse
import ctypes
import inspect
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import DEFAULT_EVENTS, ROOT, WEBHOOK_SECRET

PYTHON = str(ROOT / ".venv" / "bin" / "python")
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- child processes ----------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: SIGTERM when the benchmark dies, even by SIGKILL (no orphaned workers)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_child(args: list[str], env: dict[str, str], log_dir: Path, name: str) -> subprocess.Popen:
    """``python bench/cost_helpers.py ARGS`` with its output in ``log_dir/name.log``; cwd outside the
    repository (the product reads a .env from its working directory)."""
    log = (log_dir / f"{name}.log").open("ab")
    return subprocess.Popen(  # noqa: S603 - our own processes
        [PYTHON, str(Path(__file__).resolve()), *args], env=env, cwd=log_dir, stdout=log,
        stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
    )  # fmt: skip


def stop_child(process: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM (a worker finishes its tick and writes its final heartbeat), SIGKILL if it hangs."""
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def check_alive(process: subprocess.Popen, log_dir: Path, name: str) -> None:
    if process.poll() is not None:
        log = (log_dir / f"{name}.log").read_text()[-3000:]
        raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all threads) from /proc; NaN once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- the recording worker -------------------------------------------------------------------------


def recording_worker_main(lateness_out: str) -> None:
    """``mi-bridge worker`` (the same ``run_worker`` with every job) whose runtime also keeps the
    lateness of every claim with its wall-clock time; written to ``lateness_out`` on exit as JSON
    ``{"at": [...], "late": [...]}``. The worker's own histogram has buckets only (0.1, 0.25, 0.5,
    1, 2, 5 s ...): percentiles and the maximum need the values."""
    from app.factory import create_app
    from app.worker.runtime import WorkerRuntime
    from app.worker.scheduler import run_worker

    app = create_app()
    runtime = WorkerRuntime.from_app(app)
    at, late = array("d"), array("d")
    record = runtime.counters.claimed_late
    if list(inspect.signature(record).parameters) != ["seconds_list"]:
        raise SystemExit(f"WorkerCounters.claimed_late changed shape: {inspect.signature(record)}")

    def recording(seconds_list: list[float]) -> None:
        now = time.time()
        for seconds in seconds_list:
            at.append(now)
            late.append(max(0.0, seconds))
        record(seconds_list)

    runtime.counters.claimed_late = recording  # type: ignore[method-assign]
    passes = _record_housekeeping_passes()
    try:
        run_worker(runtime)
    finally:
        Path(lateness_out).write_text(
            json.dumps({"at": list(at), "late": list(late), "passes": passes})
        )


def _record_housekeeping_passes() -> list[list[float]]:
    """Wrap the scheduler's housekeeping job: each pass's [start, end, rows removed] (epoch s)."""
    import app.worker.scheduler as scheduler

    job = getattr(scheduler, "housekeep", None)
    if job is None or "housekeep" not in scheduler.add_jobs.__code__.co_names:
        raise SystemExit("app.worker.scheduler no longer schedules housekeep: update cost_helpers")
    passes: list[list[float]] = []

    def timed(runtime: Any, *args: Any, **kwargs: Any) -> Any:
        entry = [time.time(), math.nan, math.nan]  # a pass cut short by the exit keeps NaNs
        passes.append(entry)
        report = job(runtime, *args, **kwargs)
        entry[1:] = [time.time(), float(getattr(report, "total", 0))]
        return report

    scheduler.housekeep = timed
    return passes


# --- the counting simulator -----------------------------------------------------------------------

#: (method, path pattern after /api/v1/workspaces/{ws}/projects/{pid}) -> endpoint kind.
_ENDPOINTS = [
    ("POST", re.compile(r"/assets/import/object-storage$"), "import"),
    ("GET", re.compile(r"/assets/([^/]+)/import-status$"), "import status"),
    ("POST", re.compile(r"/assets/([^/]+)/(index|analyze)$"), "analysis request"),
    ("GET", re.compile(r"/(?:video-)?assets/([^/]+)/(analyze-status|index/status)$"), "analysis status"),
    ("POST", re.compile(r"/assets/([^/]+)/scene-summary$"), "summary request"),
    ("GET", re.compile(r"/assets/([^/]+)/scene-summary/status$"), "summary status"),
    ("GET", re.compile(r"/assets$"), "asset list"),
]  # fmt: skip
_PROJECT = re.compile(r"^/api/v1/workspaces/[^/]+/projects/[^/]+(/.*)$")
#: Kinds that are workflow calls (the workflow job's), not polls.
WORKFLOW_KINDS = ("import", "import status", "analysis request", "summary request",
                  "summary status", "asset list")  # fmt: skip


def classify(method: str, path: str) -> tuple[str, str | None]:
    """The endpoint kind of an upstream request and the asset id in its path (None: none)."""
    match = _PROJECT.match(path)
    if match:
        rest = match.group(1)
        for want, pattern, kind in _ENDPOINTS:
            found = pattern.search(rest)
            if found and method == want:
                return kind, (found.group(1) if found.groups() else None)
    return "other", None


class CountingMiddleware:
    """Counts every upstream request by kind and asset (with its arrival time); answers
    ``GET /_bench/counts``, ``POST /_bench/reset`` and, as the webhook receiver of the bench,
    ``POST /_bench/hook`` (204) itself."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.by_kind: Counter[str] = Counter()
            self.by_asset: dict[str, Counter[str]] = defaultdict(Counter)
            self.times: dict[str, list[float]] = defaultdict(list)
            self.hooks = 0

    def __call__(self, environ: dict, start_response: Any) -> Any:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path.startswith("/_bench/"):
            return self._own(path, method, start_response)
        kind, asset_id = classify(method, path)
        now = time.time()
        with self.lock:
            self.by_kind[kind] += 1
            self.times[kind].append(now)
            if asset_id is not None:
                self.by_asset[asset_id][kind] += 1
        return self.app(environ, start_response)

    def _own(self, path: str, method: str, start_response: Any) -> list[bytes]:
        if path == "/_bench/hook" and method == "POST":
            with self.lock:
                self.hooks += 1
            start_response("204 No Content", [("Content-Length", "0")])
            return [b""]
        if path == "/_bench/reset" and method == "POST":
            self.reset()
            body = b"{}"
        elif path == "/_bench/counts":
            with self.lock:
                body = json.dumps(
                    {"by_kind": self.by_kind, "by_asset": self.by_asset, "times": self.times,
                     "hooks": self.hooks}
                ).encode()  # fmt: skip
        else:
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])  # fmt: skip
        return [body]


def counting_simulator_main(port_file: str) -> None:
    """The simulator (``SimulatorServer``, keys from NCP_ACCESS_KEY/NCP_SECRET_KEY) on a free port,
    behind ``CountingMiddleware``; writes its port to ``port_file``, serves until SIGTERM."""
    from app.simulator.server import SimulatorServer

    server = SimulatorServer(
        access_key=os.environ["NCP_ACCESS_KEY"], secret_key=os.environ["NCP_SECRET_KEY"]
    ).start()
    wsgi = server._server  # the werkzeug server: its ``app`` is what every request goes through
    if wsgi is None or not hasattr(wsgi, "app"):
        raise SystemExit("SimulatorServer changed shape: no werkzeug server with an app")
    wsgi.app = CountingMiddleware(wsgi.app)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    Path(port_file).write_text(str(server.port))
    done.wait()
    server.stop()


# --- a backlog of ended watches -------------------------------------------------------------------

#: First primary keys of the backlog's assets and deliveries (clear of the seeded watching assets).
BACKLOG_ASSET_PK = 10_000_001
BACKLOG_DELIVERY_SEQ = 1
#: Rows per ended watch: the watch, its asset, one target, three status changes, one event, one
#: delivery and its one attempt.
ROWS_PER_ENDED_WATCH = 9
_BODY = json.dumps(
    {"type": "analysis.completed", "timestamp": "2026-10-01T00:00:00Z", "data": {
        "watch": {"id": "wch_x", "labels": {"title": "news at nine", "desk": "sports"}},
        "asset": {"workspace": "old", "project_id": "1", "asset_id": "o0000000",
                  "api": "video-assets"},
        "analysis": {"status": "ANALYZE_COMPLETED", "previous_status": "ANALYZING",
                     "index_id": 77, "message": "analysis completed"}}}
)  # fmt: skip


def seed_ended_watches(app, count: int, finished_at: datetime, chunk: int = 2000) -> int:
    """Insert ``count`` watches that ended at about ``finished_at`` (one second apart, older first),
    each with everything retention deletes with it; returns the rows inserted. Bulk INSERTs through
    SQLAlchemy Core, in chunks of their own transactions."""
    from sqlalchemy import insert, text

    from app.db import db
    from app.models import Asset, Delivery, DeliveryAttempt, Event, StatusChange, Target, Watch

    rows = 0
    with app.app_context():
        for start in range(0, count, chunk):
            t: dict[str, list[dict]] = defaultdict(list)
            for i in range(start, min(count, start + chunk)):
                ended = finished_at - timedelta(seconds=count - i)
                created = ended - timedelta(hours=1)
                asset_pk, seq = BACKLOG_ASSET_PK + i, BACKLOG_DELIVERY_SEQ + i
                asset_id, watch_id = f"o{i:07d}", f"wch_old{i:021d}"
                target_id, event_id = f"tgt_old{i:021d}", f"evt_old{i:021d}"
                t["assets"].append({
                    "pk": asset_pk, "workspace": "old", "project_id": "1", "asset_id": asset_id,
                    "api": "video-assets", "status": "ANALYZE_COMPLETED", "message": "done",
                    "index_id": 77, "next_poll_at": None, "interval": 0.0, "poll_count": 12,
                    "last_polled_at": ended, "consecutive_errors": 0, "created_at": created,
                    "updated_at": ended,
                })  # fmt: skip
                t["watches"].append({
                    "id": watch_id, "state": "completed", "workspace": "old", "project_id": "1",
                    "asset_id": asset_id, "api": "video-assets", "asset_pk": asset_pk,
                    "status": "ANALYZE_COMPLETED", "index_id": 77, "message": "done",
                    "labels": {"title": "news at nine"}, "events": DEFAULT_EVENTS,
                    "created_at": created, "updated_at": ended,
                    "deadline_at": created + timedelta(days=3), "finished_at": ended,
                    "last_polled_at": ended, "poll_count": 12, "detection_lag_seconds": 7.5,
                })  # fmt: skip
                t["targets"].append({
                    "id": target_id, "watch_id": watch_id, "position": 0, "type": "webhook",
                    "url": "https://hooks.example.test/in", "secret": WEBHOOK_SECRET,
                    "disabled": False, "created_at": created,
                })  # fmt: skip
                for n, status in enumerate(("WAIT_ANALYZE", "ANALYZING", "ANALYZE_COMPLETED")):
                    t["status_history"].append({
                        "watch_id": watch_id, "status": status, "api": "video-assets",
                        "index_id": 77 if n == 2 else None, "message": status.lower(),
                        "observed_at": created + timedelta(minutes=20 * n),
                    })  # fmt: skip
                t["events"].append({
                    "id": event_id, "watch_id": watch_id, "type": "analysis.completed",
                    "dedupe_key": "status:ANALYZE_COMPLETED", "body": _BODY, "created_at": ended,
                })  # fmt: skip
                t["deliveries"].append({
                    "seq": seq, "id": f"dlv_old{i:021d}", "event_id": event_id,
                    "target_id": target_id, "watch_id": watch_id, "lane": target_id,
                    "state": "succeeded", "attempt_count": 1, "next_attempt_at": None,
                    "first_attempted_at": ended, "created_at": ended, "updated_at": ended,
                })  # fmt: skip
                t["delivery_attempts"].append({
                    "delivery_seq": seq, "at": ended, "duration_ms": 42, "outcome": "succeeded",
                    "status_code": 200, "response_excerpt": "ok",
                })  # fmt: skip
            for model in (Asset, Watch, Target, StatusChange, Event, Delivery, DeliveryAttempt):
                batch = t[model.__tablename__]
                db.session.execute(insert(model), batch)
                rows += len(batch)
            db.session.commit()
        if db.engine.dialect.name == "postgresql":
            for table, column in (("assets", "pk"), ("deliveries", "seq")):
                db.session.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"  # noqa: S608
                    f" (SELECT max({column}) FROM {table}))"))  # fmt: skip
            db.session.commit()
        with db.engine.connect() as connection:  # statistics as autovacuum would keep them
            connection.execute(text("ANALYZE"))
            connection.commit()
        db.session.remove()
    return rows


# --- isolation's savepoints -----------------------------------------------------------------------


@contextmanager
def counting_savepoints(engine) -> Iterator[Counter[str]]:
    """Counts SAVEPOINTs taken on ``engine`` (``counts["savepoints"]``) and statements executed
    (``counts["statements"]``; an executemany is one) while inside."""
    from sqlalchemy import event

    counts: Counter[str] = Counter()

    def taken(*_args: Any) -> None:
        counts["savepoints"] += 1

    def executed(*_args: Any) -> None:
        counts["statements"] += 1

    event.listen(engine, "savepoint", taken)
    event.listen(engine, "before_cursor_execute", executed)
    try:
        yield counts
    finally:
        event.remove(engine, "savepoint", taken)
        event.remove(engine, "before_cursor_execute", executed)


def _find_savepoint_wrapper() -> tuple[Any, str]:
    """``app.worker.apply`` and the name of the function through which it runs each item's (and the
    quiet group's) writes in a savepoint; raises with a clear message if its shape changed."""
    import app.worker.apply as apply

    name = "_in_savepoint"
    wrapper = getattr(apply, name, None)
    problems = []
    if not callable(wrapper):
        problems.append(f"app.worker.apply.{name} is gone")
    else:
        params = list(inspect.signature(wrapper).parameters)
        if params != ["session", "write"]:
            problems.append(f"{name}{inspect.signature(wrapper)} no longer takes (session, write)")
        if "begin_nested" not in inspect.getsource(wrapper):
            problems.append(f"{name} no longer calls session.begin_nested()")
    users = [f for f in ("apply_batch", "_apply_eventful") if hasattr(apply, f)]
    for user in ("apply_batch", "_apply_eventful"):
        function = getattr(apply, user, None)
        if function is None or name not in function.__code__.co_names:
            problems.append(f"app.worker.apply.{user} no longer calls {name}")
    if problems:
        raise RuntimeError(
            "cannot switch the per-item savepoints off: app.worker.apply changed shape ("
            + "; ".join(problems)
            + f"; found {users}). Update bench/cost_helpers.py "
            "without_item_savepoints to the new code."
        )
    return apply, name


def check_savepoint_patch() -> None:
    """Fail now, not halfway through a run, if the patch cannot be applied."""
    _find_savepoint_wrapper()


@contextmanager
def without_item_savepoints() -> Iterator[None]:
    """The apply as it would be without isolation: each item's writes (and the quiet group's) run
    straight in the group's transaction, no SAVEPOINT, no containment (a failing item would fail
    the whole group). Restores the shipped function on exit."""
    module, name = _find_savepoint_wrapper()
    shipped = getattr(module, name)

    def no_savepoint(session: Any, write: Any) -> str | None:
        write()
        return None

    setattr(module, name, no_savepoint)
    try:
        yield
    finally:
        setattr(module, name, shipped)


# --- figures --------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description="child processes of bench/cost_of_02.py")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="mi-bridge worker, recording each claim's lateness")
    worker.add_argument("--lateness-out", required=True)
    simulator = sub.add_parser("simulator", help="the simulator, counting requests by endpoint")
    simulator.add_argument("--port-file", required=True)
    args = parser.parse_args()
    if args.command == "worker":
        recording_worker_main(args.lateness_out)
    else:
        counting_simulator_main(args.port_file)


if __name__ == "__main__":
    main()
