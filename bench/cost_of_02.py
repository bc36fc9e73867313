"""The cost of what 0.2 adds (issue 24, item 4): retention pruning while polling, isolation's
per-item savepoints, and workflows' upstream calls.

    .venv/bin/python bench/cost_of_02.py [--quick] [--parts retention,savepoints,workflows]
        [--databases sqlite,postgresql]

(Templates, the fourth addition, are measured by ``bench/template_cost.py``: docs/performance.md,
section 8.) Every figure is printed beside the figure it is compared with, measured in the same run.

1. **Retention while polling.** One database seeded (bulk INSERTs) with ``--watches`` watching
   watches (one webhook target each, already seen ANALYZING; the nginx far end of
   ``bench/common.py`` keeps answering ANALYZING, as in ``load_held.py``) and a backlog of
   ``--backlog`` watches that ended 60 days ago, each with its asset, target, three status changes,
   one event, one delivery and its attempt (9 rows a watch). Three phases, one worker process each
   (``bench/cost_helpers.py worker``: ``run_worker`` as ``mi-bridge worker`` runs it, recording the
   lateness of every claim and the start and end of every housekeeping pass), poll interval fixed
   at ``--interval`` (each phase starts with every watch's next poll spread over one interval: the
   steady state), housekeeping every ``--housekeeping`` s: **A** without pruning
   (``BRIDGE_RETENTION_DAYS=365``: the passes run and find nothing old enough), **B** with pruning
   (``BRIDGE_RETENTION_DAYS=30``: the first pass deletes the whole backlog, batch after batch, while
   the worker polls), **A** again (drift). Reported per phase: polls/s (``SUM(poll_count)`` of the
   watching assets), the lateness (claim time - due time, from the recorded values, claims of the
   first 2 s left out: the first tick after the spread) p50 / p99 / max and the share over 1 s,
   the worker's CPU; for B the pass's duration and rows/s; and the
   lateness of the claims made while B's pass ran beside those made in the same seconds after t0
   of each A phase.

2. **Savepoints.** ``poll_once`` of one ``WorkerRuntime`` in a loop until nothing is due, as
   ``poll_throughput.py`` does, ``--assets`` due assets, BRIDGE_POLL_INTERVAL=3600. "after" is the
   apply as shipped (``app.worker.apply``: the quiet polls of a group in one savepoint, every other
   poll in a savepoint of its own); "before" replaces its ``_in_savepoint`` with a plain call
   (``bench/cost_helpers.py without_item_savepoints``: no SAVEPOINT, no containment). Two loads:
   *quiet* (the steady state: nothing changed) and *eventful* (every poll sees a new status:
   WAIT_ANALYZE -> ANALYZING, so every poll takes the ORM path; statuses are reset between runs).
   The variants alternate (AB, BA, ...); the SAVEPOINTs taken are counted (an engine event) to
   prove each variant is what it says.

3. **Workflows.** The simulator (``bench/cost_helpers.py simulator``: ``SimulatorServer`` behind a
   middleware counting every request by endpoint and asset) and one ``mi-bridge worker``.
   ``--workflows`` registrations with ``import`` + ``analyze`` + ``summarize`` at once, and as many
   plain watches of assets with the same analysis schedule, registered together (Flask test
   client, before the worker starts). Time is scaled down 10x: poll interval 1 s growing to 12 s
   (the defaults are 10 s and 120 s), import 3 s, analysis 1 s waiting + 30 s, summary 1 s + 6 s.
   Reported: upstream calls per watch by endpoint, workflow vs plain, and the workflow job's calls
   per second while its backlog lasted.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    bench_app,
    due_count,
    fresh_postgres,
    machine,
    make_all_due,
    median,
    nginx_far_end,
    seed,
    worker_env,
)
from bench.cost_helpers import (
    ROWS_PER_ENDED_WATCH,
    WORKFLOW_KINDS,
    check_alive,
    check_savepoint_patch,
    counting_savepoints,
    cpu_seconds,
    percentile,
    seed_ended_watches,
    start_child,
    stop_child,
    without_item_savepoints,
)

DB_NAME = "mi_bridge_bench_cost"
DATABASES = ("sqlite", "postgresql")
PARTS = ("retention", "savepoints", "workflows")
#: Ended watches to prune (9 rows each): SQLite prunes ~2.5x faster, so it gets more, for a pass
#: of similar length (~5-10 s here) on both.
BACKLOG = {"sqlite": 80_000, "postgresql": 30_000}
#: Seconds after t0 whose claims are left out of the lateness figures (see run_phase).
WARM_UP = 2.0
ACCESS_KEY, SECRET_KEY = "bench-access", "bench-secret-key"  # bench_app's and worker_env's
TOKEN = "bench-token-of-at-least-24-chars"  # noqa: S105 - bench_app's BRIDGE_API_TOKENS


def database_url(kind: str, workdir: Path, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / (name + '.db')}"
    return fresh_postgres(DB_NAME)


def dispose(app) -> None:
    from app.db import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def ms(seconds: float) -> str:
    return f"{1000 * seconds:,.0f} ms"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


# --- 1. retention while polling -------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    window: float = 0.0
    polls: int = 0
    cpu: float = 0.0
    at: list[float] = field(default_factory=list)  # claim times relative to t0
    late: list[float] = field(default_factory=list)
    passes: list[list[float]] = field(default_factory=list)  # [start, end, rows] relative to t0

    @property
    def rate(self) -> float:
        return self.polls / self.window

    def lateness_between(self, start: float, end: float) -> list[float]:
        return [x for t, x in zip(self.at, self.late, strict=True) if start <= t <= end]


def _scalar(engine, sql: str, **params) -> float:
    from sqlalchemy import text

    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar() or 0


def _spread_due(engine, watches: int, interval: float) -> None:
    """Every watching asset due once in [now, now + interval), no leases: the steady state."""
    import random

    from sqlalchemy import bindparam, update

    from app.models import Asset

    now = datetime.now(UTC)
    rng = random.Random(24)  # noqa: S311 - a schedule, not a secret
    rows = [
        {"b_pk": pk, "b_next": now + timedelta(seconds=rng.uniform(0, interval))}
        for pk in range(1, watches + 1)
    ]
    statement = (
        update(Asset.__table__)
        .where(Asset.__table__.c.pk == bindparam("b_pk"))
        .values(
            next_poll_at=bindparam("b_next"),
            lease_owner=None,
            lease_expires_at=None,
            interval=interval,
        )
    )
    with engine.begin() as connection:
        connection.execute(statement, rows)


def run_phase(
    name: str, url: str, engine, far_end: str, retention_days: str, args, log_dir: Path
) -> Phase:
    env = worker_env(
        url, far_end, args.interval,
        BRIDGE_RETENTION_DAYS=retention_days,
        BRIDGE_HOUSEKEEPING_INTERVAL=str(args.housekeeping),
    )  # fmt: skip
    out = log_dir / f"lateness-{name}.json"
    label = f"worker-{name}"
    worker = start_child(["worker", "--lateness-out", str(out)], env, log_dir, label)
    try:
        deadline = time.monotonic() + 60
        while not _scalar(engine, "SELECT count(*) FROM worker_heartbeats WHERE pid = :pid",
                          pid=worker.pid):  # fmt: skip
            check_alive(worker, log_dir, label)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{label} wrote no heartbeat within 60 s")
            time.sleep(0.1)
        polls_sql = "SELECT COALESCE(SUM(poll_count), 0) FROM assets WHERE pk <= :n"
        _spread_due(engine, args.watches, args.interval)
        t0 = time.time()
        polls0 = _scalar(engine, polls_sql, n=args.watches)
        cpu0 = cpu_seconds(worker.pid)
        time.sleep(args.duration)
        check_alive(worker, log_dir, label)
        cpu1 = cpu_seconds(worker.pid)
        polls1 = _scalar(engine, polls_sql, n=args.watches)
        t_end = time.time()
    finally:
        stop_child(worker)
    recorded = json.loads(out.read_text())
    phase = Phase(name, t_end - t0, int(polls1 - polls0), cpu1 - cpu0)
    for at, late in zip(recorded["at"], recorded["late"], strict=True):
        # From the second tick on: the first one claims what fell due since the tick before the
        # spread, up to a tick late, pruning or not.
        if t0 + WARM_UP <= at <= t_end:
            phase.at.append(at - t0)
            phase.late.append(late)
    phase.passes = [[s - t0, e - t0, rows] for s, e, rows in recorded["passes"]]
    if not phase.late:
        raise RuntimeError(f"{label}: no claim recorded in the window")
    return phase


def retention_part(kind: str, far_end: str, args, workdir: Path) -> dict:
    from sqlalchemy import create_engine

    print(f"\n== 1. retention while polling, {kind} ==", flush=True)
    url = database_url(kind, workdir, "retention")
    app = bench_app(url, far_end)
    started = time.perf_counter()
    seed(app, args.watches, due=0)
    backlog = args.backlog or BACKLOG[kind]
    rows = seed_ended_watches(app, backlog, datetime.now(UTC) - timedelta(days=60))
    dispose(app)
    print(
        f"seeded {args.watches:,} watching watches and {backlog:,} ended ones 60 days old "
        f"({rows:,} rows, {ROWS_PER_ENDED_WATCH} per ended watch) in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    engine = create_engine(url)
    log_dir = workdir / f"logs-{kind}"
    log_dir.mkdir(exist_ok=True)
    phases = []
    try:
        for name, days in (("A", "365"), ("B", "30"), ("A2", "365")):
            phase = run_phase(name, url, engine, far_end, days, args, log_dir)
            phases.append(phase)
            print(
                f"  phase {name} (retention {days} d): {phase.rate:,.0f} polls/s over "
                f"{phase.window:.1f} s, {len(phase.late):,} claims, lateness p99 "
                f"{ms(percentile(phase.late, 0.99))}",
                flush=True,
            )
        left = _scalar(engine, "SELECT count(*) FROM watches WHERE state <> 'watching'")
    finally:
        engine.dispose()
    b = phases[1]
    pruning = [p for p in b.passes if not p[2] <= 0]  # NaN: cut short by the phase's end
    if not pruning:
        raise RuntimeError(f"{kind}: no housekeeping pass removed anything in phase B")
    p_start, p_end, p_rows = pruning[0]
    print(f"required polls/s: {args.watches / args.interval:,.0f} ({args.watches:,} watches every "
          f"{args.interval:g} s, fixed); housekeeping every {args.housekeeping:g} s")  # fmt: skip
    print(
        f"B's pruning pass: t0{p_start:+.1f} s to t0{p_end:+.1f} s ({p_end - p_start:.1f} s), "
        f"{p_rows:,.0f} rows = {p_rows / (p_end - p_start):,.0f} rows/s "
        f"({p_rows / ROWS_PER_ENDED_WATCH / (p_end - p_start):,.0f} ended watches/s); "
        f"ended watches left after the run: {left:,.0f}"
    )
    # Whole seconds: a worker claims once a tick, so a shorter span may hold no tick of A's.
    lo, hi = max(WARM_UP, math.floor(p_start)), min(b.window, math.ceil(p_end))
    print(f"{'':34s} {'A (no pruning)':>15s} {'B (pruning)':>15s} {'A2 (no pruning)':>16s} "
          f"{'B / A':>7s} {'B / A2':>7s}")  # fmt: skip

    def row(label: str, values: list[float], fmt) -> None:
        print(
            f"  {label:32s} {fmt(values[0]):>15s} {fmt(values[1]):>15s} {fmt(values[2]):>16s} "
            f"{ratio(values[1], values[0]):>7s} {ratio(values[1], values[2]):>7s}"
        )

    row("polls/s, whole window", [p.rate for p in phases], lambda v: f"{v:,.0f}")
    row("worker CPU (cores)", [p.cpu / p.window for p in phases], lambda v: f"{v:.2f}")
    figures = {}
    for label, pick in (
        ("whole window", lambda p: p.late),
        (f"during B's pass (t0+{lo:.0f}..{hi:.0f} s)", lambda p: p.lateness_between(lo, hi)),
    ):
        values = [pick(p) for p in phases]
        print(f"  lateness, {label}: claims {', '.join(f'{len(v):,}' for v in values)}")
        for q, name in ((0.5, "p50"), (0.99, "p99"), (1.0, "max")):
            row(f"  {name}", [percentile(v, q) for v in values], ms)
        row("  share > 1 s", [sum(x > 1 for x in v) / max(1, len(v)) for v in values],
            lambda v: f"{100 * v:.2f}%")  # fmt: skip
        figures[label.split(" (")[0]] = values
    during = figures["during B's pass"]
    return {
        "db": kind, "rates": [p.rate for p in phases], "pass_s": p_end - p_start,
        "rows": p_rows, "rows_per_s": p_rows / (p_end - p_start),
        "whole": [[percentile(v, q) for q in (0.5, 0.99, 1.0)] for v in figures["whole window"]],
        "during": [[percentile(v, q) for q in (0.5, 0.99, 1.0)] for v in during],
        "covered": (hi - lo) / b.window,
    }  # fmt: skip


# --- 2. savepoints ----------------------------------------------------------------------------------


def _reset_statuses(app, status: str) -> None:
    """Every asset due now, never leased, seen ``status`` (as its watches); history cleared."""
    from sqlalchemy import text

    from app.db import db

    make_all_due(app)
    with app.app_context():
        db.session.execute(text("UPDATE assets SET status = :s"), {"s": status})
        db.session.execute(
            text("UPDATE watches SET status = :s WHERE state = 'watching'"), {"s": status}
        )
        db.session.execute(text("DELETE FROM status_history"))
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect() as connection:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                for table in ("assets", "watches", "status_history"):
                    connection.execute(text(f"VACUUM ANALYZE {table}"))
        db.session.remove()


def _drain(app, runtime, assets: int) -> tuple[float, int, int]:
    """poll_once until nothing is claimed; polls/s, SAVEPOINTs taken and statements executed (the
    SAVEPOINT and RELEASE statements are among them)."""
    from sqlalchemy import text

    from app.db import db
    from app.worker.polling import poll_once

    with app.app_context():
        engine = db.engine
    polled = 0
    with counting_savepoints(engine) as counts:
        started = time.perf_counter()
        while True:
            report = poll_once(runtime)
            polled += report.polled
            if report.claimed == 0:
                break
        elapsed = time.perf_counter() - started
    left = due_count(app)
    if polled != assets or left:
        raise RuntimeError(f"polled {polled} of {assets}, {left} still due")
    with app.app_context():  # the same writes either way: one status change per eventful poll
        changes = db.session.scalar(text("SELECT count(*) FROM status_history"))
        unchanged = db.session.scalar(
            text("SELECT count(*) FROM assets WHERE status <> 'ANALYZING'")
        )
        db.session.remove()
    if unchanged or changes not in (0, assets):
        raise RuntimeError(f"{unchanged} assets not ANALYZING, {changes} status changes")
    return polled / elapsed, counts["savepoints"], counts["statements"]


def savepoints_part(kind: str, far_end: str, args, workdir: Path) -> dict:
    from app.worker.runtime import WorkerRuntime

    print(f"\n== 2. per-item savepoints, {kind} ==", flush=True)
    check_savepoint_patch()
    url = database_url(kind, workdir, "savepoints")
    app = bench_app(url, far_end)
    seed(app, args.assets)
    runtime = WorkerRuntime.from_app(app)
    results: dict = {}
    try:
        for load, before_status in (("quiet", "ANALYZING"), ("eventful", "WAIT_ANALYZE")):
            rates: dict[str, list[float]] = {"after": [], "before": []}
            for run in range(args.runs):
                order = ("after", "before") if run % 2 == 0 else ("before", "after")
                for variant in order:
                    _reset_statuses(app, before_status)
                    if variant == "before":
                        with without_item_savepoints():
                            rate, taken, statements = _drain(app, runtime, args.assets)
                        if taken:
                            raise RuntimeError(f"'before' took {taken} SAVEPOINTs: patch failed")
                    else:
                        rate, taken, statements = _drain(app, runtime, args.assets)
                        if not taken:
                            raise RuntimeError("'after' (as shipped) took no SAVEPOINT at all")
                    rates[variant].append(rate)
                    print(
                        f"  run {run + 1} {load:8s} {variant:6s} "
                        f"({'no savepoints' if variant == 'before' else 'as shipped'}): "
                        f"{rate:7,.0f} polls/s, {taken:,} SAVEPOINTs "
                        f"({taken / args.assets:.3f} per poll), "
                        f"{statements / args.assets:.2f} statements per poll",
                        flush=True,
                    )
            per_run = [a / b for a, b in zip(rates["after"], rates["before"], strict=True)]
            results[load] = (median(rates["before"]), median(rates["after"]), per_run)
            print(
                f"  {load}: before {median(rates['before']):,.0f}, after "
                f"{median(rates['after']):,.0f} polls/s (medians of {args.runs}); after / before "
                f"median {median(per_run):.2f} (per run: {', '.join(f'{r:.2f}' for r in per_run)})"
            )
    finally:
        runtime.close()
        dispose(app)
    return {"db": kind, **results}


# --- 3. workflows -----------------------------------------------------------------------------------

BUCKET = "bench-media"
SCHEDULE = {"import_seconds": 3, "wait_seconds": 1, "analyze_seconds": 30,
            "summary_wait_seconds": 1, "summarize_seconds": 6}  # fmt: skip
BASE_INTERVAL, MAX_INTERVAL = 1, 12


def _analysis(index_id: int, summary: bool) -> dict:
    body = {"wait_seconds": SCHEDULE["wait_seconds"], "analyze_seconds": SCHEDULE["analyze_seconds"],
            "outcome": "ANALYZE_COMPLETED", "index_id": index_id}  # fmt: skip
    if summary:
        body["summary"] = {"wait_seconds": SCHEDULE["summary_wait_seconds"],
                           "summarize_seconds": SCHEDULE["summarize_seconds"],
                           "outcome": "SUMMARIZE_COMPLETED"}  # fmt: skip
    return body


def _start_simulator(log_dir: Path):
    import os

    port_file = log_dir / "sim.port"
    env = {**os.environ, "NCP_ACCESS_KEY": ACCESS_KEY, "NCP_SECRET_KEY": SECRET_KEY}
    process = start_child(["simulator", "--port-file", str(port_file)], env, log_dir, "simulator")
    deadline = time.monotonic() + 30
    while not (port_file.exists() and port_file.read_text()):
        check_alive(process, log_dir, "simulator")
        if time.monotonic() > deadline:
            raise RuntimeError("the simulator did not start within 30 s")
        time.sleep(0.05)
    return process, f"http://127.0.0.1:{port_file.read_text()}"


def workflows_part(kind: str, args, workdir: Path) -> dict:
    import requests
    from sqlalchemy import create_engine

    print(f"\n== 3. workflows, {kind} ==", flush=True)
    log_dir = workdir / f"wf-{kind}"
    log_dir.mkdir(exist_ok=True)
    sim, sim_url = _start_simulator(log_dir)
    worker = None
    try:
        control = requests.Session()
        n = args.workflows
        for i in range(n):
            control.put(f"{sim_url}/_sim/objects/{BUCKET}/v{i:05d}.mp4", json={
                "import_seconds": SCHEDULE["import_seconds"], "analysis": _analysis(i, True),
            }).raise_for_status()  # fmt: skip
        url = database_url(kind, workdir, "workflows")
        app = bench_app(url, sim_url, BRIDGE_ALLOW_PRIVATE_URLS="true")
        client = app.test_client()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        hook = [{"type": "webhook", "url": f"{sim_url}/_bench/hook"}]
        for i in range(n):  # plain assets' schedules start now, like the registrations
            control.put(f"{sim_url}/_sim/assets/ws/1/p{i:05d}",
                        json=_analysis(i, False)).raise_for_status()  # fmt: skip
        started = time.perf_counter()
        for i in range(n):
            for body in (
                {"workspace": "ws", "project_id": "1", "targets": hook,
                 "import": {"bucket_name": BUCKET, "key": f"v{i:05d}.mp4"},
                 "analyze": {"sceneRange": "ALL"}, "summarize": {}},
                {"workspace": "ws", "project_id": "1", "asset_id": f"p{i:05d}", "targets": hook},
            ):  # fmt: skip
                response = client.post("/api/v1/watches", json=body, headers=auth)
                if response.status_code != 201:
                    raise RuntimeError(
                        f"registration refused: {response.status_code} {response.json}"
                    )
        registered = time.time()
        print(f"registered {n:,} workflow and {n:,} plain watches in "
              f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
        dispose(app)
        control.post(f"{sim_url}/_bench/reset").raise_for_status()
        env = worker_env(url, sim_url, BASE_INTERVAL, BRIDGE_POLL_MAX_INTERVAL=str(MAX_INTERVAL),
                         BRIDGE_ALLOW_PRIVATE_URLS="true")  # fmt: skip
        import subprocess

        log = (log_dir / "worker.log").open("ab")
        worker = subprocess.Popen(  # noqa: S603 - the product's own worker command
            [str(ROOT / ".venv" / "bin" / "mi-bridge"), "worker"], env=env, cwd=log_dir,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        t_start = time.time()
        engine = create_engine(url)
        deadline = time.monotonic() + args.workflow_timeout
        watching = n * 2
        while watching and time.monotonic() < deadline:
            time.sleep(1)
            check_alive(worker, log_dir, "worker")
            watching = int(_scalar(engine, "SELECT count(*) FROM watches WHERE state = 'watching'"))
        t_all_ended = time.time()
        with engine.connect() as connection:
            from sqlalchemy import text

            states = dict(connection.execute(text(
                "SELECT w.state || CASE WHEN f.watch_id IS NULL THEN ' plain' ELSE ' workflow' END,"
                " count(*) FROM watches w LEFT JOIN workflows f ON f.watch_id = w.id"
                " WHERE w.state <> 'system' GROUP BY 1")).all())  # fmt: skip
            workflow_assets = [r[0] for r in connection.execute(text(
                "SELECT w.asset_id FROM watches w JOIN workflows f ON f.watch_id = w.id")).all()]  # fmt: skip
            pending = _scalar(engine, "SELECT count(*) FROM deliveries WHERE state = 'pending'")
        engine.dispose()
        time.sleep(2)  # the last deliveries
        counts = control.get(f"{sim_url}/_bench/counts").json()
    finally:
        if worker is not None:
            stop_child(worker)
        stop_child(sim)
    if watching:
        raise RuntimeError(f"{watching} watches still watching after {args.workflow_timeout} s")
    print(f"all ended {t_all_ended - t_start:.0f} s after the worker started: {states}; "
          f"webhooks received {counts['hooks']:,}, deliveries pending {pending:.0f}")  # fmt: skip
    by_asset = counts["by_asset"]
    kinds = ["import", "import status", "analysis request", "analysis status", "summary request",
             "summary status", "asset list", "other"]  # fmt: skip
    per_wf = {k: [by_asset.get(str(a), {}).get(k, 0) for a in workflow_assets] for k in kinds}
    per_wf["import"] = [counts["by_kind"].get("import", 0) / n] * n  # no asset id in its path
    per_plain = {k: [by_asset.get(f"p{i:05d}", {}).get(k, 0) for i in range(n)] for k in kinds}
    print(f"upstream calls per watch (mean; min-max), {n:,} of each:")
    print(f"  {'endpoint':18s} {'workflow watch':>22s} {'plain watch':>22s}")
    totals_wf = [0.0] * n
    totals_plain = [0.0] * n
    for k in kinds:
        if not any(per_wf[k]) and not any(per_plain[k]):
            continue
        totals_wf = [t + v for t, v in zip(totals_wf, per_wf[k], strict=True)]
        totals_plain = [t + v for t, v in zip(totals_plain, per_plain[k], strict=True)]

        def cell(values: list[float]) -> str:
            return f"{statistics.mean(values):.2f} ({min(values):g}-{max(values):g})"

        print(f"  {k:18s} {cell(per_wf[k]):>22s} {cell(per_plain[k]):>22s}")
    mean_wf, mean_plain = statistics.mean(totals_wf), statistics.mean(totals_plain)
    print(f"  {'all':18s} {mean_wf:>22.2f} {mean_plain:>22.2f}   workflow / plain "
          f"{ratio(mean_wf, mean_plain)}; of the workflow's, workflow-job calls "
          f"{mean_wf - statistics.mean(per_wf['analysis status']):.2f}")  # fmt: skip
    times = counts["times"]
    wf_times = sorted(t for k in WORKFLOW_KINDS for t in times.get(k, []))
    imports = sorted(times.get("import", []))
    burst = imports[-1] - imports[0] if len(imports) > 1 else float("nan")
    # The job's rate while it had a backlog: imports burst (every workflow due at once).
    print(
        f"workflow job: {len(imports):,} imports from t+{imports[0] - t_start:.1f} s to "
        f"t+{imports[-1] - t_start:.1f} s after the worker started = {(len(imports) - 1) / burst:,.1f} "
        f"calls/s while all {n:,} were due (the last import {imports[-1] - registered:.0f} s after "
        f"its registration); all {len(wf_times):,} workflow calls over "
        f"{wf_times[-1] - wf_times[0]:.0f} s; per second of the busiest 10 s: "
        f"{_busiest(wf_times, 10):.1f}"
    )
    from app.worker.scheduler import TICK_SECONDS
    from app.worker.workflows import CLAIM_BATCH

    print(f"  (the job claims up to CLAIM_BATCH = {CLAIM_BATCH} workflows per tick, one tick every "
          f"{TICK_SECONDS:g} s, and makes their calls one after another)")  # fmt: skip
    polls = sorted(times.get("analysis status", []))
    print(f"  beside it, the poll job: {len(polls):,} analysis-status polls, busiest 10 s "
          f"{_busiest(polls, 10):.1f}/s (not saturated: the watches' intervals set the pace)")  # fmt: skip
    return {"db": kind, "wf": mean_wf, "plain": mean_plain, "rate": (len(imports) - 1) / burst,
            "per_wf": {k: statistics.mean(v) for k, v in per_wf.items()},
            "per_plain": {k: statistics.mean(v) for k, v in per_plain.items()},
            "last_import_s": imports[-1] - registered}  # fmt: skip


def _busiest(times: list[float], width: float) -> float:
    """Most calls in any ``width``-second window, per second."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - width:
            j += 1
        best = max(best, i - j + 1)
    return best / width


