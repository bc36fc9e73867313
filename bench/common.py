"""Shared pieces of the benchmarks: a fast far end (nginx), fresh databases, seeded rows, statistics.

Everything listens on and talks to 127.0.0.1 only. Nothing here is imported by the product.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql://mi_bridge:mi_bridge@127.0.0.1:5432/postgres"
PG_BENCH_DB = "mi_bridge_bench"
PG_BENCH_URL = f"postgresql://mi_bridge:mi_bridge@127.0.0.1:5432/{PG_BENCH_DB}"

#: What the simulator answers for an asset still being analysed (code as a string, like the docs).
STATUS_JSON = {
    "code": "0",
    "message": "success",
    "result": {"status": "ANALYZING", "analyzeStatusMessage": "analyzing"},
}

NGINX_CONF = """
worker_processes {workers};
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    server {{
        listen 127.0.0.1:{port};
        location ~ ^/api/v1/workspaces/.*/(analyze-status|index/status)$ {{
            root {dir}/www;
            default_type application/json;
            try_files /status.json =404;
        }}
        location / {{ return 404; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def nginx_far_end(workers: int = 1) -> Iterator[str]:
    """nginx (Debian's package) serving the status JSON at the status paths; yields its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    directory = Path(tempfile.mkdtemp(prefix="mi-bench-nginx-"))
    (directory / "www").mkdir()
    (directory / "tmp").mkdir()
    (directory / "www" / "status.json").write_text(json.dumps(STATUS_JSON))
    directory.chmod(0o755)
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=directory, port=port, workers=workers))
    process = subprocess.Popen([binary, "-c", str(conf), "-p", str(directory)])  # noqa: S603 - our own nginx
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def status_urls(base_url: str, count: int) -> list[str]:
    """The status URLs of ``count`` distinct assets (video-assets generation, like the worker's)."""
    return [
        f"{base_url}/api/v1/workspaces/bench/projects/1/video-assets/a{i:07d}/analyze-status"
        for i in range(count)
    ]


def fresh_postgres(name: str = PG_BENCH_DB) -> str:
    """Drop and recreate the database ``name`` (one per benchmark script); returns its URL."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    return PG_BENCH_URL.rsplit("/", 1)[0] + f"/{name}"


def bench_app(database_url: str, far_end: str, **overrides: Any):
    """A migrated app on ``database_url`` whose upstream is ``far_end``; polls once per asset."""
    from flask_migrate import upgrade

    from app.factory import create_app

    config = {
        "BRIDGE_ENV": "development",
        "BRIDGE_API_TOKENS": "bench-token-of-at-least-24-chars",
        "SECRET_KEY": "bench-secret-of-at-least-thirty-two-chars",
        "DATABASE_URL": database_url,
        "MI_API_URL": far_end,
        "NCP_ACCESS_KEY": "bench-access",
        "NCP_SECRET_KEY": "bench-secret-key",
        "BRIDGE_POLL_INTERVAL": 3600,
        "BRIDGE_POLL_MAX_INTERVAL": 7200,
        "BRIDGE_LEASE_SECONDS": 60,
        # The default (100 requests/s) would be the bottleneck: lift it to measure the worker itself.
        "MI_MAX_RPS": 1_000_000,
        "LOG_LEVEL": "WARNING",
        **overrides,
    }
    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


def worker_env(database_url: str, far_end: str, interval: float, **extra: str) -> dict[str, str]:
    """The environment of a bridge process: fixed poll interval, upstream ceiling lifted."""
    return {
        **os.environ,
        "BRIDGE_ENV": "development",
        "SECRET_KEY": "bench-secret-of-at-least-thirty-two-chars",
        "BRIDGE_API_TOKENS": "bench-token-of-at-least-24-chars",
        "DATABASE_URL": database_url,
        "MI_API_URL": far_end,
        "NCP_ACCESS_KEY": "bench-access",
        "NCP_SECRET_KEY": "bench-secret-key",
        # Equal bounds: the interval never grows, so every asset is due exactly every `interval` s.
        "BRIDGE_POLL_INTERVAL": str(interval),
        "BRIDGE_POLL_MAX_INTERVAL": str(interval),
        "BRIDGE_EMBEDDED_WORKER": "false",
        # 100 requests/s per process is a deliberate upstream ceiling: lifted to measure the bridge.
        "MI_MAX_RPS": "1000000",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


#: Standard Webhooks secret: whsec_ + base64 of 24 bytes.
WEBHOOK_SECRET = "whsec_" + __import__("base64").b64encode(b"mi-bridge-bench-secret!!").decode()

DEFAULT_EVENTS = [
    "analysis.completed",
    "analysis.failed",
    "analysis.cancelled",
    "watch.expired",
    "watch.error",
]


def seed(
    app,
    count: int,
    due: int | None = None,
    chunk: int = 5000,
    target_url: str = "https://hooks.example.test/in",
) -> None:
    """Insert ``count`` assets, each with one watching watch and one webhook target.

    The first ``due`` assets (all by default) are due now; the rest are due in an hour. Every asset was
    already seen ``ANALYZING`` (the steady state: the poll observes no change).
    """
    from sqlalchemy import insert, text

    from app.db import db
    from app.models import Asset, Target, Watch

    due = count if due is None else due
    now = datetime.now(UTC)
    with app.app_context():
        for start in range(0, count, chunk):
            stop = min(count, start + chunk)
            assets, watches, targets = [], [], []
            for i in range(start, stop):
                asset_id = f"a{i:07d}"
                assets.append(
                    {
                        "pk": i + 1, "workspace": "bench", "project_id": "1", "asset_id": asset_id,
                        "api": "video-assets", "status": "ANALYZING", "message": "analyzing",
                        "interval": 3600.0,
                        "next_poll_at": now - timedelta(seconds=1) if i < due
                        else now + timedelta(hours=1),
                        "poll_count": 1, "consecutive_errors": 0, "created_at": now,
                        "updated_at": now,
                    }
                )  # fmt: skip
                watch_id = f"wch_bench{i:017d}"
                watches.append(
                    {
                        "id": watch_id, "state": "watching", "workspace": "bench",
                        "project_id": "1", "asset_id": asset_id, "api": "video-assets",
                        "asset_pk": i + 1, "status": "ANALYZING", "labels": {},
                        "events": DEFAULT_EVENTS, "created_at": now - timedelta(minutes=1),
                        "updated_at": now, "deadline_at": now + timedelta(days=3),
                        "poll_count": 1,
                    }
                )  # fmt: skip
                targets.append(
                    {
                        "id": f"tgt_bench{i:017d}", "watch_id": watch_id, "position": 0,
                        "type": "webhook", "url": target_url, "secret": WEBHOOK_SECRET, "disabled": False,
                        "created_at": now,
                    }
                )  # fmt: skip
            db.session.execute(insert(Asset), assets)
            db.session.execute(insert(Watch), watches)
            db.session.execute(insert(Target), targets)
            db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(
                text("SELECT setval(pg_get_serial_sequence('assets', 'pk'), :n)"), {"n": count}
            )
            db.session.commit()
        # Statistics as autovacuum keeps them in a running service: a bulk load just now would
        # otherwise be planned as the empty tables the planner last saw.
        with db.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
        db.session.remove()


def make_all_due(app) -> int:
    """Make every asset due again (for the next repetition); returns how many."""
    from sqlalchemy import update

    from app.db import db
    from app.models import Asset

    with app.app_context():
        result = db.session.execute(
            update(Asset).values(
                next_poll_at=datetime.now(UTC) - timedelta(seconds=1),
                lease_owner=None,
                lease_expires_at=None,
                interval=3600.0,
            )
        )
        db.session.commit()
        db.session.remove()
        return result.rowcount


def due_count(app) -> int:
    from sqlalchemy import func, select

    from app.db import db
    from app.models import Asset

    with app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(Asset).where(Asset.next_poll_at <= datetime.now(UTC))
        )
        db.session.remove()
        return int(count or 0)


def failed_poll_count(app) -> int:
    """Assets whose latest poll failed (a benchmark's polls must all have been answered)."""
    from sqlalchemy import func, select

    from app.db import db
    from app.models import Asset

    with app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(Asset).where(Asset.last_error.is_not(None))
        )
        db.session.remove()
        return int(count or 0)


def on_threads(items: list[str], work, threads: int) -> float:
    """Run ``work(share)`` for ``threads`` interleaved shares of ``items`` at once; items per second."""
    import threading

    parts = [items[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=work, args=(part,)) for part in parts]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(items) / (time.perf_counter() - started)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rss_mb(pid: int | None = None) -> float:
    """Resident set size in MB (VmRSS from /proc)."""
    path = f"/proc/{pid or os.getpid()}/status"
    for line in Path(path).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of one process so far (``/proc/<pid>/stat``; 0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds_named(name: str) -> float:
    """CPU seconds so far of every process whose command name starts with ``name`` (``postgres``:
    the server's backends and helpers; ``nginx``: the far end)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "comm").read_text()
            except OSError:
                continue
            if command.startswith(name):
                total += cpu_seconds(int(entry.name))
    return total


def machine() -> str:
    """One line describing this machine (CPU model, cores, memory, Python)."""
    import platform

    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return (
        f"{model}, {os.cpu_count()} cores, {mem_kb / 1048576:.1f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
