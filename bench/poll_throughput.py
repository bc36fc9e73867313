"""Polling throughput of one worker, beside a bare requests loop and aiohttp, against the same far end.

    .venv/bin/python bench/poll_throughput.py [--assets 10000] [--runs 3] [--only worker-sqlite,...]

The far end is nginx (Debian's package) serving the simulator's status JSON at the status paths, so it
is not the bottleneck. Each repetition runs, one after the other in the same process:

- ``bare``: a ``requests.Session`` (pool of 16) on 16 threads doing GET + JSON parsing, N requests;
- ``aiohttp``: one event loop with 64 requests in flight, GET + JSON parsing, N requests;
- ``worker-sqlite`` / ``worker-postgres``: N due assets (one watch and one webhook target each, already
  seen ANALYZING) in a fresh database; ``poll_once`` of one ``WorkerRuntime`` in a loop until nothing is
  due (BRIDGE_POLL_INTERVAL=3600 s so each asset is polled exactly once);
- ``worker-sqlite-process`` / ``worker-postgres-process``: the same with
  ``BRIDGE_POLL_TRANSPORT=process`` (the requests sent by the worker's child process), in a database of
  their own.

It prints polls (requests) per second of each, per repetition and as medians, and the ratios worker/bare
and worker/aiohttp computed per repetition (side by side) and then their median; beside each figure,
the CPU microseconds per poll spent by this process, the poll process, PostgreSQL and nginx (on a
2-core machine that runs them all, their sum bounds what any worker can reach).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests
from requests.adapters import HTTPAdapter

from bench.common import (
    PG_BENCH_DB,
    bench_app,
    cpu_seconds,
    cpu_seconds_named,
    due_count,
    failed_poll_count,
    fresh_postgres,
    machine,
    make_all_due,
    median,
    nginx_far_end,
    on_threads,
    rss_mb,
    seed,
    status_urls,
)

CLIENTS = (
    "bare",
    "aiohttp",
    "worker-sqlite",
    "worker-postgres",
    "worker-sqlite-process",
    "worker-postgres-process",
)
BARE_THREADS = 16  # = app.worker.runtime.POLL_CONCURRENCY
AIOHTTP_IN_FLIGHT = 64


def run_bare(urls: list[str], threads: int = BARE_THREADS) -> float:
    """GET + JSON of every URL with a shared pooled Session on ``threads`` threads; requests/s."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=threads, max_retries=0)
    session.mount("http://", adapter)
    errors: list[str] = []

    def work(part: list[str]) -> None:
        for url in part:
            response = session.get(url, timeout=(3.05, 10))
            if response.status_code != 200 or response.json()["code"] != "0":
                errors.append(url)

    rate = on_threads(urls, work, threads)
    session.close()
    if errors:
        raise RuntimeError(f"bare: {len(errors)} bad answers")
    return rate


def run_aiohttp(urls: list[str], in_flight: int = AIOHTTP_IN_FLIGHT) -> float:
    """GET + JSON of every URL with ``in_flight`` requests outstanding on one event loop; requests/s."""
    import aiohttp

    async def main() -> float:
        connector = aiohttp.TCPConnector(limit=in_flight)
        timeout = aiohttp.ClientTimeout(total=10)
        bad = 0
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            queue = iter(urls)

            async def worker() -> None:
                nonlocal bad
                for url in queue:
                    async with session.get(url) as response:
                        body = await response.json(content_type=None)
                        if response.status != 200 or body["code"] != "0":
                            bad += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(in_flight)))
            elapsed = time.perf_counter() - started
        if bad:
            raise RuntimeError(f"aiohttp: {bad} bad answers")
        return len(urls) / elapsed

    return asyncio.run(main())


class CpuMeter:
    """CPU used from now on by this process (the client, or the worker's own threads), the poll
    process (``BRIDGE_POLL_TRANSPORT=process``), PostgreSQL's processes and nginx: where a poll's
    cost lands on a machine that runs them all."""

    def __init__(self, child_pid: int | None) -> None:
        self.child_pid = child_pid
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        return {
            "process": cpu_seconds(),
            "poll process": cpu_seconds(self.child_pid) if self.child_pid else 0.0,
            "postgres": cpu_seconds_named("postgres"),
            "nginx": cpu_seconds_named("nginx"),
        }

    def per_request(self, requests: int) -> dict[str, float]:
        """Microseconds of CPU per request since ``__init__``, by process."""
        end = self._read()
        return {k: 1e6 * (end[k] - self.start[k]) / requests for k in end}


def _cpu_text(cpu: dict[str, float]) -> str:
    shown = {k: v for k, v in cpu.items() if v >= 5}  # ticks of 10 ms: below this is noise
    return "CPU us/poll: " + ", ".join(f"{k} {v:.0f}" for k, v in shown.items())


