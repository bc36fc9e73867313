"""Retention soak: steady traffic for ``--minutes`` with retention at a few minutes; the database must
stay its size once the first retention period is over.

    .venv/bin/python -m bench.soak --minutes 30                 # PostgreSQL (the issue-19 run)
    .venv/bin/python -m bench.soak --minutes 3 --retention 40 --housekeeping 10 --sample 10   # smoke
    .venv/bin/python -m bench.soak --minutes 30 --database sqlite

Processes, all on 127.0.0.1, as the Procfile runs them: the Media Intelligence simulator
(``mi-bridge simulator --no-auto-create``), ``mi-bridge db upgrade``, one web process (gunicorn with
the product's gunicorn.conf.py, ``WEB_CONCURRENCY=1``) and ``--workers`` ``mi-bridge worker``
processes (default 2: two housekeepers racing, as in production), ``BRIDGE_ENV=production``. The
database is a fresh PostgreSQL database (``mi_bridge_bench_soak``, dropped at the end) or, with
``--database sqlite``, a file in a temporary directory. Retention: ``BRIDGE_RETENTION_DAYS`` =
``--retention`` seconds / 86,400 (default 180 s), ``BRIDGE_HOUSEKEEPING_INTERVAL`` = ``--housekeeping``
(default 30 s). Polling every 2 s backing off to 6 s; ``BRIDGE_RETRY_SCHEDULE=1,2,4`` (a delivery that
keeps failing is dead after ~7 s).

Traffic: an open-loop generator registers ``--rate`` watches per second (default 3) through the API
for the whole run, each on a new asset that it first scripts in the simulator. In every 20
registrations (shuffled): 9 complete (wait 0.5-3 s, analyse 3-30 s), 3 fail, 1 is cancelled, 3 expire
(pinned ``ANALYZING``, ``timeout_seconds`` 60, the minimum), 1 is stopped by ``DELETE`` 5-30 s after
registration, 1 ends in ``error`` (the asset exists in no generation), and 2 are a second watch on the
asset of the latest completing registration (shared asset rows). Targets: every watch has a signed
webhook to the soak's receiver (a real HTTP server in this process, verifying each signature with the
Standard Webhooks library); one in 3 also a ``slack_webhook`` to it; one in 10 a webhook that fails the
first attempt of each event (a retry); one in 40 a webhook that always fails (dead after its retries).
One in 5 watches subscribes to ``analysis.status_changed`` too. No ``Idempotency-Key`` is sent: keys
live 24 h whatever the retention (their table is sampled anyway).

Every ``--sample`` seconds (default 30): ``pg_database_size``, ``pg_total_relation_size`` and live/dead
tuples (``pg_stat_user_tables``) and an exact ``count(*)`` of every table, watches by state,
autovacuum runs; for SQLite the file sizes (db + WAL), pages in use and free; ``/metrics``'
``mi_bridge_pruned_rows_total``; the receiver's counts. Written as they come to
``bench/results/soak-<database>-<minutes>min.csv`` (one row per sample, flattened) and at the end
with the run's settings and summary to ``...json``.

Summary: "flat after the first retention period" is read from the sample at ``t_flat`` = retention +
90 s (the longest watch life: 60 s timeout plus polling) + one housekeeping interval, when the rows
kept have reached their steady number; the size at ``t_flat``, at the middle of the run and at the
end, the ratios end / ``t_flat`` and end / middle (the growth over the second half), and the
least-squares slope of the size after ``t_flat``.

Every process started here gets SIGTERM if this script dies (PR_SET_PDEATHSIG); Ctrl-C or SIGTERM
stops them, drops the database and removes the temporary directory (kept, with the logs, if the run
failed).
"""

from __future__ import annotations

import argparse
import base64
import csv
import heapq
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, free_port, fresh_postgres, machine, wait_for_port
from bench.load_held import children, start_web, wait_for_web
from bench.scale_out import check_alive, cpu_seconds, exit_cleanly_on_sigterm, start, stop

