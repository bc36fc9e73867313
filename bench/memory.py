"""Worker RSS with 1,000 / 10,000 / 100,000 active watches (rows present, most not due).

    .venv/bin/python bench/memory.py [--watches 1000,10000,100000] [--db sqlite,postgres] [--runs 3]

For each size and database: a fresh database seeded with N assets, each with one watching watch and one
webhook target, of which ``--due`` (default 1%, at least 100) are due now and the rest in an hour; then a
real ``mi-bridge worker`` process (APScheduler, 1 s ticks) against the nginx far end. Its RSS (VmRSS) is
sampled every 0.5 s for ``--seconds`` (default 8: several poll, delivery and heartbeat ticks); the
figure is the RSS at the end and the peak. The due rows make the first ticks do real polling work.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    bench_app,
    fresh_postgres,
    machine,
    median,
    nginx_far_end,
    rss_mb,
    seed,
    worker_env,
)


def measure(database_url: str, far_end: str, watches: int, due: int, seconds: float) -> dict:
    """Seed, start a worker process, sample its RSS; returns end/peak RSS and polls done."""
    app = bench_app(database_url, far_end)
    seed(app, watches, due=due)
    from app.db import db

    with app.app_context():
        db.engine.dispose()
    env = worker_env(database_url, far_end, 3600)
    process = subprocess.Popen(  # noqa: S603 - our own worker
        [str(ROOT / ".venv" / "bin" / "mi-bridge"), "worker"],
        env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    samples: list[float] = []
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if process.poll() is not None:
                raise RuntimeError(f"worker exited: {process.stderr.read().decode()[-2000:]}")
            samples.append(rss_mb(process.pid))
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    from sqlalchemy import func, select

    from app.models import Asset

    with app.app_context():
        polled = db.session.scalar(
            select(func.count()).select_from(Asset).where(Asset.poll_count > 1)
        )
        db.engine.dispose()
    return {"end": samples[-1], "peak": max(samples), "polled": int(polled or 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", default="1000,10000,100000")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--due", type=float, default=0.01, help="share of rows due at start")
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.watches.split(",")]
    databases = args.db.split(",")
    print(f"machine: {machine()}")
    results: dict[tuple[str, int], list[dict]] = {}
    with nginx_far_end() as far_end:
        for run in range(1, args.runs + 1):
            for database in databases:
                for size in sizes:
                    due = max(100, int(size * args.due))
                    with tempfile.TemporaryDirectory() as tmp:
                        url = (
                            f"sqlite:///{tmp}/bench.db"
                            if database == "sqlite"
                            else fresh_postgres()
                        )
                        figures = measure(url, far_end, size, due, args.seconds)
                    results.setdefault((database, size), []).append(figures)
                    print(
                        f"run {run} {database:8s} {size:7d} watches ({due} due): RSS end "
                        f"{figures['end']:6.1f} MB, peak {figures['peak']:6.1f} MB, "
                        f"{figures['polled']} assets polled",
                        flush=True,
                    )
    print("\nmedians (MB):")
    for (database, size), runs in results.items():
        ends = [r["end"] for r in runs]
        peaks = [r["peak"] for r in runs]
        print(
            f"  {database:8s} {size:7d} watches: RSS end {median(ends):6.1f}, peak "
            f"{median(peaks):6.1f}   (end per run: {', '.join(f'{e:.1f}' for e in ends)})"
        )


if __name__ == "__main__":
    main()
