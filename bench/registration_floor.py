"""Registration against its floor: POST /api/v1/watches through gunicorn on PostgreSQL beside the
smallest durable write (one-row INSERT + commit), in the same run (issue 24, item 1).

    .venv/bin/python bench/registration_floor.py [--cycles 3] [--duration 6] [--warmup 2]
        [--concurrency 16] [--kinds floor,inline,...] [--short]
    .venv/bin/python bench/registration_floor.py --trips [--requests 300] [--profile 8]

**Load mode** (the default). Gunicorn servers, each started with the product's ``gunicorn.conf.py``
(only ``--bind`` overridden: 127.0.0.1, a free port) and the environment of
``bench/registration_api.py`` (``BRIDGE_ENV=production``, INFO logs, one JSON line per request to a
log file, no embedded worker, no ``WEB_CONCURRENCY``/``GUNICORN_THREADS``: 2 workers x 4 threads), on
one fresh, migrated PostgreSQL database, ``mi_bridge_bench_reg``:

- ``api``: ``app:create_app()``, the Procfile's ``web``;
- ``floor``: ``bench.floor_app:app``, one route (``POST /floor``): parse the JSON body, INSERT one row,
  commit, answer 201, through a SQLAlchemy engine built with the bridge's own options
  (``app.db._engine_options``: pool 10 + 10, connect timeout, no pre-ping) and its checkout hook.

Kinds, each a new watch per request (distinct ``asset_id``, one target):

- ``floor``: ``POST /floor`` with the inline registration's body;
- ``inline``: ``POST /api/v1/watches``, one inline webhook target at a public IP literal (the
  address guard runs without DNS; no secret, so one is generated);
- ``endpoint``: the target is ``{"endpoint": "cms"}``, a webhook endpoint created once beforehand;
- ``idempotent``: the inline body with an ``Idempotency-Key`` header, unique per request;

Each cycle runs every kind twice, in ABBA order (the kinds, then the same reversed), so a drift of
the machine during a cycle weighs on every kind alike; each run is ``--warmup`` s unrecorded and
``--duration`` s recorded at ``--concurrency`` keep-alive connections (aiohttp, in this process). Per
run: requests/s, p50/p99, errors (any non-2xx), CPU per request of the server (its gunicorn workers'
user+system time over every request of the run, warm-up included), of PostgreSQL (the backends
connected to the bench database, same accounting) and of the load generator. Reported: each kind's
median requests/s over its runs, and its ratio to the floor per cycle (the kind's two runs over the
floor's two runs of that cycle) with the median of those ratios: the figure compared with the goal
(>= 0.6x the floor).

**Trips mode** (``--trips``). In this process, no gunicorn: the same app and the floor app built on a
fresh database ``mi_bridge_bench_reg_trips`` with the same settings (logs formatted, written to
/dev/null), driven by Flask's test client one request at a time. Every pooled connection's wire
protocol is traced by libpq (``PQtrace``, with timestamps): a round trip is one client message group
answered by a ``ReadyForQuery``, labelled by its first message (``Query`` text, or the SQL of its
``Parse``; named prepared statements mapped back to their SQL). Per kind (after 30 warm-up requests
and as many untimed ones for this process's CPU per request): round trips per request, in order,
each with the time from the client's send to the server's ReadyForQuery (the wait). Then, with
``--profile S``, ``S`` seconds per kind of py-spy (``--idle``, 200 Hz) on this process: where the
wall time and the CPU time of a request go.

Everything listens on and talks to 127.0.0.1; servers are stopped (process group, SIGTERM then
SIGKILL) on any exit; the load run is bounded by a budget computed from its arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.common import PG_ADMIN_URL, fresh_postgres, machine, median
from bench.registration_api import (
    ERROR_SAMPLES,
    REQUEST_TIMEOUT,
    TOKEN,
    VENV_BIN,
    WEBHOOK_URL,
    Server,
    gunicorn,
    migrate,
    server_env,
)

DB_NAME = "mi_bridge_bench_reg"
TRIPS_DB_NAME = "mi_bridge_bench_reg_trips"
ENDPOINT_NAME = "cms"
API_PATH = "/api/v1/watches"
FLOOR = "floor"
KINDS = ("floor", "inline", "endpoint", "idempotent")
GOAL = 0.6

#: (body, extra headers) of one request.
Request = tuple[bytes, dict[str, str]]


def requests_for(kind: str, prefix: str) -> Callable[[], Request]:
    """A new registration per call: a distinct asset id; the kind's target and headers."""
    counter = itertools.count()
    target = (
        {"endpoint": ENDPOINT_NAME}
        if kind == "endpoint"
        else {"type": "webhook", "url": WEBHOOK_URL}
    )

    def make() -> Request:
        n = next(counter)
        body = {
            "workspace": "bench",
            "project_id": "1",
            "asset_id": f"{prefix}-{n}",
            "targets": [target],
            "labels": {"bench": "registration_floor"},
        }
        headers = {"Idempotency-Key": f"{prefix}-key-{n}"} if kind == "idempotent" else {}
        return json.dumps(body).encode(), headers

    return make


