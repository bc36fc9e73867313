"""A burst of deliveries: N analyses finishing at once, drained by 1 and 2 worker processes.

    .venv/bin/python bench/delivery_burst.py [--events 10000] [--quick] [--cases webhook-1,...]
                                             [--db postgres,sqlite] [--workers 1,2]
                                             [--max-drain 240] [--max-drain-one-lane 120]
                                             [--profile FILE] [--profile-mode gil|idle] [--statements]
                                             [--claim-cost]

Issue 24, item 3. About 16 minutes with the defaults on 2 cores (``--quick``: 1,000 events, ~3.5).

Seeding (once per database: PostgreSQL ``mi_bridge_bench_burst``, dropped and recreated, and a SQLite
file; both migrated with the real migrations). Per case, endpoints are made by
``app.endpoints.actions.create_endpoint`` from validated ``/api/v1/endpoints`` bodies; N completed
watches are bulk-inserted, each with one target that references an endpoint (the row
``build_target`` makes for an ``{"endpoint": ...}`` reference), and each watch gets one
``analysis.completed`` event through ``app.outbox.emit.emit_event``, as the poll that saw the
analysis complete writes it: one delivery per target, in the endpoint's lane (``lane`` = endpoint id),
so each endpoint receives its events in event order. Every delivery is parked (due in a year).

Cases:

- ``webhook-1``: one webhook endpoint receives all N events (one lane: strictly one after another);
- ``webhook-100``: 100 webhook endpoints, event i to endpoint i mod 100 (100 lanes of N/100);
- ``slack-100``: 100 ``slack`` endpoints (100 channels), event i to i mod 100, through the fake Slack
  of the tests (``tests/fake_slack.py``: tokens, channels, threads and Block Kit checked), two
  ``chat.postMessage`` calls per delivery (the message, then the outcome as a thread reply).

The receiver is one process of its own on 127.0.0.1: an aiohttp server on uvloop for the webhooks
(answers ``200 ok`` at once; verifies every Standard Webhooks signature; records, per endpoint path,
the ``webhook-id`` of each request in arrival order) and the fake Slack on a thread beside it, its
connections set ``TCP_NODELAY`` (``http.server`` writes headers and body apart, and Nagle's algorithm
with the client's delayed ACK would add 40 ms to every call: a sequential loop did 11 calls/s).

A worker drain: K real ``mi-bridge worker`` processes (1 s ticks, 16 sends in flight each,
``DELIVERY_CONCURRENCY``) are started and the script waits for their heartbeats, so start-up is not
measured; then one UPDATE makes the case's N deliveries due (t0), and the pending count is sampled
every 0.2 s until none is left, or until a cut-off (``--max-drain``; ``--max-drain-one-lane`` for
``webhook-1``, whose single lane is sent one chain at a time: before chains, one delivery per claim,
a full drain took many minutes)
after which the drain is reported as not drained, with the rate of what was sent. Drain time = t0
to the last recorded attempt (``delivery_attempts.at``); deliveries/s = N / drain time (the wait
for the workers' next tick, under 1 s, included, reported as "first after"); per worker = that / K.
The script then checks that every delivery succeeded at its first attempt without error, that the
receiver saw every request with a valid signature, and that **each endpoint received its events in
event order** (violations: arrivals of an event after a later
event of the same endpoint, plus missing or repeated ones; 0 expected). Worker CPU per delivery is
utime + stime from ``/proc``. The deliveries are parked again (attempts deleted, Slack ts cleared,
``VACUUM ANALYZE`` on PostgreSQL) before the next drain.

Baselines, measured in the same run just before each case's drains, against the same receiver and
the same endpoint paths, with the same N event bodies read from the database (not timed):

- ``requests x1``: one ``requests.Session``, one POST after another;
- ``requests x16``: one ``requests.Session`` (``pool_maxsize=16``) shared by 16 threads, the worker's
  ``DELIVERY_CONCURRENCY``;
- ``aiohttp x64``: one event loop, ``TCPConnector(limit=64)``, 64 coroutines.

Webhook baselines sign each request as the product does (``app.notify.webhook.build_payload``: the
stored body byte for byte, ``webhook-id``/``-timestamp``/``-signature``); Slack baselines build the
same message (``app.notify.mrkdwn_templates.message_for``) and make the same two JSON
``chat.postMessage`` calls (the second with the first's ``ts``). Ratios worker / baseline are of
figures measured side by side in this run.

``--claim-cost``: instead of the above, time one claim (up to 16) with each case's whole burst due,
with PostgreSQL's ``EXPLAIN (ANALYZE, BUFFERS)`` of it.

``--statements``: instead of the above, drain each case once in this process (``deliver_once`` of one
``WorkerRuntime``) and count the SQL statements per delivery, by kind, and the deliveries per claim
(a claim, or a lane's continuation) and per record transaction.

``--profile FILE``: py-spy (200 Hz; ``--profile-mode gil``: who holds the GIL, the default; ``idle``:
the wall time of the delivery tick's thread, waits included) records the worker of the first drain
(use ``--cases webhook-100 --db postgres --workers 1``); the samples are summarised by phase. The
profiled drain is slower than an unprofiled one: its rate is not a result.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    WEBHOOK_SECRET,
    bench_app,
    fresh_postgres,
    machine,
    on_threads,
    worker_env,
)
from bench.scale_out import (
    check_alive,
    cpu_seconds,
    cpu_snapshot,
    cpu_used,
    exit_cleanly_on_sigterm,
    postgres_pids,
    start_worker,
    stop,
)

PG_DB = "mi_bridge_bench_burst"
PUBLIC_URL = "https://bridge.example.test"
SLACK_TOKEN = "xoxb-fake-token"  # noqa: S105 - tests/fake_slack.py's, not a credential
PARKED = timedelta(days=365)
SAMPLE_SECONDS = 0.2
REQUESTS_THREADS = 16  # = app.worker.runtime.DELIVERY_CONCURRENCY (checked in main)
AIOHTTP_IN_FLIGHT = 64
#: py-spy's mode for ``--profile`` (``--profile-mode``): gil (who holds the GIL) or idle (wall time).
PROFILE_MODE = ["gil"]
LABELS = {"title": "Evening news 2026-12-05", "desk": "sports"}


@dataclass(frozen=True)
class Case:
    name: str
    type: str  # webhook or slack
    endpoints: int
    tag: str  # asset id prefix; unique per case

    def endpoint_name(self, j: int) -> str:
        return f"{self.tag}-e{j:03d}"

    def channel(self, j: int) -> str:
        return f"{self.tag}-c{j:03d}"


CASES = (
    Case("webhook-1", "webhook", 1, "w1"),
    Case("webhook-100", "webhook", 100, "w100"),
    Case("slack-100", "slack", 100, "s100"),
)
BY_NAME = {case.name: case for case in CASES}
SLACK_CHANNELS = {
    case.channel(j): f"C{case.tag.upper()}{j:03d}"
    for case in CASES
    if case.type == "slack"
    for j in range(case.endpoints)
}


# -- the receiver: its own process --------------------------------------------------------------


def serve_receiver() -> None:
    """Webhooks under /hook/<endpoint> (aiohttp on uvloop), the fake Slack on a thread beside it.

    Prints the two ports. ``GET /log`` answers the ``webhook-id`` arrivals per path, the count of bad
    signatures, and per Slack channel the asset ids of top-level messages and the count of thread
    replies, in arrival order; ``?clear=1`` forgets them afterwards.
    """
    import uvloop
    from aiohttp import web

    from tests import fake_slack

    # Answers in one segment: http.server writes the headers and the body apart, and Nagle's
    # algorithm then holds the body until the client's delayed ACK (40 ms per call).
    fake_slack._Handler.disable_nagle_algorithm = True
    fake = fake_slack.FakeSlack(channels=SLACK_CHANNELS).start()
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    arrivals: dict[str, list[str]] = {}
    bad = [0]
    asset = re.compile(r"\b(?:w1|w100|s100)-\d{6}\b")

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        headers = request.headers
        message_id = headers.get("webhook-id", "")
        signed = f"{message_id}.{headers.get('webhook-timestamp', '')}.".encode() + body
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        if "v1," + base64.b64encode(digest).decode() not in headers.get(
            "webhook-signature", ""
        ).split(" "):
            bad[0] += 1
        arrivals.setdefault(request.path, []).append(message_id)
        return web.Response(text="ok")

    async def log(request: web.Request) -> web.Response:
        slack: dict[str, dict[str, Any]] = {}
        slack_bad = 0
        with fake._lock:
            calls = list(fake.calls)
        for call in calls:
            body = call.body or {}
            answer = call.answer if isinstance(call.answer, dict) else {}
            if call.status != 200 or not answer.get("ok"):
                slack_bad += 1
                continue
            channel = slack.setdefault(str(answer.get("channel")), {"posts": [], "replies": 0})
            if body.get("thread_ts"):
                channel["replies"] += 1
            else:
                found = asset.search(str(body.get("text", "")))
                channel["posts"].append(found.group(0) if found else "?")
        answer = {"webhooks": arrivals, "bad": bad[0], "slack": slack, "slack_bad": slack_bad}
        response = web.json_response(answer)
        if request.query.get("clear"):
            arrivals.clear()
            bad[0] = 0
            fake.reset()
        return response

    async def main() -> None:
        import socket

        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_post("/hook/{name}", hook)
        app.router.add_get("/log", log)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock, backlog=512).start()
        print(sock.getsockname()[1], fake.url.rsplit(":", 1)[1], flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


class Receiver:
    def __init__(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - this very script
            [sys.executable, __file__, "--serve-receiver"], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        hooks, slack = self.process.stdout.readline().split()
        self.url = f"http://127.0.0.1:{hooks}"
        self.slack_api = f"http://127.0.0.1:{slack}/api/"

    def log(self, clear: bool = True) -> dict[str, Any]:
        import requests

        answer = requests.get(f"{self.url}/log", params={"clear": "1" if clear else ""}, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# -- seeding ------------------------------------------------------------------------------------


def make_endpoints(app: Any, case: Case, receiver: Receiver) -> list[Any]:
    """The case's endpoints, made as the API makes them (validated body, ``create_endpoint``)."""
    from app.db import db
    from app.endpoints.actions import create_endpoint
    from app.endpoints.validation import EndpointCreate, validated
    from app.services import services

    context = services(app).validation
    endpoints = []
    now = datetime.now(UTC)
    for j in range(case.endpoints):
        body: dict[str, Any] = {"type": case.type, "name": case.endpoint_name(j)}
        if case.type == "webhook":
            body |= {
                "url": f"{receiver.url}/hook/{case.endpoint_name(j)}",
                "secret": WEBHOOK_SECRET,
            }
        else:
            body |= {"channel": f"#{case.channel(j)}", "language": "en"}
        spec = validated(EndpointCreate, body, context)
        endpoints.append(create_endpoint(db.session, spec, now).endpoint)
    db.session.commit()
    return endpoints


