"""Registration API throughput: POST /api/v1/watches through gunicorn on PostgreSQL vs hello-world.

    .venv/bin/python bench/registration_api.py [--concurrency 16,64] [--duration 20] [--warmup 3]
        [--repetitions 3] [--profile-dir DIR]

Method. Two gunicorn servers run as subprocesses, both started with the product's ``gunicorn.conf.py``
(only ``--bind`` is overridden, to 127.0.0.1 and a free port) and the production defaults: no
``WEB_CONCURRENCY`` / ``GUNICORN_THREADS`` in the environment, so 2 workers x 4 threads, which gunicorn
runs with its ``gthread`` worker class (threads > 1); keepalive 5 s. The effective class and worker
count are read back from gunicorn's log and printed.

- ``api``: ``app:create_app()`` (the Procfile's ``web``) with ``BRIDGE_ENV=production``, INFO logging
  (its one JSON line per request goes to a log file), ``BRIDGE_EMBEDDED_WORKER=false`` (the web process
  only: nothing polls) on a fresh PostgreSQL database ``mi_bridge_bench_api`` migrated with
  ``mi-bridge db upgrade``.
- ``hello``: ``bench.hello_app:app``, a bare Flask route answering a small JSON object, under the same
  settings and environment; and its ``POST /hello/insert``, the smallest durable write (one INSERT
  and a commit on the same PostgreSQL database): a baseline that pays for a transaction too.

The load generator (aiohttp, in this process, one keep-alive connection per concurrent client) runs
``--warmup`` s unrecorded then ``--duration`` s recorded; a request counts when it completes inside the
recorded window. Each API request registers a new watch: a distinct ``asset_id``, one webhook target at
a public IP literal (the address guard resolves it without DNS; no secret, so one is generated), and
the bearer token. hello gets ``GET /hello`` and, separately, ``POST /hello`` and ``POST /hello/insert``
with the same JSON bodies.
Any non-2xx answer or client exception is an error (a few bodies are printed). Per repetition and
concurrency the kinds run interleaved: hello GET, api, hello POST, hello INSERT. Reported per run: requests/s,
p50/p99 latency, errors, server CPU ms per request (gunicorn workers' user+system time over every
completed request of the run, warm-up included; PostgreSQL's own CPU is not in it) and the load
generator's CPU share; then medians and the api/hello ratio per repetition and its median.

The database is not reset between runs (it grows by every registered watch). Everything listens on and
talks to 127.0.0.1; servers are stopped (process group, SIGTERM then SIGKILL) on any exit, and the whole
benchmark is bounded by ``--budget`` seconds. ``--profile-dir`` attaches ``py-spy record`` (raw
collapsed stacks, 200 Hz) to each API worker during the first repetition's API run at the highest
concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.common import ROOT, free_port, fresh_postgres, machine, median, wait_for_port

DB_NAME = "mi_bridge_bench_api"
TOKEN = "bench-api-token-of-24-chars-or-more"  # noqa: S105 - a local benchmark's token
VENV_BIN = ROOT / ".venv" / "bin"
#: A public IP literal: getaddrinfo answers it without DNS, and the guard accepts it.
WEBHOOK_URL = "https://93.184.216.34/hooks/mi"
REQUEST_TIMEOUT = 30.0
ERROR_SAMPLES = 3
KINDS = ("hello GET", "api POST", "hello POST", "hello INSERT")


# --- servers -------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    url: str
    log: Path

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def cpu_seconds(self) -> float:
        """User + system time of the current workers (their own, from /proc)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return total

    def describe(self) -> str:
        text = self.log.read_text(errors="replace")
        worker = re.search(r"Using worker: (\w+)", text)
        boots = len(re.findall(r"Booting worker with pid", text))
        return (
            f"{self.name}: worker class {worker.group(1) if worker else '?'}, "
            f"{boots} workers booted, pids {self.worker_pids()}"
        )