# --- load mode -----------------------------------------------------------------------------------


@dataclass
class Run:
    kind: str
    cycle: int
    duration: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    completed: int = 0  # every completed request, warm-up included
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    client_cpu: float = 0.0  # this process (the load generator)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.duration

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def per_request(self, seconds: float) -> float:
        return seconds / self.completed * 1000 if self.completed else float("nan")

    def line(self) -> str:
        return (
            f"cycle {self.cycle}  {self.kind:<18s} {self.rps:8.1f} req/s  "
            f"p50 {self.percentile(0.50):6.1f} ms  p99 {self.percentile(0.99):6.1f} ms  "
            f"errors {self.errors:4d}  server cpu {self.per_request(self.server_cpu):5.2f} ms/req  "
            f"postgres cpu {self.per_request(self.postgres_cpu):5.2f} ms/req  "
            f"client cpu {self.per_request(self.client_cpu):5.2f} ms/req"
        )


async def load(run: Run, url: str, make: Callable[[], Request], base: dict[str, str],
               concurrency: int, warmup: float) -> None:  # fmt: skip
    """``concurrency`` clients, each one request at a time on its own keep-alive connection."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    start = time.perf_counter()
    window = (start + warmup, start + warmup + run.duration)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            while time.perf_counter() < window[1]:
                body, extra = make()
                sent = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers={**base, **extra}) as response:
                        text = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, text = None, repr(exc).encode()
                done = time.perf_counter()
                run.completed += 1
                if not window[0] <= done <= window[1]:
                    continue
                run.latencies.append(done - sent)
                if status is None or not 200 <= status < 300:
                    run.errors += 1
                    if len(run.samples) < ERROR_SAMPLES:
                        run.samples.append(f"{status}: {text[:300].decode(errors='replace')}")

        await asyncio.wait_for(
            asyncio.gather(*(client() for _ in range(concurrency))),
            warmup + run.duration + REQUEST_TIMEOUT + 5,
        )


class PostgresCpu:
    """CPU seconds of the PostgreSQL backends connected to one database (from /proc)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.ticks = os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> dict[int, float]:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
            pids = [
                row[0]
                for row in connection.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    [self.database],
                )
            ]
        seconds = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            seconds[pid] = (int(fields[11]) + int(fields[12])) / self.ticks
        return seconds

    @staticmethod
    def used(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def measure(run: Run, server: Server, path: str, make: Callable[[], Request], args,
            postgres: PostgresCpu) -> Run:  # fmt: skip
    base = {"Content-Type": "application/json"}
    if path == API_PATH:
        base["Authorization"] = f"Bearer {TOKEN}"
    cpu_before, pg_before = server.cpu_seconds(), postgres.snapshot()
    client_before = time.process_time()
    asyncio.run(load(run, server.url + path, make, base, args.concurrency, args.warmup))
    run.client_cpu = time.process_time() - client_before
    run.server_cpu = server.cpu_seconds() - cpu_before
    run.postgres_cpu = postgres.used(pg_before, postgres.snapshot())
    return run


def create_endpoint(api: Server) -> None:
    """The named webhook endpoint the ``endpoint`` kind registers against."""
    request = urllib.request.Request(  # noqa: S310 - our own server on 127.0.0.1
        api.url + "/api/v1/endpoints",
        data=json.dumps({"name": ENDPOINT_NAME, "type": "webhook", "url": WEBHOOK_URL}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        if response.status != 201:
            raise RuntimeError(f"endpoint not created: {response.status}")


def create_floor_table(database_url: str) -> None:
    import psycopg

    from bench.floor_app import FLOOR_TABLE

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(FLOOR_TABLE)


def run_load(args: argparse.Namespace) -> None:
    order = list(args.kinds) + list(reversed(args.kinds))  # ABBA
    budget = args.cycles * len(order) * (args.warmup + args.duration + 8) + 240
    signal.signal(signal.SIGALRM, on_budget)
    signal.alarm(int(budget))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks

    print(f"machine: {machine()}")
    print(f"load average at start: {os.getloadavg()}")
    database_url = fresh_postgres(DB_NAME)
    migrate(database_url)
    create_floor_table(database_url)
    env = server_env(database_url)
    print(f"database: PostgreSQL {DB_NAME} (fresh, migrated); webhook target {WEBHOOK_URL}")
    postgres = PostgresCpu(DB_NAME)
    runs: list[Run] = []
    with ExitStack() as stack:
        floor = stack.enter_context(gunicorn("floor", "bench.floor_app:app", env, "/floor"))
        api = stack.enter_context(gunicorn("api", "app:create_app()", env, "/healthz"))
        create_endpoint(api)
        targets = {
            "floor": (floor, "/floor"), "inline": (api, API_PATH),
            "endpoint": (api, API_PATH), "idempotent": (api, API_PATH),
        }  # fmt: skip
        for server in (floor, api):
            print(
                f"{server.name}: {len(server.worker_pids())} workers, pids {server.worker_pids()}"
            )
        print(
            f"{args.cycles} cycles x {len(order)} runs (ABBA: {', '.join(order)}); concurrency "
            f"{args.concurrency}; {args.warmup:g} s warm-up + {args.duration:g} s recorded per run\n",
            flush=True,
        )
        for cycle in range(1, args.cycles + 1):
            for position, kind in enumerate(order):
                server, path = targets[kind]
                run = Run(kind, cycle, args.duration)
                make = requests_for(kind, f"{kind}{cycle}p{position}")
                runs.append(measure(run, server, path, make, args, postgres))
                print(run.line(), flush=True)
        print(f"\napi server log: {api.log} ({api.log.stat().st_size} bytes)")
    print_rows(database_url)
    report(runs)
    print(f"load average at end: {os.getloadavg()}")


def print_rows(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url) as connection:
        counts = {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in ("floor_rows", "watches", "targets", "assets", "idempotency_keys")
        }
    print("rows written: " + ", ".join(f"{t} {n}" for t, n in counts.items()))


def cycle_ratios(runs: list[Run], kind: str, baseline: str) -> list[float]:
    ratios = []
    for cycle in sorted({r.cycle for r in runs}):
        mine = [r.rps for r in runs if r.cycle == cycle and r.kind == kind]
        base = [r.rps for r in runs if r.cycle == cycle and r.kind == baseline]
        if mine and base and statistics.mean(base):
            ratios.append(statistics.mean(mine) / statistics.mean(base))
    return ratios


def report(runs: list[Run]) -> None:
    kinds = [kind for kind in KINDS if any(r.kind == kind for r in runs)]
    print("\nsummary (medians over every run of a kind)")
    print(
        f"{'kind':<18} {'runs':>4} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'server cpu ms/req':>18} {'postgres cpu ms/req':>20} {'client cpu ms/req':>18}"
    )
    for kind in kinds:
        same = [r for r in runs if r.kind == kind]
        print(
            f"{kind:<18} {len(same):>4} {median([r.rps for r in same]):8.1f} "
            f"{median([r.percentile(0.5) for r in same]):7.1f} "
            f"{median([r.percentile(0.99) for r in same]):7.1f} {sum(r.errors for r in same):6d} "
            f"{median([r.per_request(r.server_cpu) for r in same]):18.2f} "
            f"{median([r.per_request(r.postgres_cpu) for r in same]):20.2f} "
            f"{median([r.per_request(r.client_cpu) for r in same]):18.2f}"
        )
    if FLOOR in kinds:
        print(f"\nratio to {FLOOR} per cycle (a kind's two runs / {FLOOR}'s two runs)")
        for kind in kinds:
            if kind == FLOOR:
                continue
            ratios = cycle_ratios(runs, kind, FLOOR)
            listed = ", ".join(f"{r:.3f}" for r in ratios)
            verdict = "reached" if median(ratios) >= GOAL else "not reached"
            print(
                f"  {kind:<18} / {FLOOR} [{listed}]  median {median(ratios):.3f}"
                f"  (goal >= {GOAL:.1f}x: {verdict})"
            )
    samples = [f"{r.kind}: {s}" for r in runs for s in r.samples]
    if samples:
        print("\nerror samples:")
        for sample in samples[: ERROR_SAMPLES * 3]:
            print("  " + sample.replace("\n", " "))


def on_budget(_signum, _frame) -> None:
    raise TimeoutError("benchmark budget exhausted")


# --- trips mode ----------------------------------------------------------------------------------

#: Where a request's time goes (py-spy ``--idle`` samples): (part, frames that put a sample in it).
#: A frame matches a marker when its ``name (file`` text contains it. Parts nest (indented: "of
#: which"). Wall: the share of all the request's samples x its wall time. CPU: the share of the
#: samples not waiting on PostgreSQL x this process's CPU per request.
PROFILE_PARTS = (
    ("waiting on PostgreSQL (psycopg waits for an answer)", ("Connection.wait (",)),
    ("before_request hooks (request id, door, authentication)", ("Flask.preprocess_request (",)),
    ("  authentication (bearer_refusal: auth_failures read)", ("bearer_refusal (",)),
    ("    pool checkout (the first statement of the request)", ("_ConnectionFairy._checkout (",)),
    ("      of which the pre-ping", ("do_ping (",)),
    ("the view (create_watch)", ("create_watch (",)),
    ("  json_body + validate_watch (pydantic, address guard)", ("json_body (", "validate_watch (")),
    ("  idempotency: request_hash, find_answer, reserve",
     ("request_hash (", "find_answer (", "reserve (app/api/idempotency")),
    ("  register_watch (product)", ("register_watch (",)),
    ("    resolve_endpoint_refs (SELECT the endpoint)", ("resolve_endpoint_refs (",)),
    ("    upsert_due_asset (INSERT .. ON CONFLICT .. RETURNING)", ("upsert_due_asset (",)),
    ("    Watch/Target objects, build_target", ("build_target (", "_declarative_constructor (")),
    ("    session.flush (INSERT watch, INSERT target)", ("Session.flush (",)),
    ("  register_statement.register (one statement)", ("register (app/watches/register_st",)),
    ("  watch_resource (the 201 body: pydantic models)", ("watch_resource (",)),
    ("    the workflow lazy load", ("workflow_view (", "WriteOnlyAttributeImpl", "LazyLoader")),
    ("  _created (json.dumps of the body)", ("_created (",)),
    ("  session.commit", ("Session.commit (",)),
    ("after_request hooks (headers, the request's log line)", ("Flask.process_response (",)),
    ("  the log line (logging)", ("Logger.handle (",)),
    ("teardown (session remove, connection back to the pool)", ("Flask.do_teardown_appcontext (",)),
    ("SQLAlchemy statement building + compile/cache key",
     ("_generate_cache_key (", "_compile_w_cache (")),
    ("floor: the route (engine.begin, INSERT, commit)", ("floor (bench/floor_app",)),
    ("outside the app (test client, WSGI environ)", ("!Flask.wsgi_app (",)),
)  # fmt: skip


@dataclass
class Trip:
    sent: float
    done: float
    label: str


TRACE_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\t[FB]\t")


def parse_trace(path: Path) -> list[Trip]:
    """Round trips of one traced connection: message groups ended by ``ReadyForQuery``."""
    trips: list[Trip] = []
    names: dict[str, str] = {}
    sent: float | None = None
    label = ""
    lines: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        if TRACE_LINE.match(line) or not lines:
            lines.append(line)
        else:  # a message spanning lines (SQL with newlines)
            lines[-1] += " " + line
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 4:
            continue
        stamp, direction, message = parts[0], parts[1], parts[3]
        rest = parts[4].strip() if len(parts) > 4 else ""
        when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if direction == "F":
            if sent is None:
                sent, label = when, message_label(message, rest, names)
            if message == "Parse":
                name, sql = parse_fields(rest)
                if name:
                    names[name] = sql
        elif direction == "B" and message == "ReadyForQuery" and sent is not None:
            trips.append(Trip(sent, when, label))
            sent = None
    return trips


def parse_fields(rest: str) -> tuple[str, str]:
    match = re.match(r'"([^"]*)" "(.*)"[\d ]*$', rest, re.S)
    return (match.group(1), match.group(2)) if match else ("", rest)


def message_label(message: str, rest: str, names: dict[str, str]) -> str:
    if message == "Query":
        return rest.strip('"')
    if message == "Parse":
        name, sql = parse_fields(rest)
        return ("PREPARE " if name else "") + sql
    if message == "Bind":
        match = re.match(r'"[^"]*" "([^"]*)"', rest)
        return names.get(match.group(1), "?") if match else "?"
    return message


def short(sql: str) -> str:
    sql = re.sub(r"\s+", " ", sql)
    for pattern, name in (
        (r"^;?$", "; (pool_pre_ping: an empty query)"),
        (r"^WITH ", "WITH .. (asset, watch, targets[, key] in one statement)"),
        (r"^BEGIN", "BEGIN"),
        (r"^COMMIT", "COMMIT"),
        (r"^ROLLBACK", "ROLLBACK"),
        (r"FROM auth_failures", "SELECT auth_failures (bearer_refusal)"),
        (r"^INSERT INTO assets", "INSERT assets .. ON CONFLICT DO UPDATE .. RETURNING"),
        (r"^INSERT INTO watches", "INSERT watches"),
        (r"^INSERT INTO targets", "INSERT targets"),
        (r"^INSERT INTO floor_rows", "INSERT floor_rows"),
        (r"FROM workflows", "SELECT workflows (watch.workflow, lazy load)"),
        (r"FROM endpoints", "SELECT endpoints (resolve_endpoint_refs)"),
        (r"FROM idempotency_keys", "SELECT idempotency_keys (find_answer)"),
        (r"^INSERT INTO idempotency_keys", "INSERT idempotency_keys (reserve)"),
        (r"^UPDATE idempotency_keys", "UPDATE idempotency_keys (the stored answer)"),
    ):
        if re.search(pattern, sql):
            return ("PREPARE+" if sql.startswith("PREPARE ") else "") + name
    return sql[:80]


class Tracer:
    """Trace every new connection of the given engines with libpq's ``PQtrace``, into files under
    ``directory`` (changed between kinds)."""

    def __init__(self, directory: Path) -> None:
        self.root = self.directory = directory
        self.open: list[tuple[object, object, Path]] = []
        self.counter = itertools.count()
        self.active = False

    def attach(self, engine) -> None:
        from sqlalchemy import event

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record) -> None:
            if not self.active:
                return
            path = self.directory / f"conn-{next(self.counter)}.trace"
            handle = path.open("w")
            dbapi_connection.pgconn.trace(handle.fileno())  # timestamps on (libpq's default)
            self.open.append((dbapi_connection, handle, path))

    def start(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        self.directory, self.active = directory, True

    def collect(self) -> list[Trip]:
        """Stop tracing (flushing libpq's stream) and parse every trace so far."""
        self.active = False
        trips: list[Trip] = []
        for dbapi_connection, handle, path in self.open:
            with contextlib.suppress(Exception):
                dbapi_connection.pgconn.untrace()
            handle.close()
            trips.extend(parse_trace(path))
        self.open.clear()
        return trips


def trips_app(database_url: str):
    """The bridge app (production settings, logs to /dev/null) and the floor app, in process."""
    os.environ.update(server_env(database_url))  # the floor's engine reads it via load_settings
    from app.factory import create_app
    from bench import floor_app

    app = create_app()
    logs_to_devnull()
    return app, floor_app


def run_trips(args: argparse.Namespace) -> None:
    from app.db import db

    print(f"machine: {machine()}")
    print(f"load average at start: {os.getloadavg()}")
    database_url = fresh_postgres(TRIPS_DB_NAME)
    migrate(database_url)
    create_floor_table(database_url)
    app, floor_app = trips_app(database_url)
    clients = {"api": app.test_client(), "floor": floor_app.app.test_client()}
    answer = clients["api"].post(
        "/api/v1/endpoints",
        json={"name": ENDPOINT_NAME, "type": "webhook", "url": WEBHOOK_URL},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    with app.app_context():
        engines = [db.engine, floor_app.engine()]
    print(
        f"database: PostgreSQL {TRIPS_DB_NAME}; engine options {floor_app.engine_options(database_url)}"
    )

    def send(kind: str, make: Callable[[], Request]) -> None:
        body, extra = make()
        if kind == FLOOR:
            response = clients["floor"].post(
                "/floor", data=body, headers={"Content-Type": "application/json"}
            )
        else:
            headers = {
                "Authorization": f"Bearer {TOKEN}",
                "Content-Type": "application/json",
                **extra,
            }
            response = clients["api"].post(API_PATH, data=body, headers=headers)
        if response.status_code != 201 or "Idempotent-Replayed" in response.headers:
            raise RuntimeError(
                f"{kind}: {response.status_code} {response.get_data(as_text=True)[:300]}"
            )

    directory = Path(tempfile.mkdtemp(prefix="mi-bench-trips-"))
    print(
        f"\nround trips per request ({args.requests} requests per kind after 30 warm-up, one at a "
        "time; wait = client send to ReadyForQuery)"
    )
    tracer = Tracer(directory)
    for engine in engines:
        tracer.attach(engine)
    summary = {}
    kinds = (FLOOR, "inline", "endpoint", "idempotent")
    for kind in kinds:
        summary[kind] = trace_kind(kind, send, tracer, engines, args.requests)
    if args.profile:
        profile_kinds(args.profile, kinds, send)
    print("\nper kind: round trips, wall p50, waiting on PostgreSQL p50, this process's CPU (mean)")
    for kind, (count, wall, wait, cpu) in summary.items():
        print(f"  {kind:<19} {count:5.2f} trips  {wall:6.2f} ms  {wait:6.2f} ms  {cpu:6.2f} ms CPU")


def trace_kind(kind: str, send, tracer: Tracer, engines, requests: int):
    make = requests_for(kind, f"t-{kind}")
    sent_as = kind
    for _ in range(30):
        send(sent_as, make)
    cpu_before = time.process_time()
    for _ in range(requests):  # untraced: this process's CPU per request
        send(sent_as, make)
    cpu = (time.process_time() - cpu_before) / requests * 1000
    tracer.start(tracer.root / kind.replace(" ", "-"))
    for engine in engines:
        engine.dispose()  # new connections, traced from their first message
    for _ in range(3):  # fresh connections: the first checkout is not pinged; settle them
        send(sent_as, make)
    spans = []
    for _ in range(requests):
        start = time.time()
        send(sent_as, make)
        spans.append((start, time.time()))
    result = describe_trips(kind, spans, tracer.collect(), cpu)
    for engine in engines:
        engine.dispose()
    return result


def logs_to_devnull() -> None:
    import logging

    sink = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
    for handler in logging.getLogger().handlers:
        if getattr(handler, "mi_bridge", False):
            handler.setStream(sink)  # the JSON line is still formatted, written nowhere


def describe_trips(kind: str, spans: list[tuple[float, float]], trips: list[Trip], cpu: float):
    per_request: list[list[Trip]] = [[] for _ in spans]
    starts = [s for s, _ in spans]

    for trip in trips:
        index = bisect.bisect_right(starts, trip.sent) - 1
        if index >= 0 and trip.sent <= spans[index][1] + 1e-6:
            per_request[index].append(trip)
    counts = Counter(len(r) for r in per_request)
    walls = [(end - start) * 1000 for start, end in spans]
    waits = [sum(t.done - t.sent for t in r) * 1000 for r in per_request]
    by_label: dict[str, list[float]] = defaultdict(list)
    for request_trips in per_request:
        for trip in request_trips:
            by_label[short(trip.label)].append((trip.done - trip.sent) * 1000)
    n = len(spans)
    mean_trips = sum(len(r) for r in per_request) / n
    print(
        f"\n{kind}: {mean_trips:.2f} round trips per request (requests by count: "
        f"{dict(sorted(counts.items()))}); wall p50 {statistics.median(walls):.2f} ms, "
        f"waiting on PostgreSQL p50 {statistics.median(waits):.2f} ms, this process's CPU "
        f"{cpu:.2f} ms per request (untraced)"
    )
    first = per_request[len(per_request) // 2]
    print("  one request, in order: " + " -> ".join(short(t.label) for t in first))
    for label, waits_ms in sorted(by_label.items(), key=lambda item: -len(item[1])):
        print(
            f"  {len(waits_ms) / n:5.2f} x  {label:<58s} wait p50 {statistics.median(waits_ms):6.3f} ms"
            f"  mean {statistics.mean(waits_ms):6.3f} ms"
        )
    return mean_trips, statistics.median(walls), statistics.median(waits), cpu


def profile_kinds(seconds: float, kinds, send) -> None:
    """py-spy (``--idle``, 200 Hz) on this process while it sends each kind's requests."""
    print(
        f"\nprofile: py-spy --idle at 200 Hz on this process, {seconds:g} s per kind; wall = share "
        "of the request's samples x wall time; CPU = share of its samples not waiting on "
        "PostgreSQL x this process's CPU time (both per request, while sampled)"
    )
    directory = Path(tempfile.mkdtemp(prefix="mi-bench-spy-"))
    for kind in kinds:
        make = requests_for(kind, f"p-{kind}")
        for _ in range(20):
            send(kind, make)
        out = directory / f"{kind.replace(' ', '-')}.txt"
        spy = subprocess.Popen(  # noqa: S603 - our own py-spy
            [str(VENV_BIN / "py-spy"), "record", "--pid", str(os.getpid()), "--rate", "200",
             "--idle", "--nonblocking", "--format", "raw", "--duration", str(int(seconds)),
             "-o", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        count, wall, cpu = 0, time.perf_counter(), time.process_time()
        while spy.poll() is None:
            send(kind, make)
            count += 1
        wall = (time.perf_counter() - wall) / max(count, 1) * 1000
        cpu = (time.process_time() - cpu) / max(count, 1) * 1000
        stacks = [
            (frames, n) for frames, n in read_stacks(out)
            if any("FlaskClient.open (" in f for f in frames)
        ]  # fmt: skip
        busy = [(f, n) for f, n in stacks if not any("Connection.wait (" in x for x in f)]
        total, total_busy = sum(n for _, n in stacks) or 1, sum(n for _, n in busy) or 1
        print(
            f"\n{kind}: {count} requests while sampled, {wall:.2f} ms wall and {cpu:.2f} ms CPU "
            f"each; {total} samples"
        )
        for part, markers in PROFILE_PARTS:
            share = sum(n for f, n in stacks if matches(f, markers)) / total
            share_busy = sum(n for f, n in busy if matches(f, markers)) / total_busy
            if share or share_busy:
                print(
                    f"  {part:<62s} wall {share * wall:5.2f} ms {share:4.0%}   "
                    f"CPU {share_busy * cpu:5.2f} ms {share_busy:4.0%}"
                )
        leaves: Counter[str] = Counter()
        for frames, n in busy:
            leaves[frames[-1]] += n
        top = "; ".join(f"{name} {n / total_busy:.0%}" for name, n in leaves.most_common(4))
        print(f"  top leaf frames not waiting: {top}")


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def matches(frames: list[str], markers: tuple[str, ...]) -> bool:
    """Some frame matches a marker; a ``!marker`` matches when no frame does."""
    for marker in markers:
        if marker.startswith("!"):
            if not any(marker[1:] in frame for frame in frames):
                return True
        elif any(marker in frame for frame in frames):
            return True
    return False


# --- main ----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cycles", type=int, default=3, help="ABBA cycles (each kind twice)")
    parser.add_argument("--duration", type=float, default=6.0, help="recorded seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unrecorded seconds per run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--kinds", type=lambda v: tuple(v.split(",")), default=KINDS, help="comma-separated"
    )
    parser.add_argument("--short", action="store_true", help="1 cycle of 3 s runs (development)")
    parser.add_argument("--trips", action="store_true", help="round trips and profile, in process")
    parser.add_argument("--requests", type=int, default=300, help="trips mode: traced requests")
    parser.add_argument(
        "--profile", type=float, default=8.0, help="trips mode: py-spy seconds per kind"
    )
    args = parser.parse_args()
    if args.short:
        args.cycles, args.duration, args.warmup = 1, 3.0, 1.0
    return args


def main() -> None:
    args = parse_args()
    if args.trips:
        run_trips(args)
    else:
        run_load(args)


if __name__ == "__main__":
    main()
