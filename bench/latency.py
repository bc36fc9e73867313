"""Detection-to-notification latency: simulator flips an asset to terminal -> webhook arrives.

    .venv/bin/python bench/latency.py [--watches 1000] [--interval 10] [--spread 40] [--runs 3]

Per run: the simulator (``mi-bridge simulator``, its own process) holds N assets ANALYZING, each
scheduled to turn ANALYZE_COMPLETED at a time spread uniformly over ``--spread`` seconds after a warm-up
of one poll interval; a fresh SQLite database holds one watch per asset (one webhook target each, at a
receiver in this process on 127.0.0.1, every watch already seen ANALYZING and due now); one real
``mi-bridge worker`` process polls (BRIDGE_POLL_INTERVAL = BRIDGE_POLL_MAX_INTERVAL = ``--interval``,
so the poll interval is fixed) and delivers. Latency of a watch = arrival of its analysis.completed
webhook - the simulator's flip time. Prints p50/p90/p99/max, also as multiples of the interval.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from bench.common import (
    ROOT,
    bench_app,
    free_port,
    machine,
    median,
    seed,
    wait_for_port,
)

ACCESS, SECRET = "bench-access", "bench-secret-key"


class Receiver:
    """Records the arrival time (wall clock) of each watch's first analysis.completed webhook."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                event = json.loads(body)
                if event.get("type") == "analysis.completed":
                    with receiver.lock:
                        receiver.arrivals.setdefault(event["data"]["watch"]["id"], arrived)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def one_run(watches: int, interval: float, spread: float, tmp: Path) -> dict:
    sim_port = free_port()
    env = {**os.environ, "NCP_ACCESS_KEY": ACCESS, "NCP_SECRET_KEY": SECRET}
    mib = str(ROOT / ".venv" / "bin" / "mi-bridge")
    simulator = subprocess.Popen(  # noqa: S603 - our own simulator
        [mib, "simulator", "--port", str(sim_port)], env=env, cwd=tmp,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    receiver = Receiver()
    worker = None
    try:
        wait_for_port(sim_port)
        sim = f"http://127.0.0.1:{sim_port}"
        database_url = f"sqlite:///{tmp / 'latency.db'}"
        app = bench_app(
            database_url, sim, BRIDGE_POLL_INTERVAL=interval, BRIDGE_POLL_MAX_INTERVAL=interval,
            BRIDGE_ALLOW_PRIVATE_URLS=True, NCP_ACCESS_KEY=ACCESS, NCP_SECRET_KEY=SECRET,
        )  # fmt: skip
        seed(app, watches, target_url=receiver.url)
        from app.db import db

        with app.app_context():
            watch_ids = [f"wch_bench{i:017d}" for i in range(watches)]
            db.session.execute(
                __import__("sqlalchemy").text("UPDATE assets SET interval = :i"), {"i": interval}
            )
            db.session.commit()
            db.engine.dispose()
        # Simulator assets: ANALYZING now, completed at a spread of times after a warm-up.
        flips: dict[str, float] = {}
        control = requests.Session()
        for i in range(watches):
            delay = interval + spread * (i + 0.5) / watches
            put_at = time.time()
            answer = control.put(
                f"{sim}/_sim/assets/bench/1/a{i:07d}",
                json={"wait_seconds": 0, "analyze_seconds": delay, "outcome": "ANALYZE_COMPLETED"},
                timeout=5,
            )
            answer.raise_for_status()
            flips[watch_ids[i]] = put_at + delay
        control.close()
        worker_env = {
            **os.environ,
            "BRIDGE_ENV": "development", "SECRET_KEY": "bench-secret-of-at-least-thirty-two-chars",
            "BRIDGE_API_TOKENS": "bench-token-of-at-least-24-chars", "DATABASE_URL": database_url,
            "MI_API_URL": sim, "NCP_ACCESS_KEY": ACCESS, "NCP_SECRET_KEY": SECRET,
            "BRIDGE_POLL_INTERVAL": str(interval), "BRIDGE_POLL_MAX_INTERVAL": str(interval),
            "BRIDGE_ALLOW_PRIVATE_URLS": "true", "MI_MAX_RPS": "1000000", "LOG_LEVEL": "WARNING",
        }  # fmt: skip
        worker = subprocess.Popen(  # noqa: S603 - our own worker
            [mib, "worker"], env=worker_env, cwd=tmp,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.time() + interval + spread + 3 * interval + 20
        while time.time() < deadline and len(receiver.arrivals) < watches:
            time.sleep(0.5)
        latencies = [receiver.arrivals[w] - flips[w] for w in watch_ids if w in receiver.arrivals]
        # The split: flip -> detected (the poll that saw it applied) -> webhook arrived.
        with app.app_context():
            finished = dict(
                db.session.execute(
                    __import__("sqlalchemy").text("SELECT id, finished_at FROM watches")
                ).all()
            )
            db.engine.dispose()
        detected = {w: _epoch(finished[w]) for w in watch_ids if finished.get(w) is not None}
        return {
            "latencies": latencies,
            "missing": watches - len(latencies),
            "detection": [detected[w] - flips[w] for w in detected],
            "notification": [receiver.arrivals[w] - detected[w] for w in detected
                             if w in receiver.arrivals],
        }  # fmt: skip
    finally:
        for process in (worker, simulator):
            if process is not None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        receiver.close()


def _epoch(value) -> float:
    """A database timestamp (aware, or naive UTC text from SQLite) as epoch seconds."""
    from datetime import UTC, datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--spread", type=float, default=40.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"{args.watches} watches, poll interval fixed at {args.interval:g} s, flips spread over "
          f"{args.spread:g} s")  # fmt: skip
    p50s, p99s = [], []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as tmp:
            result = one_run(args.watches, args.interval, args.spread, Path(tmp))
        lat = result["latencies"]
        p50, p90, p99 = (percentile(lat, q) for q in (50, 90, 99))
        p50s.append(p50)
        p99s.append(p99)
        print(
            f"run {run}: {len(lat)} delivered, {result['missing']} missing; latency p50 {p50:.2f} s "
            f"({p50 / args.interval:.2f} x interval), p90 {p90:.2f} s, p99 {p99:.2f} s "
            f"({p99 / args.interval:.2f} x interval), max {max(lat, default=float('nan')):.2f} s",
            flush=True,
        )
        for part in ("detection", "notification"):
            values = result[part]
            print(
                f"       {part}: p50 {percentile(values, 50):.2f} s, p99 "
                f"{percentile(values, 99):.2f} s, max {max(values, default=float('nan')):.2f} s",
                flush=True,
            )
    print(
        f"\nmedian of runs: p50 {median(p50s):.2f} s, p99 {median(p99s):.2f} s "
        f"(goal: p99 <= interval + 1 s = {args.interval + 1:g} s)"
    )


if __name__ == "__main__":
    main()
