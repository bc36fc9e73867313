"""Load held: 10,000 active watches and 50 registrations per second for a minute, on PostgreSQL.

    .venv/bin/python bench/load_held.py [--watches 10000] [--rate 50] [--duration 60] [--interval 10]
        [--workers 2]

``--rate 0 --workers 1`` is the "watches held" measurement of one worker: no registrations, only the
seeded watches polled at the fixed interval for ``--duration`` seconds.

Method. A fresh PostgreSQL database (``mi_bridge_bench_load``) is seeded with ``--watches`` assets (one
watching watch and one webhook target each, already seen ANALYZING; the nginx far end keeps answering
ANALYZING, so no watch ever ends and no notification is sent). The poll interval is fixed:
BRIDGE_POLL_INTERVAL = BRIDGE_POLL_MAX_INTERVAL = ``--interval`` (default 10 s, the product's default
starting interval; each next poll is jittered up to 10 % shorter), so the seeded watches alone require
watches / interval polls per second: 1,000/s at the defaults, which may exceed what two workers do on
a small machine (that is a finding, not a failure; ``--interval 30`` asks for 333/s). MI_MAX_RPS is
lifted to 1,000,000: the default 100 requests/s per process is a deliberate upstream ceiling.

Processes, all on 127.0.0.1: one web process (the Procfile's gunicorn with the product's
gunicorn.conf.py: WEB_CONCURRENCY gunicorn workers, default 2, x GUNICORN_THREADS, default 4; the
embedded worker off) and ``--workers`` (default two) ``mi-bridge worker`` processes;
BRIDGE_ENV=production, LOG_LEVEL=WARNING (so the per-request INFO log line is not written).
BRIDGE_ALLOW_PRIVATE_URLS=true lets the registered webhook target be ``http://127.0.0.1:9/hook``
without any DNS lookup (it never receives anything).

Once both workers have written a heartbeat (they are idle: nothing is due yet), one UPDATE spreads the
seeded assets' next poll uniformly over [now, now + interval): the steady state from the first second.
At that moment (t0) an open-loop generator (aiohttp, one event loop) sends ``--rate`` POST
/api/v1/watches per second for ``--duration`` s, each for a new asset with one webhook target, on a
fixed schedule whatever the answers (a slow server does not slow the generator down). After the last
answer and ``--settle`` s (so the last registrations can get their first poll), the workers get SIGTERM
(t_end) and write a final heartbeat.

Reported:

- registrations sent / 201 / errors (error rate; any other status or a client-side failure, e.g. the
  ``--request-timeout``); latency from the *scheduled* send time to the full answer (so a stalled
  generator cannot hide latency) p50 / p99 / max, and the generator's worst slip;
- polls: the increase of SUM(assets.poll_count) over [t0, t_end] per second, beside the polls required
  at zero lateness (seeded: watches x window / interval; each registration: one first poll and then one
  per interval until t_end); the workers' own count (heartbeat ``polls`` delta) must match;
- poll lateness (claim time - due time) from the workers' heartbeat histograms, the delta between the
  idle heartbeat before t0 and the final one: the share of claims within 0.1 / 0.25 / 0.5 / 1 / 2 / 5 s.
  Workers tick every second and claim what is due within the next tick, so an idle worker claims
  up to a tick early (counted as 0), never late;
- poll earliness beside it (the workers' ``poll_earliness`` histograms, the same delta): how long
  before its due time each claim's first request was sent. A claim may be early, its request may not:
  the share above 1 ms must be 0;
- a timeline every 10 s: polls/s achieved and required, and the backlog (assets due more than 1 s ago
  and not leased);
- first polls of the registered watches: how many have poll_count >= 1, and the delay from the watch's
  created_at to its first recorded status (status_history.observed_at, written when the first poll is
  applied);
- CPU cores used over the window by web, workers, postgres (this database's backends and the shared
  cluster processes) and nginx, and the machine's busy cores (other load on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    bench_app,
    free_port,
    fresh_postgres,
    machine,
    nginx_far_end,
    seed,
    worker_env,
)
from bench.scale_out import (
    check_alive,
    connect,
    cpu_groups,
    cpu_snapshot,
    cpu_used,
    exit_cleanly_on_sigterm,
    heartbeats,
    polls_so_far,
    scalar,
    start,
    start_worker,
    stop,
    wait_for_heartbeats,
)

DB_NAME = "mi_bridge_bench_load"
TOKEN = "bench-token-of-at-least-24-chars"  # noqa: S105 - the benchmark's own BRIDGE_API_TOKENS
TARGET_URL = "http://127.0.0.1:9/hook"  # an address literal: registration needs no DNS
REPORTED_BOUNDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
#: Earliness bounds reported: within 1 ms is on time (timer resolution), anything beyond is early.
EARLY_BOUNDS = (0.001, 0.01, 0.1, 0.5)
TIMELINE_STEP = 10  # seconds between timeline lines


# --- processes -------------------------------------------------------------------------------------


def start_web(env: dict[str, str], log_dir: Path, port: int):
    """The Procfile's web command with the product's gunicorn.conf.py, bound to loopback only."""
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"), "-c", str(ROOT / "gunicorn.conf.py"),
        "--no-control-socket", "-b", f"127.0.0.1:{port}", "app:create_app()",
    ]  # fmt: skip
    return start(command, env, log_dir, "web")


def wait_for_web(base: str, processes: list, log_dir: Path, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check_alive(processes, log_dir)
        try:
            if requests.get(f"{base}/healthz", timeout=2).ok:
                return
        except requests.RequestException:
            pass  # not listening yet, or no gunicorn worker booted yet
        time.sleep(0.2)
    raise RuntimeError(f"web did not answer /healthz within {timeout} s")


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn's workers), from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            after_comm = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(after_comm[1]) == pid:
            found.append(int(stat.parent.name))
    return found


# --- the generator ----------------------------------------------------------------------------------


@dataclass
class Sent:
    scheduled: float  # monotonic
    sent: float
    done: float = math.nan
    status: int | None = None
    error: str | None = None
    watch_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 201 and self.watch_id is not None


@dataclass
class Generator:
    base: str
    rate: float
    duration: float
    timeout: float
    results: list[Sent] = field(default_factory=list)
    registered: int = 0  # read by the sampler thread (an int: no lock needed)

    def body(self, i: int) -> dict:
        return {
            "workspace": "load", "project_id": "1", "asset_id": f"n{i:07d}",
            "targets": [{"type": "webhook", "url": TARGET_URL}],
        }  # fmt: skip

    async def one(self, session, i: int, scheduled: float) -> None:
        record = Sent(scheduled, time.monotonic())
        self.results.append(record)
        try:
            async with session.post(f"{self.base}/api/v1/watches", json=self.body(i)) as response:
                payload = await response.json(content_type=None)
                record.status = response.status
                if response.status == 201:
                    record.watch_id = payload.get("id")
                    self.registered += 1
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            record.error = type(exc).__name__
        record.done = time.monotonic()

    async def run(self, t0: float) -> None:
        """Send request i at t0 + i / rate, without waiting for earlier answers (open loop)."""
        headers = {"Authorization": f"Bearer {TOKEN}"}
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        # No connection cap below the offered load: a slow server must show up as latency here.
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            headers=headers, timeout=timeout, connector=connector
        ) as session:
            tasks = []
            for i in range(round(self.rate * self.duration)):
                scheduled = t0 + i / self.rate
                await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
                tasks.append(asyncio.create_task(self.one(session, i, scheduled)))
            await asyncio.gather(*tasks)


# --- sampling during the window ---------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    polls: int
    backlog: int
    registered: int


BACKLOG_SQL = (
    "SELECT count(*) FROM assets WHERE next_poll_at < now() - interval '1 second'"
    " AND (lease_expires_at IS NULL OR lease_expires_at < now())"
)


class Sampler(threading.Thread):
    """Once a second: polls so far, backlog, registrations so far (own connection, own thread)."""

    def __init__(self, database_url: str, generator: Generator, base_polls: int) -> None:
        super().__init__(daemon=True)
        self.database_url, self.generator, self.base_polls = database_url, generator, base_polls
        self.samples: list[Sample] = []
        self.halt = threading.Event()
        self.backend_pid = 0  # its postgres backend: not the product's CPU
        self.ready = threading.Event()

    def run(self) -> None:
        with connect(self.database_url) as connection:
            self.backend_pid = int(scalar(connection, "SELECT pg_backend_pid()"))
            self.ready.set()
            while not self.halt.wait(1.0):
                polls = polls_so_far(connection) - self.base_polls
                backlog = int(scalar(connection, BACKLOG_SQL))
                self.samples.append(
                    Sample(time.monotonic(), polls, backlog, self.generator.registered)
                )


# --- figures ----------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def histogram_delta(end: dict, base: dict | None) -> tuple[dict[float, int], int]:
    """Cumulative bucket counts and total count of ``end`` minus ``base`` (one worker's histogram)."""
    base_buckets = dict((base or {}).get("buckets", []))
    buckets = {bound: n - base_buckets.get(bound, 0) for bound, n in end["buckets"]}
    return buckets, end["count"] - (base or {}).get("count", 0)


def lateness(
    base_beats: dict[int, dict], end_beats: dict[int, dict], name: str = "poll_lateness"
) -> tuple[dict, int]:
    """The workers' histogram ``name`` (poll lateness by default) over the window, summed across
    workers."""
    total: dict[float, int] = {}
    count = 0
    for pid, counters in end_beats.items():
        if name not in counters:
            raise RuntimeError(f"heartbeat counters have no {name} histogram")
        base = base_beats.get(pid, {}).get(name)
        buckets, n = histogram_delta(counters[name], base)
        for bound, cumulative in buckets.items():
            total[bound] = total.get(bound, 0) + cumulative
        count += n
    return total, count


def polls_by_outcome(base_beats: dict[int, dict], end_beats: dict[int, dict]) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    for pid, counters in end_beats.items():
        before = base_beats.get(pid, {}).get("polls", {})
        for outcome, n in counters["polls"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n - before.get(outcome, 0)
    return outcomes


def required_polls(watches: int, interval: float, window: float, joined: list[float]) -> float:
    """Polls needed over the window at zero lateness: the seeded watches' phases are uniform, so
    window / interval each; a registration at offset t is polled at once, then every interval."""
    registered = sum(math.floor((window - t) / interval) + 1 for t in joined if t <= window)
    return watches * window / interval + registered


def first_polls(connection, ids: list[str]) -> tuple[int, list[float]]:
    """Registered watches polled at least once, and each one's created_at -> first status delay."""
    rows = connection.execute(
        "SELECT w.poll_count, EXTRACT(EPOCH FROM MIN(h.observed_at) - w.created_at)"
        " FROM watches w LEFT JOIN status_history h ON h.watch_id = w.id"
        " WHERE w.id = ANY(%s) GROUP BY w.id",
        (ids,),
    ).fetchall()
    polled = sum(1 for poll_count, _ in rows if poll_count >= 1)
    return polled, [float(delay) for _, delay in rows if delay is not None]


# --- report -----------------------------------------------------------------------------------------


def report_registrations(results: list[Sent]) -> None:
    ok = [r for r in results if r.ok]
    errors = len(results) - len(ok)
    kinds: dict[str, int] = {}
    for r in results:
        if not r.ok:
            kind = r.error or f"HTTP {r.status}"
            kinds[kind] = kinds.get(kind, 0) + 1
    latencies = [r.done - r.scheduled for r in ok]
    slip = max((r.sent - r.scheduled for r in results), default=math.nan)
    print(
        f"registrations: sent {len(results)}, ok (201) {len(ok)}, errors {errors} "
        f"({100 * errors / max(1, len(results)):.2f}%){' ' + str(kinds) if kinds else ''}"
    )
    p50, p99 = (1000 * percentile(latencies, q) for q in (0.5, 0.99))
    worst = 1000 * max(latencies, default=math.nan)
    print(
        f"  latency of the 201s (scheduled send -> answer): p50 {p50:.0f} ms, p99 {p99:.0f} ms,"
        f" max {worst:.0f} ms; generator's worst slip {1000 * slip:.1f} ms"
    )


def report_timeline(samples: list[Sample], t0: float, watches: int, interval: float) -> None:
    print("  timeline:   t   polls/s  required/s  backlog (due > 1 s ago, not leased)")
    previous = Sample(t0, 0, 0, 0)
    for sample in samples:
        if sample.at - previous.at >= TIMELINE_STEP - 0.5 or sample is samples[-1]:
            rate = (sample.polls - previous.polls) / (sample.at - previous.at)
            required = (watches + sample.registered) / interval
            print(
                f"            {sample.at - t0:4.0f} {rate:9.0f} {required:11.0f}  {sample.backlog:8d}"
            )
            previous = sample


def report_lateness(buckets: dict[float, int], count: int) -> None:
    shares = ", ".join(
        f"<= {b:g} s {100 * buckets[b] / max(1, count):.1f}%" for b in REPORTED_BOUNDS
    )
    over = count - buckets[REPORTED_BOUNDS[-1]]
    print(f"poll lateness ({count} claims): {shares}; > 5 s {100 * over / max(1, count):.1f}%")


def report_earliness(buckets: dict[float, int], count: int) -> None:
    on_time = buckets[EARLY_BOUNDS[0]]
    shares = ", ".join(
        f"> {b:g} s {100 * (count - buckets[b]) / max(1, count):.2f}%" for b in EARLY_BOUNDS
    )
    print(
        f"poll earliness ({count} first requests): {100 * on_time / max(1, count):.2f}% sent at or"
        f" after the due time (<= 1 ms early); early {shares}"
    )


def report_first_polls(registered: int, polled: int, delays: list[float]) -> None:
    print(
        f"first polls: {polled} of {registered} registered watches have poll_count >= 1; delay "
        f"created_at -> first status ({len(delays)}): p50 {percentile(delays, 0.5):.2f} s, "
        f"p90 {percentile(delays, 0.9):.2f} s, p99 {percentile(delays, 0.99):.2f} s, "
        f"max {max(delays, default=math.nan):.2f} s"
    )


def report_cpu(used: dict[str, float], window: float) -> None:
    cores = ", ".join(f"{name} {seconds / window:.2f}" for name, seconds in used.items())
    print(f"CPU cores over the window: {cores}")


class OutOfTime(BaseException):
    """The run's time budget is spent (a BaseException: no ``except Exception`` may swallow it)."""


# --- main -------------------------------------------------------------------------------------------


def spread_due(connection, interval: float) -> None:
    """Every seeded asset due once in [now, now + interval): the steady state from the start."""
    connection.execute(
        "UPDATE assets SET next_poll_at = now() + random() * %s * interval '1 second',"
        ' "interval" = %s, lease_owner = NULL, lease_expires_at = NULL',
        (interval, interval),
    )


def run(args: argparse.Namespace, far_end: str, log_dir: Path) -> None:
    url = fresh_postgres(DB_NAME)
    started = time.perf_counter()
    app = bench_app(url, far_end)
    seed(app, args.watches, due=0)  # all due in an hour until spread_due
    from app.db import db

    with app.app_context():
        db.engine.dispose()
    print(
        f"workers: {args.workers}, BRIDGE_POLL_TRANSPORT={args.poll_transport},"
        f" BRIDGE_POLL_CONCURRENCY={args.poll_concurrency}"
    )
    print(f"seeded {args.watches} watches in {time.perf_counter() - started:.1f} s", flush=True)
    env = worker_env(
        url, far_end, args.interval, BRIDGE_ENV="production", BRIDGE_ALLOW_PRIVATE_URLS="true"
    )
    if args.max_interval:  # the product's adaptive back-off instead of a fixed interval
        env["BRIDGE_POLL_MAX_INTERVAL"] = str(args.max_interval)
    env["BRIDGE_POLL_TRANSPORT"] = args.poll_transport
    env["BRIDGE_POLL_CONCURRENCY"] = str(args.poll_concurrency)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    launched = time.time()
    web = start_web({**env, "PORT": str(port)}, log_dir, port)
    workers = [start_worker(env, log_dir, f"worker{i}") for i in range(args.workers)]
    try:
        with connect(url) as connection:
            wait_for_web(base, [web, *workers], log_dir)
            wait_for_heartbeats(connection, workers, log_dir, launched)
            pids = [w.pid for w in workers]
            base_beats = heartbeats(connection, pids)  # idle so far: nothing was due
            groups = cpu_groups(workers, connection)
            groups["web"] = [web.pid, *children(web.pid)]
            # A worker's poll process (BRIDGE_POLL_TRANSPORT=process) is part of the worker.
            groups["workers"] += [child for w in workers for child in children(w.pid)]
            base_polls = polls_so_far(connection)
            generator = Generator(base, args.rate, args.duration, args.request_timeout)
            sampler = Sampler(url, generator, base_polls)
            before = cpu_snapshot(groups)
            spread_due(connection, args.interval)
            t0 = time.monotonic()
            sampler.start()
            sampler.ready.wait(5)
            asyncio.run(generator.run(t0))
            time.sleep(max(0.0, t0 + args.duration - time.monotonic()))  # --rate 0: hold only
            time.sleep(args.settle)
            check_alive([web, *workers], log_dir)
            # Backends and gunicorn workers born during the window count too (from zero).
            postgres = cpu_groups(workers, connection)["postgres"]
            groups["postgres"] = [pid for pid in postgres if pid != sampler.backend_pid]
            groups["web"] = [web.pid, *children(web.pid)]
            # A worker's poll process (BRIDGE_POLL_TRANSPORT=process) is part of the worker.
            groups["workers"] += [child for w in workers for child in children(w.pid)]
            after = cpu_snapshot(groups)
            polls_at_end = polls_so_far(connection) - base_polls
            t_end = time.monotonic()
            sampler.halt.set()
            stop(workers)  # their final heartbeat holds everything they did
            end_beats = heartbeats(connection, pids)
            polls_after_stop = polls_so_far(connection) - base_polls
            ids = [r.watch_id for r in generator.results if r.ok]
            polled, delays = first_polls(connection, ids)
    finally:
        stop([web, *workers])
    sampler.join(5)
    window = t_end - t0
    joined = [r.done - t0 for r in generator.results if r.ok]
    required = required_polls(args.watches, args.interval, window, joined)
    buckets, claims = lateness(base_beats, end_beats)
    outcomes = polls_by_outcome(base_beats, end_beats)
    print(f"\nwindow: {window:.1f} s (t0 -> SIGTERM to the workers)")
    report_registrations(generator.results)
    print(
        f"polls: {polls_at_end} in the window = {polls_at_end / window:.0f}/s; required at zero "
        f"lateness {required:.0f} = {required / window:.0f}/s (achieved {100 * polls_at_end / required:.0f}%)"
    )
    print(
        "  (each next poll is due an interval (up to 10% shorter) after the previous one was"
        " applied, not after it"
        " was due: lateness lengthens the period, so 100% needs zero lateness; the backlog says"
        " whether the workers keep up)"
    )
    print(
        f"  check: after the workers stopped, the database counts {polls_after_stop} polls, their "
        f"heartbeats {sum(outcomes.values())} {outcomes}"
    )
    report_timeline(sampler.samples, t0, args.watches, args.interval)
    report_lateness(buckets, claims)
    report_earliness(*lateness(base_beats, end_beats, "poll_earliness"))
    report_first_polls(len(ids), polled, delays)
    report_cpu(cpu_used(before, after), after.at - before.at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=10_000, help="seeded active watches")
    parser.add_argument("--rate", type=float, default=50, help="registrations per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of registrations")
    parser.add_argument("--interval", type=float, default=10, help="fixed poll interval (s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--max-interval", type=float, default=0,
        help="back off up to this interval (s) like the product does; 0: fixed --interval "
        "(then 'required' polls assume the fixed interval)",
    )  # fmt: skip
    parser.add_argument(
        "--poll-transport", choices=("thread", "process"), default="thread",
        help="the workers' BRIDGE_POLL_TRANSPORT (process: each worker's requests in a child)",
    )  # fmt: skip
    parser.add_argument("--poll-concurrency", type=int, default=16,
                        help="the workers' BRIDGE_POLL_CONCURRENCY")  # fmt: skip
    parser.add_argument("--settle", type=float, default=3, help="s after the last answer")
    parser.add_argument("--request-timeout", type=float, default=10)
    args = parser.parse_args()
    # Bounded whatever happens: SIGALRM raises here and the finally blocks stop every process.
    budget = int(args.duration + args.settle + args.request_timeout + 240)

    def out_of_time(_signum: int, _frame: object) -> None:
        raise OutOfTime(f"load_held: over its {budget} s budget")

    exit_cleanly_on_sigterm()
    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(budget)
    print(f"machine: {machine()}")
    print(
        f"{args.watches} watches, interval {args.interval:g} s fixed (required "
        f"{args.watches / args.interval:.0f} polls/s before registrations), {args.rate:g} "
        f"registrations/s for {args.duration:g} s; 1 web (gunicorn.conf.py) + {args.workers} workers; "
        f"PostgreSQL {DB_NAME}; MI_MAX_RPS lifted to 1000000 (default 100/s per process)",
        flush=True,
    )
    with nginx_far_end() as far_end, tempfile.TemporaryDirectory() as tmp:
        run(args, far_end, Path(tmp))


if __name__ == "__main__":
    main()