class WorkerBench:
    """A seeded database and one WorkerRuntime, reusable across repetitions."""

    def __init__(
        self, kind: str, far_end: str, assets: int, workdir: Path, concurrency: int = 16
    ) -> None:
        process = kind.endswith("-process")
        if kind.startswith("worker-sqlite"):
            url = f"sqlite:///{workdir / f'{kind}.db'}"
        else:
            url = fresh_postgres(PG_BENCH_DB + ("_process" if process else ""))
        started = time.perf_counter()
        self.app = bench_app(
            url,
            far_end,
            BRIDGE_POLL_TRANSPORT="process" if process else "thread",
            BRIDGE_POLL_CONCURRENCY=concurrency,
        )
        seed(self.app, assets)
        print(
            f"  [{kind}] seeded {assets} assets in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        from app.worker.poll_transport import transport_of
        from app.worker.runtime import WorkerRuntime

        self.runtime = WorkerRuntime.from_app(self.app)
        # A worker starts its poll process when it starts; measured here is polling, not that.
        transport_of(self.runtime).start()
        self.assets = assets
        self.kind = kind
        self.first = True

    def run(self) -> float:
        from app.worker.polling import poll_once

        if not self.first:
            make_all_due(self.app)
        self.first = False
        polled = ticks = 0
        started = time.perf_counter()
        while True:
            report = poll_once(self.runtime)
            ticks += 1
            polled += report.polled
            if report.claimed == 0:
                break
        elapsed = time.perf_counter() - started
        left = due_count(self.app)
        if polled != self.assets or left:
            raise RuntimeError(f"{self.kind}: polled {polled} of {self.assets}, {left} still due")
        if failed := failed_poll_count(self.app):
            raise RuntimeError(f"{self.kind}: {failed} polls got no status answer")
        return polled / elapsed

    def child_pid(self) -> int | None:
        """The poll process's pid (None with the thread transport)."""
        return getattr(self.runtime.poll_transport, "child_pid", None)

    def close(self) -> None:
        self.runtime.close()
        from app.db import db

        with self.app.app_context():
            db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10_000, help="due assets / requests per run")
    parser.add_argument("--runs", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--only", default=",".join(CLIENTS), help="comma-separated subset of: "
                        + ", ".join(CLIENTS))  # fmt: skip
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--worker-concurrency", type=int, default=16,
                        help="the workers' BRIDGE_POLL_CONCURRENCY (default: the product's, 16)")  # fmt: skip
    args = parser.parse_args()
    chosen = [c for c in CLIENTS if c in args.only.split(",")]
    print(f"machine: {machine()}")
    print(
        f"assets/requests per run: {args.assets}; runs: {args.runs}; clients: {', '.join(chosen)};"
        f" workers' BRIDGE_POLL_CONCURRENCY: {args.worker_concurrency}"
    )
    results: dict[str, list[float]] = {c: [] for c in chosen}
    cpus: dict[str, list[dict[str, float]]] = {c: [] for c in chosen}
    with nginx_far_end(args.nginx_workers) as far_end, tempfile.TemporaryDirectory() as tmp:
        print(f"far end: nginx at {far_end} ({args.nginx_workers} worker process)")
        urls = status_urls(far_end, args.assets)
        workers = {
            kind: WorkerBench(kind, far_end, args.assets, Path(tmp), args.worker_concurrency)
            for kind in chosen
            if kind.startswith("worker")
        }
        try:
            for run in range(1, args.runs + 1):
                for client in chosen:
                    bench = workers.get(client)
                    meter = CpuMeter(bench.child_pid() if bench else None)
                    if client == "bare":
                        rate = run_bare(urls)
                    elif client == "aiohttp":
                        rate = run_aiohttp(urls)
                    else:
                        rate = bench.run()  # type: ignore[union-attr]
                    cpu = meter.per_request(args.assets)
                    results[client].append(rate)
                    cpus[client].append(cpu)
                    child = bench.child_pid() if bench else None
                    rss = f"; poll process RSS {rss_mb(child):.0f} MB" if child else ""
                    print(
                        f"run {run} {client:24s} {rate:7.0f} polls/s   {_cpu_text(cpu)}{rss}",
                        flush=True,
                    )
        finally:
            for bench in workers.values():
                bench.close()
    print("\nmedians (polls/s; CPU microseconds per poll by process, medians):")
    for client in chosen:
        runs = ", ".join(f"{r:.0f}" for r in results[client])
        cpu = {k: median([c[k] for c in cpus[client]]) for k in cpus[client][0]}
        print(f"  {client:24s} {median(results[client]):7.0f}   (runs: {runs})   {_cpu_text(cpu)}")
    for worker in (c for c in chosen if c.startswith("worker")):
        for base in ("bare", "aiohttp"):
            if base in chosen:
                ratios = [w / b for w, b in zip(results[worker], results[base], strict=True)]
                each = ", ".join(f"{r:.2f}" for r in ratios)
                print(f"  ratio {worker}/{base}: median {median(ratios):.2f}   (per run: {each})")


if __name__ == "__main__":
    main()
