"""Scale-out: polls per second with 1, 2 and 4 worker processes on PostgreSQL.

    .venv/bin/python bench/scale_out.py [--assets 20000] [--workers 1,2,4] [--runs 3]

Method. One fresh PostgreSQL database (``mi_bridge_bench_scale``) is seeded once with N assets (one
watching watch and one webhook target each, already seen ANALYZING, so a poll changes nothing but the
schedule) and the nginx far end answers ANALYZING. BRIDGE_POLL_INTERVAL=3600 s, so each asset is polled
exactly once per repetition. MI_MAX_RPS is lifted to 1,000,000: the default 100 requests/s per process
is a deliberate upstream ceiling, and this measures the worker itself.

Each repetition (K interleaved 1,2,4,1,2,4,... so slow drifts of a shared machine hit every K alike):

1. every asset is made not due (in an hour), leases cleared, ``VACUUM ANALYZE`` (same table state for
   every repetition);
2. K ``mi-bridge worker`` processes are started and the script waits for each one's heartbeat row, so
   interpreter start-up is outside the measurement;
3. one ``UPDATE`` makes all N assets due (t0); ``SUM(assets.poll_count)`` is sampled every 0.25 s until
   it has grown by N (every asset polled once; each poll adds one);
4. CPU time (utime + stime from ``/proc/<pid>/stat``, all threads) of the workers, of PostgreSQL
   (``pgrep -x postgres``, keeping this database's backends, minus the script's own sampling
   connection, and the cluster's shared processes: postmaster, walwriter, checkpointer...; backends
   of other databases are another tenant's) and of this script's nginx is read at t0 and at the end,
   plus the machine's busy time from ``/proc/stat``.

Figures per repetition: ``polls/s`` over the steady middle (between 10% and 90% of the N polls, times
interpolated between samples: excludes the first tick's ramp and the tail when fewer than K workers
still find work), the overall rate (t0 to the sample that saw the last poll: includes the wait for
the workers' next 1 s tick, reported as "first seen after"), and CPU in cores (CPU seconds / window
seconds) per process group, and CPU milliseconds per poll. Medians over the runs, and K/1 ratios.

Why the curve flattens: every poll costs CPU in the worker (signing, HTTP, JSON, SQLAlchemy), in
PostgreSQL (claim, lock, update) and in nginx, all on the same cores. When workers + postgres + nginx
reach the machine's cores, a further worker only splits the same CPU: the "ceiling" line prints cores /
(CPU seconds per poll), the rate the machine could sustain if nothing else ran. ``machine busy`` above
the sum of the groups is CPU used by other tenants of a shared machine.
"""

from __future__ import annotations

import argparse
import ctypes
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    bench_app,
    fresh_postgres,
    machine,
    median,
    nginx_far_end,
    seed,
    worker_env,
)

DB_NAME = "mi_bridge_bench_scale"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 0.25
STEADY = (0.10, 0.90)  # the share of polls between which the steady rate is measured


