"""Polling throughput of one worker, beside a bare requests loop and aiohttp, against the same far end.

    .venv/bin/python bench/poll_throughput.py [--assets 10000] [--runs 3] [--only worker-sqlite,...]

The far end is nginx (Debian's package) serving the simulator's status JSON at the status paths, so it
is not the bottleneck. Each repetition runs, one after the other in the same process:

- ``bare``: a ``requests.Session`` (pool of 16) on 16 threads doing GET + JSON parsing, N requests;
- ``aiohttp``: one event loop with 64 requests in flight, GET + JSON parsing, N requests;
- ``worker-sqlite`` / ``worker-postgres``: N due assets (one watch and one webhook target each, already
  seen ANALYZING) in a fresh database; ``poll_once`` of one ``WorkerRuntime`` in a loop until nothing is
  due (BRIDGE_POLL_INTERVAL=3600 s so each asset is polled exactly once).

It prints polls (requests) per second of each, per repetition and as medians, and the ratios worker/bare
and worker/aiohttp computed per repetition (side by side) and then their median.
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
    bench_app,
    due_count,
    fresh_postgres,
    machine,
    make_all_due,
    median,
    nginx_far_end,
    on_threads,
    seed,
    status_urls,
)

CLIENTS = ("bare", "aiohttp", "worker-sqlite", "worker-postgres")
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


class WorkerBench:
    """A seeded database and one WorkerRuntime, reusable across repetitions."""

    def __init__(self, kind: str, far_end: str, assets: int, workdir: Path) -> None:
        url = f"sqlite:///{workdir / 'bench.db'}" if kind == "worker-sqlite" else fresh_postgres()
        started = time.perf_counter()
        self.app = bench_app(url, far_end)
        seed(self.app, assets)
        print(
            f"  [{kind}] seeded {assets} assets in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        from app.worker.runtime import WorkerRuntime

        self.runtime = WorkerRuntime.from_app(self.app)
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
        return polled / elapsed

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
    args = parser.parse_args()
    chosen = [c for c in CLIENTS if c in args.only.split(",")]
    print(f"machine: {machine()}")
    print(
        f"assets/requests per run: {args.assets}; runs: {args.runs}; clients: {', '.join(chosen)}"
    )
    results: dict[str, list[float]] = {c: [] for c in chosen}
    with nginx_far_end(args.nginx_workers) as far_end, tempfile.TemporaryDirectory() as tmp:
        print(f"far end: nginx at {far_end} ({args.nginx_workers} worker process)")
        urls = status_urls(far_end, args.assets)
        workers = {
            kind: WorkerBench(kind, far_end, args.assets, Path(tmp))
            for kind in chosen
            if kind.startswith("worker")
        }
        try:
            for run in range(1, args.runs + 1):
                for client in chosen:
                    if client == "bare":
                        rate = run_bare(urls)
                    elif client == "aiohttp":
                        rate = run_aiohttp(urls)
                    else:
                        rate = workers[client].run()
                    results[client].append(rate)
                    print(f"run {run} {client:16s} {rate:9.0f} polls/s", flush=True)
        finally:
            for bench in workers.values():
                bench.close()
    print("\nmedians (polls/s):")
    for client in chosen:
        runs = ", ".join(f"{r:.0f}" for r in results[client])
        print(f"  {client:16s} {median(results[client]):9.0f}   (runs: {runs})")
    for worker in (c for c in chosen if c.startswith("worker")):
        for base in ("bare", "aiohttp"):
            if base in chosen:
                ratios = [w / b for w, b in zip(results[worker], results[base], strict=True)]
                each = ", ".join(f"{r:.2f}" for r in ratios)
                print(f"  ratio {worker}/{base}: median {median(ratios):.2f}   (per run: {each})")


if __name__ == "__main__":
    main()