DB_NAME = "mi_bridge_bench_soak"
TOKEN = "soak-token-of-at-least-24-characters"  # noqa: S105 - the soak's own BRIDGE_API_TOKENS
ACCESS, SECRET = "soak-access", "soak-secret-key"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"mi-bridge-soak-secret-24b").decode()
WORKSPACE, PROJECT = "soak", "1"
#: The tables of issue 19's list, plus idempotency keys and the singleton state row.
MAIN_TABLES = (
    "watches",
    "events",
    "deliveries",
    "delivery_attempts",
    "status_history",
    "assets",
    "targets",
    "worker_heartbeats",
    "idempotency_keys",
)
#: One cycle of 20 registrations (shuffled per cycle).
MIX = (
    ["complete"] * 9
    + ["fail"] * 3
    + ["cancel"]
    + ["expire"] * 3
    + ["stop"]
    + ["error"]
    + ["share"] * 2
)
EXPIRE_TIMEOUT = 60.0  # the API's minimum timeout_seconds
LONGEST_LIFE = 90.0  # an expiring watch's 60 s plus polling and the deadline sweep
PRUNED_RE = re.compile(r'^mi_bridge_pruned_rows_total\{table="(\w+)"\} ([0-9.e+]+)$', re.M)


# --- the webhook receiver -------------------------------------------------------------------------