# --- processes ------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """In the child: get SIGTERM if this script dies, even by SIGKILL (no orphaned workers)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def exit_cleanly_on_sigterm() -> None:
    """SIGTERM ends this script through its ``finally`` blocks (processes stopped, nginx quit)."""

    def handler(signum: int, _frame: object) -> None:
        print("terminated: stopping the benchmark's processes", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def start(command: list[str], env: dict[str, str], log_dir: Path, name: str) -> subprocess.Popen:
    """Start ``command`` with its output in a file (a pipe nobody reads could fill and block it)."""
    log = (log_dir / f"{name}.log").open("wb")
    # cwd outside the repository: the product reads a .env from its working directory.
    return subprocess.Popen(  # noqa: S603 - our own processes
        command, env=env, cwd=log_dir, stdout=log, stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,  # forked from the main thread: see PR_SET_PDEATHSIG
    )  # fmt: skip


def start_worker(env: dict[str, str], log_dir: Path, name: str) -> subprocess.Popen:
    return start([str(ROOT / ".venv" / "bin" / "mi-bridge"), "worker"], env, log_dir, name)


def stop(processes: list[subprocess.Popen], timeout: float = 30.0) -> None:
    """SIGTERM all (workers finish their tick and write a final heartbeat), then SIGKILL stragglers."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_alive(processes: list[subprocess.Popen], log_dir: Path) -> None:
    for process in processes:
        if process.poll() is not None:
            logs = "\n".join(p.read_text()[-1500:] for p in log_dir.glob("*.log"))
            raise RuntimeError(f"process {process.pid} exited ({process.returncode}):\n{logs}")


# --- database -------------------------------------------------------------------------------------


def connect(database_url: str):
    import psycopg

    return psycopg.connect(database_url, autocommit=True)


def scalar(connection, sql: str, params: tuple = ()) -> object:
    return connection.execute(sql, params).fetchone()[0]


def heartbeats(connection, pids: list[int]) -> dict[int, dict]:
    """Each of ``pids``' latest heartbeat counters (workers of earlier runs may share a pid: newest)."""
    rows = connection.execute(
        "SELECT pid, counters FROM worker_heartbeats WHERE pid = ANY(%s) ORDER BY started_at",
        (pids,),
    ).fetchall()
    return dict(rows)  # ordered by start: a reused pid keeps its newest row


def wait_for_heartbeats(
    connection, processes: list[subprocess.Popen], log_dir: Path, since: float, timeout: float = 60
) -> None:
    """Wait until every process wrote a heartbeat after ``since`` (epoch s): its worker is running."""
    deadline = time.monotonic() + timeout
    pids = [p.pid for p in processes]
    while time.monotonic() < deadline:
        check_alive(processes, log_dir)
        seen = scalar(
            connection,
            "SELECT count(DISTINCT pid) FROM worker_heartbeats"
            " WHERE pid = ANY(%s) AND started_at >= to_timestamp(%s)",
            (pids, since - 1),  # clock granularity; a pid reused within the second is not a worry
        )
        if seen == len(pids):
            return
        time.sleep(0.1)
    raise RuntimeError(f"workers {pids} wrote no heartbeat within {timeout} s")


def polls_so_far(connection) -> int:
    """Requests recorded in the assets (each poll adds its requests to ``assets.poll_count``)."""
    return int(scalar(connection, "SELECT COALESCE(SUM(poll_count), 0) FROM assets"))


# --- CPU --------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` (all its threads), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def pids_named(name: str) -> list[int]:
    """Processes whose name is exactly ``name`` (``-x``: ``-f`` would match any command line)."""
    found = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False)  # noqa: S603,S607
    return [int(pid) for pid in found.stdout.split()]


def _read(path: str) -> str:
    try:
        return Path(path).read_text().replace("\0", " ")
    except OSError:
        return ""


def _parent(pid: int) -> int:
    stat = _read(f"/proc/{pid}/stat")
    return int(stat.rsplit(")", 1)[1].split()[1]) if stat else 0


def postgres_pids(db_name: str, exclude: int) -> list[int]:
    """The cluster's processes that work for this benchmark: the backends of ``db_name`` (but not
    ``exclude``, this script's sampling connection) and the shared ones (postmaster, walwriter,
    checkpointer...). Backends of other databases (a shared machine's other tests) are left out."""
    chosen = []
    for pid in pids_named("postgres"):
        title = _read(f"/proc/{pid}/cmdline")
        if pid == exclude:
            continue
        # A backend's title is "postgres: 15/main: user database host(port) state".
        other_db = "(" in title or "[local]" in title or "autovacuum worker" in title
        if db_name in title or not other_db:
            chosen.append(pid)
    return chosen


def nginx_pids() -> list[int]:
    """This script's nginx (master, our child, and its workers); other nginx on the machine are not ours."""
    me = os.getpid()
    return [p for p in pids_named("nginx") if _parent(p) == me or _parent(_parent(p)) == me]


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK


@dataclass
class CpuSnapshot:
    at: float
    per_group: dict[str, dict[int, float]]
    busy: float


def cpu_snapshot(groups: dict[str, list[int]]) -> CpuSnapshot:
    per_group = {
        name: {pid: t for pid in pids if (t := cpu_seconds(pid)) is not None}
        for name, pids in groups.items()
    }
    return CpuSnapshot(time.monotonic(), per_group, machine_busy_seconds())