# --- main ---------------------------------------------------------------------------------------------


def summary(retention: list[dict], savepoints: list[dict], workflows: list[dict]) -> None:
    print("\n== summary (ratios: same run) ==")
    for r in retention:
        during = r["during"]
        print(
            f"retention, {r['db']}: polls/s A {r['rates'][0]:,.0f} / B {r['rates'][1]:,.0f} / A2 "
            f"{r['rates'][2]:,.0f} (B/A {ratio(r['rates'][1], r['rates'][0])}); lateness during "
            f"the pass p50/p99/max A {'/'.join(ms(v) for v in during[0])}, B "
            f"{'/'.join(ms(v) for v in during[1])}, A2 {'/'.join(ms(v) for v in during[2])}; "
            f"pass {r['pass_s']:.1f} s, {r['rows_per_s']:,.0f} rows/s"
        )
    for s in savepoints:
        for load in ("quiet", "eventful"):
            before, after, per_run = s[load]
            print(f"savepoints, {s['db']}, {load}: before {before:,.0f}, after {after:,.0f} "
                  f"polls/s, after/before {median(per_run):.2f}")  # fmt: skip
    for w in workflows:
        print(f"workflows, {w['db']}: {w['wf']:.2f} upstream calls per workflow watch vs "
              f"{w['plain']:.2f} per plain watch ({ratio(w['wf'], w['plain'])}); workflow job "
              f"{w['rate']:.1f} calls/s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short development run")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--databases", default=",".join(DATABASES))
    parser.add_argument("--watches", type=int, help="1: watching watches (10,000)")
    parser.add_argument(
        "--backlog",
        type=int,
        help="1: ended watches to prune (default: 80,000 on SQLite, 30,000 on PostgreSQL)",
    )
    parser.add_argument("--interval", type=float, default=10, help="1: fixed poll interval (s)")
    parser.add_argument("--duration", type=float, help="1: seconds per phase (30)")
    parser.add_argument("--housekeeping", type=float, default=8, help="1: housekeeping every (s)")
    parser.add_argument("--assets", type=int, help="2: due assets per run (10,000)")
    parser.add_argument("--runs", type=int, help="2: runs of each variant (3)")
    parser.add_argument("--workflows", type=int, help="3: workflow (and plain) watches (400)")
    parser.add_argument("--workflow-timeout", type=float, default=420)
    args = parser.parse_args()
    quick = args.quick
    if args.quick and args.backlog is None:
        args.backlog = 5000
    defaults = {"watches": (2000, 10_000), "duration": (12, 30),
                "assets": (2000, 10_000), "runs": (2, 3), "workflows": (100, 400)}  # fmt: skip
    for name, (small, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    parts = [p for p in PARTS if p in args.parts.split(",")]
    databases = [d for d in DATABASES if d in args.databases.split(",")]
    print("command: " + shlex.join([".venv/bin/python", "bench/cost_of_02.py", *sys.argv[1:]]))
    print(f"machine: {machine()}")
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"started {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}, load average {' '.join(load)}")
    print("templates per delivery: bench/template_cost.py (docs/performance.md, section 8)")
    retention, savepoints, workflows = [], [], []
    with nginx_far_end() as far_end, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for kind in databases:
            if "retention" in parts:
                retention.append(retention_part(kind, far_end, args, workdir))
            if "savepoints" in parts:
                savepoints.append(savepoints_part(kind, far_end, args, workdir))
            if "workflows" in parts:
                workflows.append(workflows_part(kind, args, workdir))
    summary(retention, savepoints, workflows)


if __name__ == "__main__":
    main()