class Receiver:
    """Answers webhooks: ``/hook`` 200, ``/flaky`` 500 for the first attempt of each webhook-id then
    200, ``/dead`` always 500, ``/services/...`` (Slack-compatible) 200 ``ok``. Verifies every signed
    webhook and counts what arrived."""

    def __init__(self) -> None:
        from standardwebhooks import Webhook

        self.counts: Counter[str] = Counter()
        self.event_types: Counter[str] = Counter()
        self.seen: set[tuple[str, str]] = set()  # (path, webhook-id): an event goes to each target
        self.flaky_seen: set[str] = set()
        self.lock = threading.Lock()
        verifier = Webhook(WEBHOOK_SECRET)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = receiver.handle(self.path, body, headers, verifier)
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, path: str, body: bytes, headers: dict, verifier) -> tuple[int, bytes]:
        with self.lock:
            self.counts["requests"] += 1
            if path.startswith("/services/"):
                self.counts["slack_webhook"] += 1
                return 200, b"ok"
            try:
                event = verifier.verify(body, headers)
            except Exception:  # any failure to verify is counted, not raised
                self.counts["bad_signature"] += 1
                return 400, b"bad signature"
            self.counts["verified"] += 1
            webhook_id = headers.get("webhook-id", "")
            self.event_types[event.get("type", "?")] += 1
            if path == "/dead":
                self.counts["dead_500"] += 1
                return 500, b"always failing"
            if path == "/flaky" and webhook_id not in self.flaky_seen:
                self.flaky_seen.add(webhook_id)
                self.counts["flaky_500"] += 1
                return 500, b"first attempt fails"
            if (path, webhook_id) in self.seen:
                self.counts["duplicate_2xx"] += 1
            self.seen.add((path, webhook_id))
            self.counts["accepted"] += 1
            return 200, b"ok"

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {**self.counts, "event_types": dict(self.event_types)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the traffic ----------------------------------------------------------------------------------


class Traffic(threading.Thread):
    """Registers ``rate`` watches per second on a fixed schedule (open loop), scripting each asset in
    the simulator first, and stops the ``stop`` ones when their time comes."""

    def __init__(self, api: str, sim: str, receiver: str, rate: float, seed: int) -> None:
        super().__init__(daemon=True, name="traffic")
        self.api, self.sim, self.receiver, self.rate = api, sim, receiver, rate
        self.random = random.Random(seed)  # noqa: S311 - traffic, not secrets
        self.halt = threading.Event()
        self.kinds: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        self.stops: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.latest_completing: str | None = None
        self.slip = 0.0  # worst lateness of a registration behind its schedule (s)
        self.failure: str | None = None

    def run(self) -> None:
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {TOKEN}"
        self.control = requests.Session()
        cycle: list[str] = []
        t0 = time.monotonic()
        i = 0
        while not self.halt.is_set():
            due = t0 + i / self.rate
            while not self.halt.is_set():
                self._stop_due()
                wait = due - time.monotonic()
                if wait <= 0:
                    break
                self.halt.wait(min(wait, 0.2))
            if self.halt.is_set():
                break
            self.slip = max(self.slip, time.monotonic() - due)
            if not cycle:
                cycle = list(MIX)
                self.random.shuffle(cycle)
            try:
                self.register(i, cycle.pop())
            except requests.RequestException as exc:
                with self.lock:
                    self.answers[f"error {type(exc).__name__}"] += 1
            i += 1

    def _stop_due(self) -> None:
        now = time.monotonic()
        while self.stops and self.stops[0][0] <= now:
            _, watch_id = heapq.heappop(self.stops)
            answer = self.http.delete(f"{self.api}/api/v1/watches/{watch_id}", timeout=10)
            with self.lock:
                self.answers[f"DELETE {answer.status_code}"] += 1

    def register(self, i: int, kind: str) -> None:
        rnd = self.random
        asset = f"a{i:07d}"
        body: dict[str, Any] = {"workspace": WORKSPACE, "project_id": PROJECT, "asset_id": asset}
        outcome = {
            "complete": "ANALYZE_COMPLETED",
            "fail": "ANALYZE_FAIL",
            "cancel": "ANALYZE_CANCEL",
        }
        if kind == "share" and self.latest_completing is None:
            kind = "complete"
        if kind in outcome:
            schedule = {
                "wait_seconds": round(rnd.uniform(0.5, 3), 2),
                "analyze_seconds": round(rnd.uniform(3, 30), 2),
                "outcome": outcome[kind],
                "index_id": 1000 + i,
            }
            if kind == "fail":
                schedule["message"] = "영상 파싱 실패"
            self._sim_put(asset, schedule)
            if kind == "complete":
                self.latest_completing = asset
        elif kind in ("expire", "stop"):
            self._sim_put(asset, {"status": "ANALYZING"})
            if kind == "expire":
                body["timeout_seconds"] = EXPIRE_TIMEOUT
        elif kind == "share":
            body["asset_id"] = self.latest_completing
        # "error": the simulator has no such asset (no auto-create): 404 in every generation.
        targets: list[dict[str, Any]] = [
            {"type": "webhook", "url": f"{self.receiver}/hook", "secret": WEBHOOK_SECRET}
        ]
        if i % 3 == 0:
            targets.append({"type": "slack_webhook", "url": f"{self.receiver}/services/T0/B0/XX"})
        if i % 10 == 1:
            targets.append(
                {"type": "webhook", "url": f"{self.receiver}/flaky", "secret": WEBHOOK_SECRET}
            )
        if i % 40 == 7:
            targets.append(
                {"type": "webhook", "url": f"{self.receiver}/dead", "secret": WEBHOOK_SECRET}
            )
        body["targets"] = targets
        body["labels"] = {"soak": "1", "kind": kind, "n": str(i)}
        if i % 5 == 2:
            body["events"] = [
                "analysis.status_changed",
                "analysis.completed",
                "analysis.failed",
                "analysis.cancelled",
                "watch.expired",
                "watch.error",
            ]
        answer = self.http.post(f"{self.api}/api/v1/watches", json=body, timeout=10)
        with self.lock:
            self.kinds[kind] += 1
            self.answers[f"POST {answer.status_code}"] += 1
        if answer.status_code != 201:
            self.failure = f"POST {answer.status_code}: {answer.text[:300]}"
            return
        if kind == "stop":
            heapq.heappush(self.stops, (time.monotonic() + rnd.uniform(5, 30), answer.json()["id"]))

    def _sim_put(self, asset: str, body: dict[str, Any]) -> None:
        url = f"{self.sim}/_sim/assets/{WORKSPACE}/{PROJECT}/{asset}"
        self.control.put(url, json=body, timeout=10).raise_for_status()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"kinds": dict(self.kinds), "answers": dict(self.answers), "slip": self.slip}


# --- the database ---------------------------------------------------------------------------------