def seed_case(app: Any, case: Case, receiver: Receiver, count: int, first_pk: int) -> list[str]:
    """N completed watches with one endpoint target each, one analysis.completed event each (see the
    module doc); every delivery parked. Returns the endpoint ids (the lanes)."""
    from sqlalchemy import insert, select, update
    from sqlalchemy.orm import selectinload

    from app.db import db
    from app.models import Asset, Delivery, Target, Watch, new_id
    from app.outbox.emit import emit_event
    from app.outbox.envelopes import Analysis

    with app.app_context():
        endpoints = make_endpoints(app, case, receiver)
        lanes = [e.id for e in endpoints]
        types = [e.type for e in endpoints]
        events = ["analysis.completed", "analysis.failed", "analysis.cancelled", "watch.expired",
                  "watch.error"]  # fmt: skip
        now = datetime.now(UTC)
        registered = now - timedelta(minutes=7, seconds=42)
        for start in range(0, count, 1000):
            stop_at = min(count, start + 1000)
            assets, watches, targets = [], [], []
            for i in range(start, stop_at):
                pk = first_pk + i
                asset_id = f"{case.tag}-{i:06d}"
                assets.append({
                    "pk": pk, "workspace": "bench", "project_id": "1", "asset_id": asset_id,
                    "api": "video-assets", "status": "ANALYZE_COMPLETED", "message": None,
                    "interval": 10.0, "next_poll_at": None, "poll_count": 14,
                    "consecutive_errors": 0, "created_at": registered, "updated_at": now,
                })  # fmt: skip
                watch_id = new_id("wch")
                watches.append({
                    "id": watch_id, "state": "completed", "workspace": "bench", "project_id": "1",
                    "asset_id": asset_id, "api": "video-assets", "asset_pk": pk,
                    "status": "ANALYZE_COMPLETED", "labels": {**LABELS, "cms_id": f"cms-{i:06d}"},
                    "events": events, "created_at": registered, "updated_at": now,
                    "finished_at": now, "deadline_at": now + timedelta(days=3), "poll_count": 14,
                })  # fmt: skip
                j = i % case.endpoints
                # What build_target makes of an {"endpoint": ...} reference.
                targets.append({
                    "id": new_id("tgt"), "watch_id": watch_id, "position": 0, "type": types[j],
                    "endpoint_id": lanes[j], "disabled": False, "created_at": registered,
                })  # fmt: skip
            db.session.execute(insert(Asset), assets)
            db.session.execute(insert(Watch), watches)
            db.session.execute(insert(Target), targets)
            db.session.commit()
            batch = db.session.scalars(
                select(Watch)
                .where(Watch.id.in_([w["id"] for w in watches]))
                .options(selectinload(Watch.targets))
                .order_by(Watch.asset_pk)
            ).all()
            for watch in batch:  # one poll batch's outbox write, in watch (= event) order
                analysis = Analysis("ANALYZE_COMPLETED", "ANALYZING", 1001 + watch.asset_pk, None)
                emit_event(db.session, watch, "analysis.completed", "p14:done", analysis, now)
            db.session.commit()
        db.session.execute(
            update(Delivery)
            .where(Delivery.lane.in_(lanes))
            .values(next_attempt_at=now + PARKED)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        db.session.remove()
        return lanes


@dataclass
class Seeded:
    """One case in one database: its lanes, and per lane the event ids in delivery (= event) order."""

    case: Case
    lanes: list[str]
    order: dict[str, list[str]]  # receiver key (path or channel id) -> event ids / asset ids
    bodies: list[tuple[str, str, str]]  # (receiver key, event id, body) in event order


def describe_seeded(app: Any, case: Case, lanes: list[str]) -> Seeded:
    from sqlalchemy import select

    from app.db import db
    from app.models import Delivery, Endpoint, Event

    with app.app_context():
        names = dict(db.session.execute(select(Endpoint.id, Endpoint.name).where(
            Endpoint.id.in_(lanes))).all())  # fmt: skip
        rows = db.session.execute(
            select(Delivery.lane, Event.id, Event.body)
            .join(Event, Event.id == Delivery.event_id)
            .where(Delivery.lane.in_(lanes))
            .order_by(Delivery.seq)
        ).all()
        db.session.remove()
    order: dict[str, list[str]] = {}
    bodies = []
    for lane, event_id, body in rows:
        name = names[lane]
        if case.type == "webhook":
            key, item = f"/hook/{name}", event_id
        else:
            j = int(name.rsplit("-e", 1)[1])
            key, item = (
                SLACK_CHANNELS[case.channel(j)],
                json.loads(body)["data"]["asset"]["asset_id"],
            )
        order.setdefault(key, []).append(item)
        bodies.append((key, event_id, body))
    return Seeded(case, lanes, order, bodies)


def arm(app: Any, lanes: list[str]) -> int:
    from sqlalchemy import update

    from app.db import db
    from app.models import Delivery

    with app.app_context():
        result = db.session.execute(
            update(Delivery)
            .where(Delivery.lane.in_(lanes))
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        db.session.remove()
        return result.rowcount


def pending(app: Any, lanes: list[str]) -> int:
    from sqlalchemy import func, select

    from app.db import db
    from app.models import Delivery

    with app.app_context():
        count = db.session.scalar(
            select(func.count()).where(Delivery.lane.in_(lanes), Delivery.state == "pending")
        )
        db.session.remove()
        return int(count or 0)


def outcome(app: Any, lanes: list[str]) -> dict[str, Any]:
    """States, attempts (with errors), and the first and last attempt times of the case."""
    from sqlalchemy import func, select

    from app.db import db
    from app.models import Delivery, DeliveryAttempt

    with app.app_context():
        session = db.session
        states = dict(
            session.execute(
                select(Delivery.state, func.count())
                .where(Delivery.lane.in_(lanes))
                .group_by(Delivery.state)
            ).all()
        )
        seqs = select(Delivery.seq).where(Delivery.lane.in_(lanes)).scalar_subquery()
        attempts, errors, first, last = session.execute(
            select(
                func.count(),
                func.count(DeliveryAttempt.error),
                func.min(DeliveryAttempt.at),
                func.max(DeliveryAttempt.at),
            ).where(DeliveryAttempt.delivery_seq.in_(seqs))
        ).one()
        example = None
        if errors:
            example = session.scalar(
                select(DeliveryAttempt.error).where(
                    DeliveryAttempt.delivery_seq.in_(seqs), DeliveryAttempt.error.is_not(None)
                )
            )
        session.remove()
    return {
        "states": states, "attempts": attempts, "errors": errors, "example": example,
        "first": _epoch(first), "last": _epoch(last),
    }  # fmt: skip


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def park(app: Any, lanes: list[str]) -> None:
    """Back to the seeded state: pending, parked, no attempt, no Slack message ts."""
    from sqlalchemy import delete, select, text, update

    from app.db import db
    from app.models import Delivery, DeliveryAttempt, Target

    with app.app_context():
        session = db.session
        seqs = select(Delivery.seq).where(Delivery.lane.in_(lanes)).scalar_subquery()
        session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_seq.in_(seqs)))
        session.execute(
            update(Delivery)
            .where(Delivery.lane.in_(lanes))
            .values(
                state="pending", attempt_count=0, first_attempted_at=None, lease_owner=None,
                lease_expires_at=None, last_error=None, last_error_detail=None,
                next_attempt_at=datetime.now(UTC) + PARKED,
            )
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        session.execute(
            update(Target)
            .where(Target.endpoint_id.in_(lanes))
            .values(slack_ts=None, slack_channel_id=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        session.remove()
        if db.engine.dialect.name == "postgresql":  # as autovacuum would between two bursts
            with db.engine.connect() as connection:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.execute(
                    text("VACUUM ANALYZE deliveries, delivery_attempts, targets, endpoints")
                )


# -- the order check ----------------------------------------------------------------------------


def order_violations(expected: dict[str, list[str]], seen: dict[str, list[str]]) -> dict[str, int]:
    """Per receiver key: arrivals after a later event of the same endpoint, missing, repeated."""
    late = missing = repeated = 0
    for key, items in expected.items():
        rank = {item: n for n, item in enumerate(items)}
        arrived = seen.get(key, [])
        counts = Counter(arrived)
        repeated += sum(c - 1 for c in counts.values() if c > 1)
        missing += sum(1 for item in items if item not in counts)
        highest = -1
        for item in arrived:
            n = rank.get(item, -1)
            if n < highest:
                late += 1
            highest = max(highest, n)
    stray = sum(len(v) for k, v in seen.items() if k not in expected)
    return {"late": late, "missing": missing, "repeated": repeated, "stray": stray}


# -- a worker drain -----------------------------------------------------------------------------


@dataclass
class Drain:
    workers: int
    sent: int
    seconds: float  # t0 to the last attempt (or to the cut-off)
    first_after: float  # t0 to the first attempt
    drained: bool
    cpu: list[float]  # CPU seconds per worker over the drain
    cores: dict[
        str, float
    ]  # CPU seconds per second of the drain: workers, postgres, receiver, machine
    violations: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("nan")

    @property
    def cpu_ms(self) -> float:
        return sum(self.cpu) / self.sent * 1000 if self.sent else float("nan")


def wait_for_heartbeats(app: Any, workers: list[subprocess.Popen], log_dir: Path) -> None:
    from sqlalchemy import func, select

    from app.db import db
    from app.models import WorkerHeartbeat

    pids = [w.pid for w in workers]
    deadline = time.monotonic() + 60
    with app.app_context():
        while time.monotonic() < deadline:
            check_alive(workers, log_dir)
            seen = db.session.scalar(
                select(func.count(func.distinct(WorkerHeartbeat.pid))).where(
                    WorkerHeartbeat.pid.in_(pids)
                )
            )
            db.session.remove()
            if seen == len(pids):
                return
            time.sleep(0.1)
    raise RuntimeError(f"workers {pids} wrote no heartbeat within 60 s")


def clear_heartbeats(app: Any) -> None:
    from sqlalchemy import delete

    from app.db import db
    from app.models import WorkerHeartbeat

    with app.app_context():
        db.session.execute(delete(WorkerHeartbeat))
        db.session.commit()
        db.session.remove()


def worker_drain(
    app: Any, env: dict[str, str], seeded: Seeded, receiver: Receiver, k: int, log_dir: Path,
    max_drain: float, profile: Path | None,
) -> Drain:  # fmt: skip
    count = len(seeded.bodies)
    clear_heartbeats(app)
    receiver.log(clear=True)
    workers = [start_worker(env, log_dir, f"{seeded.case.name}-k{k}-w{i}") for i in range(k)]
    spy = None
    try:
        wait_for_heartbeats(app, workers, log_dir)
        if profile is not None:
            spy = subprocess.Popen(  # noqa: S603 - the benchmark's profiler
                [str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(workers[0].pid),
                 "--rate", "200", f"--{PROFILE_MODE[0]}", "--format", "raw", "-o", str(profile)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)
        cpu_before = [cpu_seconds(w.pid) or 0.0 for w in workers]
        groups_before = cpu_snapshot(cpu_groups(app, workers, receiver))
        armed = arm(app, seeded.lanes)
        t0 = time.time()
        assert armed == count, (armed, count)
        drained = False
        while time.time() - t0 < max_drain:
            time.sleep(SAMPLE_SECONDS)
            check_alive(workers, log_dir)
            if pending(app, seeded.lanes) == 0:
                drained = True
                break
        cut = time.time()
        cpu = [(cpu_seconds(w.pid) or 0.0) - b for w, b in zip(workers, cpu_before, strict=True)]
        groups_after = cpu_snapshot(cpu_groups(app, workers, receiver))
        window = groups_after.at - groups_before.at
        cores = {g: v / window for g, v in cpu_used(groups_before, groups_after).items()}
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        stop(workers)
    done = outcome(app, seeded.lanes)
    sent = done["states"].get("succeeded", 0)
    if done["errors"] or done["attempts"] != sent or (drained and sent != count):
        raise RuntimeError(f"{seeded.case.name} k={k}: {done}; expected {count} clean successes")
    log = receiver.log(clear=True)
    seen, bad = _received(seeded.case, log)
    if bad:
        raise RuntimeError(f"{seeded.case.name} k={k}: the receiver counted {bad} bad requests")
    last = done["last"] if drained else cut
    violations = order_violations(seeded.order, seen)
    if not drained:
        # Not everything was sent: what is missing is the unsent, not lost deliveries.
        violations["missing"] -= count - sent
    park(app, seeded.lanes)
    return Drain(k, sent, last - t0, (done["first"] or cut) - t0, drained, cpu, cores, violations)


def cpu_groups(
    app: Any, workers: list[subprocess.Popen], receiver: Receiver
) -> dict[str, list[int]]:
    """The processes whose CPU is measured: the workers, PostgreSQL's (this database's backends and
    the cluster's shared processes, as ``bench/scale_out.py`` picks them), the receiver."""
    from app.db import db

    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
    return {
        "workers": [w.pid for w in workers],
        "postgres": postgres_pids(PG_DB, 0) if postgres else [],
        "receiver": [receiver.process.pid],
    }


def _received(case: Case, log: dict[str, Any]) -> tuple[dict[str, list[str]], int]:
    if case.type == "webhook":
        return log["webhooks"], log["bad"]
    return {channel: v["posts"] for channel, v in log["slack"].items()}, log["slack_bad"]


# -- baselines ----------------------------------------------------------------------------------


def webhook_requests(seeded: Seeded, receiver: Receiver) -> list[tuple[str, Callable[[], Any]]]:
    """(url, build) per event: build() gives the headers and body of one attempt, signed now."""
    from app.notify.results import EventSnapshot, TargetSnapshot
    from app.notify.webhook import build_payload

    target = TargetSnapshot("tgt_bench", "webhook", None, None, WEBHOOK_SECRET, False, None, None)
    items = []
    for key, event_id, body in seeded.bodies:
        event = EventSnapshot(event_id, "analysis.completed", body, datetime.now(UTC))

        def build(event: EventSnapshot = event) -> Any:
            return build_payload(event, target, int(time.time()))

        items.append((receiver.url + key, build))
    return items


def slack_messages(seeded: Seeded) -> list[tuple[str, str]]:
    """(channel id, event body) per event."""
    return [(key, body) for key, _, body in seeded.bodies]


def slack_json(channel: str, body: str, thread_ts: str | None = None) -> bytes:
    from app.notify.mrkdwn_templates import message_for

    message, _ = message_for(body, None, "en", PUBLIC_URL)
    document: dict[str, Any] = {"channel": channel, "text": message.text, "blocks": message.blocks}
    if thread_ts:
        document |= {"thread_ts": thread_ts, "reply_broadcast": True}
    return json.dumps(document).encode()


SLACK_HEADERS = {
    "Authorization": f"Bearer {SLACK_TOKEN}",
    "Content-Type": "application/json;charset=utf-8",
}


def run_requests(seeded: Seeded, receiver: Receiver, threads: int) -> float:
    """Deliveries/s of a bare requests.Session loop on ``threads`` threads (1: sequential)."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=threads, max_retries=0))
    errors: list[str] = []
    if seeded.case.type == "webhook":
        items: list[Any] = webhook_requests(seeded, receiver)

        def one(item: Any) -> None:
            url, build = item
            payload = build()
            response = session.post(url, data=payload.body, headers=payload.headers, timeout=15)
            if response.status_code != 200:
                errors.append(url)
    else:
        items = slack_messages(seeded)
        url = receiver.slack_api + "chat.postMessage"

        def one(item: Any) -> None:
            channel, body = item
            answer = session.post(url, data=slack_json(channel, body), headers=SLACK_HEADERS,
                                  timeout=15).json()  # fmt: skip
            reply = session.post(url, data=slack_json(channel, body, answer.get("ts")),
                                 headers=SLACK_HEADERS, timeout=15).json()  # fmt: skip
            if not (answer.get("ok") and reply.get("ok")):
                errors.append(channel)

    def work(part: list[Any]) -> None:
        for item in part:
            one(item)

    rate = on_threads(items, work, threads)
    session.close()
    if errors:
        raise RuntimeError(f"requests x{threads}: {len(errors)} failed")
    return rate


def run_aiohttp(seeded: Seeded, receiver: Receiver, in_flight: int = AIOHTTP_IN_FLIGHT) -> float:
    """Deliveries/s of one aiohttp event loop with ``in_flight`` requests outstanding."""
    import aiohttp

    async def main() -> float:
        connector = aiohttp.TCPConnector(limit=in_flight)
        timeout = aiohttp.ClientTimeout(total=15)
        failed = 0
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            if seeded.case.type == "webhook":
                queue: Any = iter(webhook_requests(seeded, receiver))

                async def one(item: Any) -> bool:
                    url, build = item
                    payload = build()
                    async with session.post(url, data=payload.body, headers=payload.headers) as r:
                        await r.read()
                        return r.status == 200
            else:
                queue = iter(slack_messages(seeded))
                url = receiver.slack_api + "chat.postMessage"

                async def one(item: Any) -> bool:
                    channel, body = item
                    async with session.post(
                        url, data=slack_json(channel, body), headers=SLACK_HEADERS
                    ) as r:
                        answer = await r.json(content_type=None)
                    async with session.post(
                        url, data=slack_json(channel, body, answer.get("ts")), headers=SLACK_HEADERS
                    ) as r:
                        reply = await r.json(content_type=None)
                    return bool(answer.get("ok") and reply.get("ok"))

            async def worker() -> None:
                nonlocal failed
                for item in queue:
                    failed += not await one(item)

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(in_flight)))
            elapsed = time.perf_counter() - started
        if failed:
            raise RuntimeError(f"aiohttp: {failed} failed")
        return len(seeded.bodies) / elapsed

    return asyncio.run(main())


BASELINES: dict[str, Callable[[Seeded, Receiver], float]] = {
    "requests x1": lambda s, r: run_requests(s, r, 1),
    f"requests x{REQUESTS_THREADS}": lambda s, r: run_requests(s, r, REQUESTS_THREADS),
    f"aiohttp x{AIOHTTP_IN_FLIGHT}": run_aiohttp,
}


# -- statements per delivery ------------------------------------------------------------------


def count_statements(app: Any, seeded: Seeded, db_name: str) -> None:
    """Drain the case once in this process (``deliver_once`` of one ``WorkerRuntime``, in a loop until
    a tick claims nothing) and count the SQL statements sent, by kind, and the claim and record
    transactions (wrappers around the names ``app.worker.delivery`` calls; the code is unchanged)."""
    from sqlalchemy import event

    from app.db import db
    from app.worker import delivery
    from app.worker.runtime import WorkerRuntime

    statements: Counter[str] = Counter()
    steps: Counter[str] = Counter()

    def statement(_c: Any, _cur: Any, sql: str, _p: Any, _ctx: Any, _many: bool) -> None:
        words = sql.split()
        kind = " ".join(words[:2]) if words[0] in ("SAVEPOINT", "RELEASE") else words[0]
        if kind.startswith("SAVEPOINT"):
            kind = "SAVEPOINT"
        elif kind == "SELECT":
            kind += (
                " .. FOR UPDATE" if "FOR UPDATE" in sql else (" max(pk)" if "max(" in sql else "")
            )
        statements[kind] += 1

    def commit(_c: Any) -> None:
        statements["COMMIT"] += 1

    claim, record = delivery.claim_due_deliveries, delivery._record
    continuation = delivery.claim_continuations

    def counting(step: Any, kind: str) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            claims = step(*args, **kwargs)
            steps[kind] += bool(claims)
            steps["claimed"] += sum(len(chain) for chain in claims)
            return claims

        return counted

    counted_claim = counting(claim, "claims")
    counted_continuation = counting(continuation, "continuations")

    def counted_record(runtime: Any, report: Any, finished: list[Any]) -> None:
        steps["records"] += 1
        steps["recorded"] += sum(len(chain) for _future, _token, chain in finished)
        record(runtime, report, finished)

    runtime = WorkerRuntime.from_app(app)
    with app.app_context():
        engine = db.engine
    arm(app, seeded.lanes)
    delivery.claim_due_deliveries, delivery._record = counted_claim, counted_record
    delivery.claim_continuations = counted_continuation
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    sent, started = 0, time.perf_counter()
    try:
        while True:
            report = delivery.deliver_once(runtime)
            sent += report.sent
            if report.claimed == 0:
                break
    finally:
        elapsed = time.perf_counter() - started
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)
        delivery.claim_due_deliveries, delivery._record = claim, record
        delivery.claim_continuations = continuation
        runtime.close()
    park(app, seeded.lanes)
    total = sum(statements.values())
    print(
        f"\n{seeded.case.name} on {db_name}, drained in this process (deliver_once): {sent} in "
        f"{elapsed:.1f} s ({sent / elapsed:.0f}/s); {total / sent:.2f} statements per delivery; "
        f"{steps['claimed'] / max(1, steps['claims'] + steps['continuations']):.1f} deliveries per "
        f"claim or continuation ({steps['claims']} claims, {steps['continuations']} continuations), "
        f"{steps['recorded'] / max(1, steps['records']):.1f} per record transaction"
    )
    for kind, n in statements.most_common():
        print(f"  {kind:22s} {n:7d}  {n / sent:5.2f} per delivery")


def claim_cost(app: Any, seeded: Seeded, db_name: str) -> None:
    """Time one claim (``claim_due_deliveries``, up to 16 chains) with the case's whole burst due, in a
    transaction rolled back; on PostgreSQL also ``EXPLAIN (ANALYZE, BUFFERS)`` of its statement."""
    from sqlalchemy import event

    from app.db import db
    from app.worker.delivery import CHAIN_FOLLOWERS
    from app.worker.delivery_claims import claim_due_deliveries

    arm(app, seeded.lanes)
    captured: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        if sql.lstrip().startswith("UPDATE deliveries SET lease_owner"):
            captured.append((sql, params))

    with app.app_context():
        session = db.session()
        times = []
        for _ in range(3):
            event.listen(db.engine, "before_cursor_execute", grab)
            started = time.perf_counter()
            claims = claim_due_deliveries(
                session, "bench", datetime.now(UTC), 60, 16, followers=CHAIN_FOLLOWERS
            )
            times.append((time.perf_counter() - started) * 1000)
            event.remove(db.engine, "before_cursor_execute", grab)
            session.rollback()
        print(
            f"{seeded.case.name} on {db_name}, {len(seeded.bodies)} due: one claim takes "
            f"{min(times):.1f} ms (best of 3) and claims {sum(len(chain) for chain in claims)} "
            f"({len(claims)} chains)"
        )
        if db.engine.dialect.name == "postgresql" and captured:
            sql, params = captured[-1]
            raw = db.engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                for (line,) in cursor.fetchall():
                    print(f"    {line}")
                raw.rollback()
                # The same with statistics that know the burst is due (autovacuum's next ANALYZE).
                cursor.execute("ANALYZE deliveries")
                raw.commit()
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                plan = [line for (line,) in cursor.fetchall()]
                print(f"    after ANALYZE deliveries: {plan[-1].strip()}; {plan[0].strip()}")
            finally:
                raw.rollback()
                raw.close()
        db.session.remove()
    park(app, seeded.lanes)


# -- the profile --------------------------------------------------------------------------------

#: (phase, marker): the first marker (searched in this order) found in a stack names its phase.
PHASES = (
    ("record: _round_of (SELECT max(pk) of the ending attempts)", "_round_of ("),
    ("record: Slack auth state (bridge_state)", "record_slack_auth ("),
    ("record: SELECT .. FOR UPDATE of the delivery (populate_existing)", "sending.py:151)"),
    ("record: the target (session.get)", "sending.py:154)"),
    ("record: the target's endpoint (lazy load)", "attempts.py:55)"),
    ("record: endpoint health", "record_outcome ("),
    ("record: flush (INSERT attempt, UPDATE delivery, endpoint, target)", "sending.py:165)"),
    ("record: record_attempt, other", "record_attempt ("),
    ("record: commit", "delivery.py:102)"),
    ("record: savepoints, other", "_record ("),
    ("claim: load the claims' events, targets, endpoints", "load_claims ("),
    ("claim: book rate-limit slots (endpoints locked)", "book_send_slots ("),
    ("claim: the UPDATE .. RETURNING", "claim_due_deliveries ("),
    ("claim: commit", "delivery.py:74)"),
    ("claim: other", "_claim_and_send ("),
    ("tick: waiting for sends to finish", "wait (concurrent/futures"),
    ("tick: other", "deliver_once ("),
    ("send: webhook request (build + sign)", "build_payload ("),
    ("send: Slack message (Block Kit, mrkdwn)", "message_for ("),
    ("send: HTTP (requests; slack-sdk)", "send_claim ("),
    ("other jobs (poll tick, heartbeat, alerts, housekeeping)", "apscheduler"),
)


def summarize_profile(path: Path, mode: str) -> None:
    """Samples by phase; ``idle`` mode (wall time) keeps the delivery tick's thread only."""
    phases: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or (mode == "idle" and "deliver_once (" not in stack):
            continue
        n = int(count)
        total += n
        for phase, marker in PHASES:
            if marker in stack:
                phases[phase] += n
                break
        else:
            phases["other (threads, interpreter)"] += n
    what = "the worker holding the GIL" if mode == "gil" else "the delivery tick's thread"
    print(f"\nprofile: py-spy --{mode} at 200 Hz, {total} samples of {what}")
    for phase, n in phases.most_common():
        print(f"  {n / total * 100:5.1f}%  {phase}")


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="analyses finishing at once")
    parser.add_argument("--quick", action="store_true", help="1,000 events (development)")
    parser.add_argument("--cases", default=",".join(BY_NAME), help=", ".join(BY_NAME))
    parser.add_argument(
        "--db", default="postgres,sqlite", choices=("postgres", "sqlite", "postgres,sqlite"),
        help="postgres, sqlite, or postgres,sqlite (both, the default)",
    )  # fmt: skip
    parser.add_argument("--workers", default="1,2", help="worker process counts on PostgreSQL")
    parser.add_argument("--max-drain", type=float, default=240.0, help="cut-off per drain (s)")
    parser.add_argument("--max-drain-one-lane", type=float, default=120.0,
                        help="cut-off per drain of webhook-1 (one lane: see the docs)")  # fmt: skip
    parser.add_argument("--profile", type=Path, help="py-spy raw output of the first drain")
    parser.add_argument("--profile-mode", choices=("gil", "idle"), default="gil")
    parser.add_argument("--claim-cost", action="store_true",
                        help="time one claim with each case's whole burst due")  # fmt: skip
    parser.add_argument("--statements", action="store_true",
                        help="count the SQL statements of an in-process drain of each case")  # fmt: skip
    parser.add_argument("--serve-receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        serve_receiver()
        return
    from app.worker.runtime import DELIVERY_CONCURRENCY

    assert DELIVERY_CONCURRENCY == REQUESTS_THREADS, DELIVERY_CONCURRENCY
    exit_cleanly_on_sigterm()
    PROFILE_MODE[0] = args.profile_mode
    count = 1000 if args.quick else args.events
    cases = [BY_NAME[name] for name in args.cases.split(",")]
    databases = [d for d in ("postgres", "sqlite") if d in args.db.split(",")]
    ks = [int(k) for k in args.workers.split(",")]
    print(f"machine: {machine()}")
    print(
        f"events per case: {count}; cases: {', '.join(c.name for c in cases)}; databases: "
        f"{', '.join(databases)}; workers on PostgreSQL: {ks} (SQLite: 1); "
        f"cut-off per drain {args.max_drain:.0f} s ({args.max_drain_one_lane:.0f} s with one endpoint)"
    )
    receiver = Receiver()
    print(
        f"receiver: {receiver.url} (aiohttp on uvloop, own process); fake Slack {receiver.slack_api}"
    )
    results: dict[tuple[str, str, str], float] = {}
    drains: dict[tuple[str, str, int], Drain] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            apps = {}
            seeded: dict[tuple[str, str], Seeded] = {}
            for db in databases:
                url = (
                    f"sqlite:///{workdir / 'burst.db'}" if db == "sqlite" else fresh_postgres(PG_DB)
                )
                app = bench_app(
                    url, receiver.url, BRIDGE_ALLOW_PRIVATE_URLS=True, SLACK_BOT_TOKEN=SLACK_TOKEN,
                    SLACK_API_URL=receiver.slack_api, BRIDGE_PUBLIC_URL=PUBLIC_URL,
                )  # fmt: skip
                apps[db] = (app, url)
                for n, case in enumerate(cases):
                    started = time.perf_counter()
                    lanes = seed_case(app, case, receiver, count, n * count + 1)
                    seeded[(db, case.name)] = describe_seeded(app, case, lanes)
                    print(
                        f"  [{db}] {case.name}: {case.endpoints} endpoint(s), {count} events and "
                        f"deliveries seeded in {time.perf_counter() - started:.1f} s",
                        flush=True,
                    )
                _analyze(app)
            if args.claim_cost:
                for db in databases:
                    for case in cases:
                        claim_cost(apps[db][0], seeded[(db, case.name)], db)
                return
            if args.statements:
                for db in databases:
                    for case in cases:
                        count_statements(apps[db][0], seeded[(db, case.name)], db)
                return
            profile = args.profile
            for case in cases:
                some = seeded[(databases[0], case.name)]
                for name, baseline in BASELINES.items():
                    rate = baseline(some, receiver)
                    receiver.log(clear=True)
                    results[(case.name, name, "")] = rate
                    print(f"{case.name:12s} {name:22s} {rate:7.0f} deliveries/s", flush=True)
                for db in databases:
                    app, url = apps[db]
                    env = worker_env(
                        url, receiver.url, 3600, BRIDGE_ALLOW_PRIVATE_URLS="true",
                        SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_API_URL=receiver.slack_api,
                        BRIDGE_PUBLIC_URL=PUBLIC_URL,
                    )  # fmt: skip
                    for k in ks if db == "postgres" else [1]:
                        drain = worker_drain(
                            app, env, seeded[(db, case.name)], receiver, k, workdir,
                            args.max_drain if case.endpoints > 1 else args.max_drain_one_lane,
                            profile,
                        )  # fmt: skip
                        if profile is not None:
                            summarize_profile(profile, args.profile_mode)
                            profile = None
                        drains[(case.name, db, k)] = drain
                        print(
                            f"{case.name:12s} worker {db:8s} x{k}       {drain.rate:7.0f} "
                            f"deliveries/s ({drain.rate / k:.0f} per worker)  "
                            f"{'drained' if drain.drained else 'CUT OFF'} in {drain.seconds:.1f} s "
                            f"({drain.sent} sent, first after {drain.first_after:.2f} s)  "
                            f"worker CPU {drain.cpu_ms:.2f} ms/delivery  order: {drain.violations}"
                            "  cores: " + ", ".join(f"{g} {c:.2f}" for g, c in drain.cores.items()),
                            flush=True,
                        )
    finally:
        receiver.close()
    report(cases, databases, ks, results, drains)


def _analyze(app: Any) -> None:
    from sqlalchemy import text

    from app.db import db

    with app.app_context(), db.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        connection.commit()


def report(
    cases: list[Case], databases: list[str], ks: list[int],
    results: dict[tuple[str, str, str], float], drains: dict[tuple[str, str, int], Drain],
) -> None:  # fmt: skip
    print(
        "\nsummary: deliveries/s (in all, and per worker process); ratios = per worker / baseline,"
        " measured in this run"
    )
    names = "".join(f" {'/ ' + name:>15s}" for name in BASELINES)
    print(f"  {'case':12s} {'drain':13s} {'in all':>7s} {'per wkr':>7s} {'sent':>6s} {'seconds':>8s}"
          f" {'CPU ms':>7s} {'order':>5s}{names}")  # fmt: skip
    for case in cases:
        base = {name: results[(case.name, name, "")] for name in BASELINES}
        print(
            f"  {case.name:12s} baselines: " + ", ".join(f"{n} {r:.0f}/s" for n, r in base.items())
        )
        for db in databases:
            for k in ks if db == "postgres" else [1]:
                drain = drains.get((case.name, db, k))
                if drain is None:
                    continue
                per = drain.rate / k
                wrong = sum(drain.violations.values())
                ratios = "".join(f" {per / rate:15.2f}" for rate in base.values())
                mark = "" if drain.drained else "  (cut off: not drained)"
                print(
                    f"  {case.name:12s} {db + ' x' + str(k):13s} {drain.rate:7.0f} {per:7.0f} "
                    f"{drain.sent:6d} {drain.seconds:8.1f} {drain.cpu_ms:7.2f} {wrong:5d}{ratios}{mark}"
                )
    print(
        "\nseconds: from the UPDATE that made the burst due to the last attempt (the wait for the"
        " workers' next 1 s tick included);\nCPU ms: the workers' CPU per delivery; order:"
        " arrivals after a later event of the same endpoint + missing + repeated + stray (0 expected)."
    )


if __name__ == "__main__":
    main()