def server_env(database_url: str) -> dict[str, str]:
    """Production settings for both servers; the gunicorn knobs left at the product's defaults."""
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_THREADS")}
    env.update(
        BRIDGE_ENV="production",
        SECRET_KEY="bench-secret-key-0123456789abcdef",  # noqa: S106
        BRIDGE_API_TOKENS=TOKEN,
        DATABASE_URL=database_url,
        BRIDGE_EMBEDDED_WORKER="false",
        BRIDGE_ALLOW_PRIVATE_URLS="false",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def gunicorn(name: str, app_spec: str, env: dict[str, str], ready_path: str) -> Iterator[Server]:
    """gunicorn -c gunicorn.conf.py on 127.0.0.1:<free port>; yields once ``ready_path`` answers."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix=f"mi-bench-{name}-", suffix=".log")[1])
    command = [
        str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py",
        "--bind", f"127.0.0.1:{port}", app_spec,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own gunicorn
            command, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
        )
    server = Server(name, process, f"http://127.0.0.1:{port}", log)
    try:
        wait_for_port(port, timeout=30)
        asyncio.run(wait_ready(server.url + ready_path, process))
        yield server
    finally:
        stop(process)


async def wait_ready(url: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {process.returncode}")
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (its own session), SIGKILL after 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def migrate(database_url: str) -> None:
    subprocess.run(  # noqa: S603 - our own CLI
        [str(VENV_BIN / "mi-bridge"), "db", "upgrade"],
        cwd=ROOT,
        env={**server_env(database_url), "LOG_LEVEL": "WARNING"},
        check=True,
        timeout=120,
        capture_output=True,
    )


# --- load ----------------------------------------------------------------------------------------


@dataclass
class Run:
    kind: str
    concurrency: int
    repetition: int
    duration: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)
    completed: int = 0  # every completed request, warm-up included
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.duration

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        cpu = self.server_cpu / self.completed * 1000 if self.completed else float("nan")
        return (
            f"rep {self.repetition}  c={self.concurrency:<3d} {self.kind:<12s} "
            f"{self.rps:8.1f} req/s  p50 {self.percentile(0.50):7.1f} ms  "
            f"p99 {self.percentile(0.99):7.1f} ms  errors {self.errors:5d}  "
            f"server cpu {cpu:5.2f} ms/req  client cpu {self.client_cpu:4.0%}"
        )


Body = Callable[[], bytes | None]


def registration_bodies(prefix: str) -> Body:
    """Distinct watch registrations: a new asset id each time, one webhook target."""
    counter = itertools.count()

    def body() -> bytes:
        return json.dumps(
            {
                "workspace": "bench",
                "project_id": "1",
                "asset_id": f"{prefix}-{next(counter)}",
                "targets": [{"type": "webhook", "url": WEBHOOK_URL}],
                "labels": {"bench": "registration_api"},
            }
        ).encode()

    return body


async def load(
    run: Run, method: str, url: str, body: Body, headers: dict[str, str], warmup: float
) -> None:
    """``run.concurrency`` clients, each one request at a time on its own keep-alive connection."""
    connector = aiohttp.TCPConnector(limit=run.concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    start = time.perf_counter()
    window = (start + warmup, start + warmup + run.duration)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            while time.perf_counter() < window[1]:
                await one_request(session, run, method, url, body(), headers, window)

        await asyncio.wait_for(
            asyncio.gather(*(client() for _ in range(run.concurrency))),
            warmup + run.duration + REQUEST_TIMEOUT + 5,
        )


async def one_request(
    session: aiohttp.ClientSession,
    run: Run,
    method: str,
    url: str,
    data: bytes | None,
    headers: dict[str, str],
    window: tuple[float, float],
) -> None:
    sent = time.perf_counter()
    try:
        async with session.request(method, url, data=data, headers=headers) as response:
            text = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        status, text = None, repr(exc).encode()
    done = time.perf_counter()
    run.completed += 1
    if not window[0] <= done <= window[1]:
        return
    run.latencies.append(done - sent)
    if status is None or not 200 <= status < 300:
        run.errors += 1
        if len(run.samples) < ERROR_SAMPLES:
            run.samples.append(f"{status}: {text[:300].decode(errors='replace')}")


def measure(run: Run, server: Server, method: str, path: str, body: Body, args) -> Run:
    headers = {"Content-Type": "application/json"} if method == "POST" else {}
    if run.kind.startswith("api"):
        headers["Authorization"] = f"Bearer {TOKEN}"
    cpu_before, client_before = server.cpu_seconds(), time.process_time()
    wall = time.perf_counter()
    with profiled(server, run, args):
        asyncio.run(load(run, method, server.url + path, body, headers, args.warmup))
    run.server_cpu = server.cpu_seconds() - cpu_before
    run.client_cpu = (time.process_time() - client_before) / (time.perf_counter() - wall)
    return run


@contextmanager
def profiled(server: Server, run: Run, args) -> Iterator[None]:
    """py-spy on each API worker for the first repetition's API run at the highest concurrency."""
    wanted = (
        args.profile_dir
        and run.kind.startswith("api")
        and run.repetition == 1
        and run.concurrency == max(args.concurrency)
    )
    if not wanted:
        yield
        return
    Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
    seconds = int(args.warmup + args.duration)
    spies = [py_spy(pid, seconds, Path(args.profile_dir)) for pid in server.worker_pids()]
    try:
        yield
    finally:
        for spy in spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        print(f"py-spy profiles written to {args.profile_dir}", flush=True)


def py_spy(pid: int, seconds: int, directory: Path) -> subprocess.Popen:
    """py-spy record (raw collapsed stacks, 200 Hz, without pausing the worker) of one process."""
    command = [
        str(VENV_BIN / "py-spy"), "record", "--rate", "200", "--format", "raw", "--nonblocking",
        "--pid", str(pid), "--duration", str(seconds), "-o", str(directory / f"api-worker-{pid}.txt"),
    ]  # fmt: skip
    return subprocess.Popen(  # noqa: S603 - our own py-spy
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


# --- report --------------------------------------------------------------------------------------


def report(runs: list[Run], levels: list[int]) -> None:
    print("\nsummary (medians over repetitions)")
    print(f"{'c':>4} {'kind':<12} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for level in levels:
        for kind in KINDS:
            same = [r for r in runs if r.concurrency == level and r.kind == kind]
            print(
                f"{level:>4} {kind:<12} {median([r.rps for r in same]):9.1f} "
                f"{median([r.percentile(0.5) for r in same]):8.1f} "
                f"{median([r.percentile(0.99) for r in same]):8.1f} "
                f"{sum(r.errors for r in same):7d}"
            )
    print("\napi/hello requests/s ratio per repetition (goal: >= 0.50)")
    for level in levels:
        for baseline in ("hello GET", "hello POST", "hello INSERT"):
            ratios = ratios_for(runs, level, baseline)
            listed = ", ".join(f"{r:.3f}" for r in ratios)
            print(f"  c={level:<3d} api / {baseline:<12s} [{listed}]  median {median(ratios):.3f}")
    samples = [s for r in runs for s in r.samples]
    if samples:
        print("\nerror samples:")
        for sample in samples[: ERROR_SAMPLES * 2]:
            print("  " + sample.replace("\n", " "))


def ratios_for(runs: list[Run], level: int, baseline: str) -> list[float]:
    by_key = {(r.repetition, r.kind): r for r in runs if r.concurrency == level}
    repetitions = sorted({r.repetition for r in runs})
    return [
        by_key[(rep, "api POST")].rps / by_key[(rep, baseline)].rps
        for rep in repetitions
        if (rep, "api POST") in by_key and by_key[(rep, baseline)].rps
    ]


# --- main ----------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64]
    )
    parser.add_argument("--duration", type=float, default=20.0, help="recorded seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="unrecorded seconds per run")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--budget", type=float, default=None, help="hard limit, seconds")
    parser.add_argument("--profile-dir", default=None, help="py-spy the API workers (see above)")
    return parser.parse_args()


def create_hello_table(database_url: str) -> None:
    """The table of ``POST /hello/insert`` (made here, not by two gunicorn workers racing)."""
    import psycopg

    from bench.hello_app import HELLO_TABLE

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(HELLO_TABLE)


def on_budget(_signum, _frame) -> None:
    raise TimeoutError("benchmark budget exhausted")


def main() -> None:
    args = parse_args()
    runs_total = args.repetitions * len(args.concurrency) * len(KINDS)
    budget = args.budget or runs_total * (args.warmup + args.duration + REQUEST_TIMEOUT) + 180
    signal.signal(signal.SIGALRM, on_budget)
    signal.alarm(int(budget))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks

    print(f"machine: {machine()}")
    print(f"load average at start: {os.getloadavg()}")
    database_url = fresh_postgres(DB_NAME)
    migrate(database_url)
    create_hello_table(database_url)
    env = server_env(database_url)
    print(f"database: PostgreSQL {DB_NAME} (fresh, migrated); webhook target {WEBHOOK_URL}")
    with ExitStack() as stack:
        hello = stack.enter_context(gunicorn("hello", "bench.hello_app:app", env, "/hello"))
        api = stack.enter_context(gunicorn("api", "app:create_app()", env, "/healthz"))
        print(hello.describe())
        print(api.describe())
        print(
            f"{args.repetitions} repetitions x concurrency {args.concurrency}; "
            f"{args.warmup:g} s warm-up + {args.duration:g} s recorded per run\n",
            flush=True,
        )
        runs = run_all(args, hello, api)
        print(f"\napi server log: {api.log} ({api.log.stat().st_size} bytes)")
    report(runs, args.concurrency)
    print(f"load average at end: {os.getloadavg()}")


def run_all(args: argparse.Namespace, hello: Server, api: Server) -> list[Run]:
    runs = []
    for repetition in range(1, args.repetitions + 1):
        for level in args.concurrency:
            plan = (
                ("hello GET", hello, "GET", "/hello", lambda: None),
                ("api POST", api, "POST", "/api/v1/watches",
                 registration_bodies(f"r{repetition}c{level}")),
                ("hello POST", hello, "POST", "/hello",
                 registration_bodies(f"h{repetition}c{level}")),
                ("hello INSERT", hello, "POST", "/hello/insert",
                 registration_bodies(f"i{repetition}c{level}")),
            )  # fmt: skip
            for kind, server, method, path, body in plan:
                run = Run(kind, level, repetition, args.duration)
                runs.append(measure(run, server, method, path, body, args))
                print(run.line(), flush=True)
    return runs


if __name__ == "__main__":
    main()