def cpu_groups(workers: list[subprocess.Popen], connection) -> dict[str, list[int]]:
    """The processes whose CPU is measured, by group (postgres: call again at the end for new
    backends)."""
    db_name = scalar(connection, "SELECT current_database()")
    sampler = scalar(connection, "SELECT pg_backend_pid()")
    return {
        "workers": [w.pid for w in workers],
        "postgres": postgres_pids(db_name, sampler),
        "nginx": nginx_pids(),
    }


def cpu_used(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU seconds per group between two snapshots. A process born in between counts from zero (new
    postgres backends); one that died in between is lost (none of ours should)."""
    used = {
        name: sum(t - before.per_group[name].get(pid, 0.0) for pid, t in pids.items())
        for name, pids in after.per_group.items()
    }
    used["machine busy"] = after.busy - before.busy
    return used


# --- one repetition ---------------------------------------------------------------------------------


def reset(connection) -> None:
    """Nothing due, no leases, fresh statistics: the same starting point for every repetition."""
    connection.execute(
        "UPDATE assets SET next_poll_at = now() + interval '1 hour',"
        ' lease_owner = NULL, lease_expires_at = NULL, "interval" = 3600'
    )
    connection.execute("VACUUM ANALYZE assets")
    connection.execute("VACUUM ANALYZE watches")


@dataclass
class RunResult:
    steady_rate: float
    overall_rate: float
    seconds: float
    first_seen: float  # seconds from t0 to the first sample showing a poll (a tick's wait)
    cpu: dict[str, float]  # CPU seconds per group over [t0, end]
    polls: int
    heartbeat_polls: int


def interpolate_time(samples: list[tuple[float, int]], target: float) -> float:
    """The time at which the polled count crossed ``target`` (linear between samples)."""
    for (t1, n1), (t2, n2) in itertools.pairwise(samples):
        if n1 <= target <= n2 and n2 > n1:
            return t1 + (t2 - t1) * (target - n1) / (n2 - n1)
    raise ValueError(f"{target} never crossed")


def run_once(
    database_url: str, far_end: str, k: int, assets: int, log_dir: Path, timeout: float
) -> RunResult:
    with connect(database_url) as connection:
        reset(connection)
        env = worker_env(database_url, far_end, 3600)
        launched = time.time()
        workers = [start_worker(env, log_dir, f"k{k}-w{i}") for i in range(k)]
        try:
            wait_for_heartbeats(connection, workers, log_dir, launched)
            base = polls_so_far(connection)
            base_beats = heartbeats(connection, [w.pid for w in workers])
            groups = cpu_groups(workers, connection)
            before = cpu_snapshot(groups)
            connection.execute("UPDATE assets SET next_poll_at = now() - interval '1 second'")
            t0 = time.monotonic()
            samples = [(t0, 0)]
            while samples[-1][1] < assets:
                if time.monotonic() - t0 > timeout:
                    raise RuntimeError(f"K={k}: {samples[-1][1]} of {assets} polled in {timeout} s")
                check_alive(workers, log_dir)
                time.sleep(SAMPLE_SECONDS)
                samples.append((time.monotonic(), polls_so_far(connection) - base))
            # Backends born during the run count too (from zero).
            groups["postgres"] = cpu_groups(workers, connection)["postgres"]
            after = cpu_snapshot(groups)
        finally:
            stop(workers)
        # After the final heartbeats: the workers' own count of requests must match the database's.
        end_beats = heartbeats(connection, [w.pid for w in workers])
    polls = samples[-1][1]
    beat_polls = sum(
        sum(end_beats[pid]["polls"].values())
        - sum(base_beats.get(pid, {}).get("polls", {}).values())
        for pid in end_beats
    )
    low, high = (interpolate_time(samples, share * assets) for share in STEADY)
    # The end of the run is the sample that saw the last poll: up to SAMPLE_SECONDS late.
    seconds = samples[-1][0] - t0
    return RunResult(
        steady_rate=(STEADY[1] - STEADY[0]) * assets / (high - low),
        overall_rate=polls / seconds,
        seconds=seconds,
        first_seen=next(t for t, n in samples if n > 0) - t0,
        cpu=cpu_used(before, after),
        polls=polls,
        heartbeat_polls=beat_polls,
    )


# --- report -----------------------------------------------------------------------------------------


def describe(k: int, run: int, r: RunResult) -> str:
    cores = {name: seconds / r.seconds for name, seconds in r.cpu.items()}
    return (
        f"run {run} K={k}: {r.steady_rate:7.0f} polls/s steady, {r.overall_rate:7.0f} overall "
        f"({r.polls} polls in {r.seconds:.2f} s, first seen after {r.first_seen:.2f} s; heartbeats "
        f"count {r.heartbeat_polls}); cores: "
        f"workers {cores['workers']:.2f}, postgres {cores['postgres']:.2f}, "
        f"nginx {cores['nginx']:.2f}, machine busy {cores['machine busy']:.2f}"
    )


def summarize(results: dict[int, list[RunResult]], ncores: int) -> None:
    print("\nmedians over runs:")
    print(
        "   K  polls/s  x K=1  overall | cores: workers postgres nginx  sum  machine"
        " | CPU ms/poll: workers postgres all | ceiling polls/s"
    )
    base = results.get(1) or next(iter(results.values()))
    base_rates = [r.steady_rate for r in base]
    for k, runs in results.items():
        rate = median([r.steady_rate for r in runs])

        def cores(group: str, runs: list[RunResult] = runs) -> float:
            return median([r.cpu[group] / r.seconds for r in runs])

        def ms_per_poll(groups: tuple[str, ...], runs: list[RunResult] = runs) -> float:
            return median([1000 * sum(r.cpu[g] for g in groups) / r.polls for r in runs])

        groups = ("workers", "postgres", "nginx")
        total_ms = ms_per_poll(groups)
        ratios = [r.steady_rate / b for r, b in zip(runs, base_rates, strict=False)]
        print(
            f"  {k:2d} {rate:8.0f} {median(ratios):6.2f} {median([r.overall_rate for r in runs]):8.0f}"
            f" |        {cores('workers'):7.2f} {cores('postgres'):8.2f} {cores('nginx'):5.2f}"
            f" {sum(cores(g) for g in groups):4.2f} {cores('machine busy'):8.2f}"
            f" |              {ms_per_poll(('workers',)):7.2f} {ms_per_poll(('postgres',)):8.2f}"
            f" {total_ms:4.2f} | {1000 * ncores / total_ms:15.0f}"
        )
    print(
        f"\n'x K=1' is the median of per-run ratios (run i of K over run i of K=1). 'ceiling' ="
        f" {ncores} cores / (CPU seconds per poll of workers + postgres + nginx): the rate at which"
        " this machine's cores are all busy. Once 'sum' nears the core count, another worker can"
        " only share the same CPU and the curve flattens; 'machine' above 'sum' is other load."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=20_000, help="due assets per repetition")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts (K)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each K (medians)")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=300, help="max seconds per repetition")
    args = parser.parse_args()
    exit_cleanly_on_sigterm()
    ks = [int(k) for k in args.workers.split(",")]
    ncores = os.cpu_count() or 1
    print(f"machine: {machine()}")
    print(
        f"assets per repetition: {args.assets}; K: {ks}; runs: {args.runs}; PostgreSQL {DB_NAME}; "
        "MI_MAX_RPS lifted to 1000000 (default 100/s per process is the upstream ceiling)"
    )
    results: dict[int, list[RunResult]] = {k: [] for k in ks}
    with nginx_far_end(args.nginx_workers) as far_end, tempfile.TemporaryDirectory() as tmp:
        url = fresh_postgres(DB_NAME)
        started = time.perf_counter()
        app = bench_app(url, far_end)
        seed(app, args.assets, due=0)
        from app.db import db

        with app.app_context():
            db.engine.dispose()  # this process keeps no connection open during the runs
        print(f"seeded {args.assets} assets in {time.perf_counter() - started:.1f} s", flush=True)
        for run in range(1, args.runs + 1):
            for k in ks:
                result = run_once(url, far_end, k, args.assets, Path(tmp), args.timeout)
                if result.heartbeat_polls != result.polls:
                    print(f"  note: heartbeats counted {result.heartbeat_polls} requests")
                results[k].append(result)
                print(describe(k, run, result), flush=True)
    summarize(results, ncores)


if __name__ == "__main__":
    main()