class PostgresProbe:
    def __init__(self, url: str) -> None:
        import psycopg

        self.connection = psycopg.connect(url, autocommit=True)

    def sample(self) -> dict[str, Any]:
        from psycopg import sql

        c = self.connection
        tables = {}
        for name, live, dead, size, autovacuums, autoanalyzes in c.execute(
            "SELECT relname, n_live_tup, n_dead_tup, pg_total_relation_size(relid),"
            " autovacuum_count, autoanalyze_count FROM pg_stat_user_tables ORDER BY relname"
        ).fetchall():
            count = c.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
            ).fetchone()[0]
            tables[name] = {
                "rows": count, "live_tup": live, "dead_tup": dead, "bytes": size,
                "autovacuums": autovacuums, "autoanalyzes": autoanalyzes,
            }  # fmt: skip
        states = dict(c.execute("SELECT state, count(*) FROM watches GROUP BY state").fetchall())
        return {
            "db_bytes": c.execute("SELECT pg_database_size(current_database())").fetchone()[0],
            "tables": tables,
            "watch_states": states,
        }

    def close(self) -> None:
        self.connection.close()


class SqliteProbe:
    def __init__(self, path: Path) -> None:
        self.path = path

    def sample(self) -> dict[str, Any]:
        c = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            names = [
                r[0]
                for r in c.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                    " ORDER BY name"
                )
            ]
            tables = {
                n: {"rows": c.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]}  # noqa: S608 - names from sqlite_master
                for n in names
            }
            page_size = c.execute("PRAGMA page_size").fetchone()[0]
            pages = c.execute("PRAGMA page_count").fetchone()[0]
            free = c.execute("PRAGMA freelist_count").fetchone()[0]
            states = dict(
                c.execute("SELECT state, count(*) FROM watches GROUP BY state").fetchall()
            )
        finally:
            c.close()
        wal = Path(f"{self.path}-wal")
        return {
            "db_bytes": self.path.stat().st_size,
            "wal_bytes": wal.stat().st_size if wal.exists() else 0,
            "used_bytes": (pages - free) * page_size,
            "free_bytes": free * page_size,
            "tables": tables,
            "watch_states": states,
        }

    def close(self) -> None:
        pass


def drop_postgres(name: str, timeout: float = 30.0) -> None:
    """Drop the soak's database; an autovacuum worker (not ours to end) may hold it for a moment."""
    import psycopg

    from bench.common import PG_ADMIN_URL

    deadline = time.monotonic() + timeout
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        while True:
            try:
                connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                return
            except psycopg.errors.InsufficientPrivilege:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


# --- sampling ---------------------------------------------------------------------------------------


def pruned_totals(api: str) -> dict[str, int]:
    try:
        text = requests.get(
            f"{api}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        ).text
    except requests.RequestException:
        return {}
    return {table: int(float(value)) for table, value in PRUNED_RE.findall(text)}


def flatten(sample: dict[str, Any]) -> dict[str, Any]:
    """One CSV row: scalars as they are, tables as ``<table>.<field>``."""
    row: dict[str, Any] = {}
    for key, value in sample.items():
        if key == "tables":
            for table, fields in value.items():
                for field, v in fields.items():
                    row[f"{table}.{field}"] = v
        elif isinstance(value, dict):
            for sub, v in value.items():
                if not isinstance(v, dict):
                    row[f"{key}.{sub}"] = v
        else:
            row[key] = value
    return row


class CsvLog:
    """Samples appended as they come; the header grows (rewritten) if a later sample has new columns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new or not self.path.exists():
            self.columns += new
            with self.path.open("w", newline="") as f:
                writer = csv.DictWriter(f, self.columns)
                writer.writeheader()
                writer.writerows(self.rows)
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(row)


# --- summary ----------------------------------------------------------------------------------------


def main_bytes(sample: dict[str, Any]) -> int:
    return sum(sample["tables"].get(t, {}).get("bytes", 0) for t in MAIN_TABLES)


def main_rows(sample: dict[str, Any]) -> int:
    return sum(sample["tables"].get(t, {}).get("rows", 0) for t in MAIN_TABLES)


def at_or_after(samples: list[dict[str, Any]], t: float) -> dict[str, Any]:
    return next((s for s in samples if s["t"] >= t), samples[-1])


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (units per minute) of (seconds, value) points."""
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return 60 * sxy / sxx if sxx else float("nan")


def summarize(samples: list[dict[str, Any]], t_flat: float, database: str) -> dict[str, Any]:
    end = samples[-1]
    flat = at_or_after(samples, t_flat)
    middle = at_or_after(samples, max(t_flat, end["t"] / 2))  # the second half: middle to end
    after = [s for s in samples if s["t"] >= flat["t"]]
    metrics = {
        "database bytes (pg_database_size / file)": lambda s: s["db_bytes"],
        "main tables bytes (pg_total_relation_size)": main_bytes,
        "main tables rows (count(*))": main_rows,
    }
    if database == "sqlite":
        metrics = {
            "database file bytes": lambda s: s["db_bytes"],
            "pages in use (bytes)": lambda s: s["used_bytes"],
            "main tables rows (count(*))": main_rows,
        }
    summary: dict[str, Any] = {"t_flat": flat["t"], "t_middle": middle["t"], "t_end": end["t"]}
    for label, get in metrics.items():
        values = [get(s) for s in after]
        mean = sum(values) / len(values)
        slope = slope_per_minute([(s["t"], get(s)) for s in after])
        summary[label] = {
            "at_t_flat": get(flat),
            "at_middle": get(middle),
            "at_end": get(end),
            "end_over_t_flat": get(end) / get(flat) if get(flat) else None,
            "end_over_middle": get(end) / get(middle) if get(middle) else None,
            "min_after_t_flat": min(values),
            "max_after_t_flat": max(values),
            "slope_per_minute": slope,
            "slope_percent_per_10_min": 1000 * slope / mean if mean else None,
        }
    return summary


def print_summary(summary: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    print(
        f"\nflat from t = {summary['t_flat']:.0f} s (first retention period over); middle "
        f"{summary['t_middle']:.0f} s; end {summary['t_end']:.0f} s"
    )
    for label, s in summary.items():
        if not isinstance(s, dict):
            continue
        print(
            f"  {label}: {s['at_t_flat']:,} at t_flat, {s['at_middle']:,} at middle, "
            f"{s['at_end']:,} at end; end/t_flat {s['end_over_t_flat']:.3f}, end/middle "
            f"{s['end_over_middle']:.3f}; range after t_flat {s['min_after_t_flat']:,}.."
            f"{s['max_after_t_flat']:,}; slope {s['slope_percent_per_10_min']:+.2f}% per 10 min"
        )
    end = samples[-1]
    print("  rows at the end:", {t: end["tables"].get(t, {}).get("rows") for t in MAIN_TABLES})
    print("  watches by state at the end:", end["watch_states"])
    print("  pruned (mi_bridge_pruned_rows_total):", end["pruned"])


def print_sample(s: dict[str, Any], database: str) -> None:
    rows = s["tables"]
    size = f"db {s['db_bytes'] / 1e6:7.2f} MB"
    if database == "postgresql":
        size += f", main tables {main_bytes(s) / 1e6:6.2f} MB"
    else:
        size += f", used {s['used_bytes'] / 1e6:6.2f} MB, wal {s['wal_bytes'] / 1e6:5.2f} MB"
    counts = " ".join(
        f"{t.split('_')[0][:6]}={rows.get(t, {}).get('rows', 0)}"
        for t in MAIN_TABLES
        if t != "idempotency_keys"
    )
    print(
        f"t={s['t']:6.0f}s {size}; rows {counts}; pruned watches "
        f"{s['pruned'].get('watches', 0)}; registered {sum(s['traffic']['kinds'].values())}",
        flush=True,
    )


# --- the run ----------------------------------------------------------------------------------------


def code_state() -> dict[str, Any]:
    """What code the processes run: the commit, uncommitted files under app/ (others edit the tree),
    and each app/ file's mtime (compared at the end: a change mid-run is reported)."""

    def git(*args: str) -> str:
        command = ["git", *args]
        found = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
        return found.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted": git("status", "--porcelain", "--untracked-files=all", "app").splitlines(),
        "mtimes": {
            str(p.relative_to(ROOT)): p.stat().st_mtime for p in (ROOT / "app").rglob("*.py")
        },
    }


def changed_files(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    old, new = before["mtimes"], after["mtimes"]
    return sorted(f for f in old.keys() | new.keys() if old.get(f) != new.get(f))


def scan_logs(log_dir: Path) -> dict[str, Any]:
    """Per process log: lines, housekeeping passes that removed rows, warnings, errors, tracebacks."""
    found: dict[str, Any] = {}
    for log in sorted(log_dir.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        found[log.stem] = {
            "lines": len(lines),
            "housekeeping_removed": sum("housekeeping removed" in line for line in lines),
            "warning": sum("WARNING" in line for line in lines),
            "error": sum("ERROR" in line or "CRITICAL" in line for line in lines),
            "traceback": sum("Traceback" in line for line in lines),
            "last_problem": next(
                (ln[:400] for ln in reversed(lines) if "ERROR" in ln or "Traceback" in ln), None
            ),
            "warnings_seen": list(dict.fromkeys(ln[:300] for ln in lines if "WARNING" in ln))[:5],
        }
    return found


def run(args: argparse.Namespace, tmp: Path, out: Path) -> dict[str, Any]:
    retention_days = args.retention / 86400
    t_flat = args.retention + LONGEST_LIFE + args.housekeeping
    postgres = args.database == "postgresql"
    url = fresh_postgres(DB_NAME) if postgres else f"sqlite:///{tmp / 'soak.db'}"
    port, sim_port = free_port(), free_port()
    api, sim = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{sim_port}"
    env = {
        **os.environ,
        "BRIDGE_ENV": "production",
        "SECRET_KEY": "soak-secret-of-at-least-thirty-two-chars",
        "BRIDGE_API_TOKENS": TOKEN,
        "DATABASE_URL": url,
        "MI_API_URL": sim,
        "NCP_ACCESS_KEY": ACCESS,
        "NCP_SECRET_KEY": SECRET,
        "BRIDGE_POLL_INTERVAL": "2",
        "BRIDGE_POLL_MAX_INTERVAL": "6",
        "BRIDGE_RETRY_SCHEDULE": "1,2,4",
        "BRIDGE_RETENTION_DAYS": repr(retention_days),
        "BRIDGE_HOUSEKEEPING_INTERVAL": str(args.housekeeping),
        "BRIDGE_ALLOW_PRIVATE_URLS": "true",
        "BRIDGE_EMBEDDED_WORKER": "false",
        "WEB_CONCURRENCY": "1",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    settings = {
        k: env[k]
        for k in env
        if k.startswith(("BRIDGE_", "MI_", "WEB_")) and k != "BRIDGE_API_TOKENS"
    }
    mib = str(ROOT / ".venv" / "bin" / "mi-bridge")
    processes: list[subprocess.Popen] = []
    receiver = Receiver()
    traffic: Traffic | None = None
    probe: PostgresProbe | SqliteProbe | None = None
    samples: list[dict[str, Any]] = []
    csv_log = CsvLog(Path(f"{out}.csv"))
    started_code = code_state()
    try:
        processes.append(
            start([mib, "simulator", "--port", str(sim_port), "--no-auto-create"], env, tmp, "sim")
        )
        wait_for_port(sim_port)
        upgrade = subprocess.run(  # noqa: S603 - our own CLI
            [mib, "db", "upgrade"], env=env, cwd=tmp, capture_output=True, text=True, check=False
        )
        if upgrade.returncode:
            raise RuntimeError(f"mi-bridge db upgrade failed:\n{upgrade.stdout}{upgrade.stderr}")
        processes.append(start_web(env, tmp, port))
        worker_env = {**env, "LOG_LEVEL": "INFO"}  # housekeeping passes are logged at INFO
        workers = [
            start([mib, "worker"], worker_env, tmp, f"worker{i}") for i in range(args.workers)
        ]
        processes += workers
        wait_for_web(api, processes, tmp)
        probe = (
            PostgresProbe(url) if args.database == "postgresql" else SqliteProbe(tmp / "soak.db")
        )
        traffic = Traffic(api, sim, receiver.url, args.rate, args.seed)
        t0 = time.monotonic()
        traffic.start()
        duration = args.minutes * 60
        next_sample = t0
        while True:
            check_alive(processes, tmp)
            if traffic.failure:
                raise RuntimeError(f"registration refused: {traffic.failure}")
            sample = {
                "t": round(time.monotonic() - t0, 1),
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                **probe.sample(),
                "pruned": pruned_totals(api),
                "receiver": receiver.snapshot(),
                "traffic": traffic.snapshot(),
            }
            samples.append(sample)
            csv_log.add(flatten(sample))
            print_sample(sample, args.database)
            if sample["t"] >= duration:
                break
            next_sample = min(next_sample + args.sample, t0 + duration)
            time.sleep(max(0.0, next_sample - time.monotonic()))
        traffic.halt.set()
        traffic.join(15)
        cpu = {
            "web": sum(
                cpu_seconds(p) or 0 for p in [processes[1].pid, *children(processes[1].pid)]
            ),
            "workers": sum(cpu_seconds(w.pid) or 0 for w in workers),
            "simulator": cpu_seconds(processes[0].pid) or 0,
            "soak script": sum(os.times()[:2]),
        }
    finally:
        if traffic is not None:
            traffic.halt.set()
        if probe is not None:
            probe.close()
        stop(list(reversed(processes)))
        receiver.close()
        if args.database == "postgresql":
            drop_postgres(DB_NAME)
    ended_code = code_state()
    summary = summarize(samples, t_flat, args.database)
    print_summary(summary, samples)
    window = samples[-1]["t"]
    print(
        "  CPU (cores over the run): "
        + ", ".join(f"{k} {v / window:.2f}" for k, v in cpu.items())
        + f"; registrations behind schedule at worst {traffic.slip:.2f} s"
    )
    print("  receiver:", receiver.snapshot())
    print("  traffic:", traffic.snapshot())
    logs = scan_logs(tmp)
    print("  logs:", {name: {k: v for k, v in d.items() if v} for name, d in logs.items()})
    changed = changed_files(started_code, ended_code)
    if changed:
        print(f"  note: {len(changed)} files under app/ changed during the run (the processes ran")
        print(f"  the code on disk when they started): {', '.join(changed)}")
    started_code.pop("mtimes")
    return {
        "command": " ".join([".venv/bin/python -m bench.soak", *sys.argv[1:]]),
        "machine": machine(),
        "load_average_at_start": args.load_at_start,
        "database": args.database,
        "settings": settings,
        "args": {k: v for k, v in vars(args).items() if k != "load_at_start"},
        "t_flat_definition": "retention + 90 s (longest watch life) + one housekeeping interval",
        "summary": summary,
        "cpu_seconds": cpu,
        "code_at_start": started_code,
        "app_files_changed_during_run": changed,
        "logs": logs,
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30, help="length of the traffic")
    parser.add_argument("--rate", type=float, default=3, help="registrations per second")
    parser.add_argument("--retention", type=float, default=180, help="retention in seconds")
    parser.add_argument("--housekeeping", type=float, default=30, help="housekeeping interval, s")
    parser.add_argument("--sample", type=float, default=30, help="seconds between samples")
    parser.add_argument("--workers", type=int, default=2, help="mi-bridge worker processes")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--seed", type=int, default=19, help="the traffic's random seed")
    parser.add_argument(
        "--out", help="results path without suffix (default bench/results/soak-...)"
    )
    args = parser.parse_args()
    args.load_at_start = os.getloadavg()
    name = f"soak-{args.database}-{args.minutes:g}min"
    out = Path(args.out) if args.out else ROOT / "bench" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    exit_cleanly_on_sigterm()
    # Ctrl-C ends the run through the finally blocks, even started in the background by a shell
    # (which starts background jobs with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    budget = int(args.minutes * 60 + 600)

    def out_of_time(_signum: int, _frame: object) -> None:
        raise RuntimeError(f"soak: over its {budget} s budget")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(budget)
    print(f"machine: {machine()}; load average at start {args.load_at_start}")
    print(
        f"soak on {args.database}: {args.rate:g} registrations/s for {args.minutes:g} min, "
        f"retention {args.retention:g} s, housekeeping every {args.housekeeping:g} s, "
        f"{args.workers} workers; samples every {args.sample:g} s -> {out}.csv/.json",
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="mi-bench-soak-"))
    ok = False
    try:
        result = run(args, tmp, out)
        Path(f"{out}.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
        ok = True
    finally:
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"failed: logs kept in {tmp}", file=sys.stderr)


if __name__ == "__main__":
    main()
