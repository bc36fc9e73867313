"""Crash safety on PostgreSQL: two workers and a web process, one of them SIGKILLed every 1-3 s.

A seeded, bounded loop kills a random process (web = gunicorn's master and its workers, as a dyno
dies) and starts it again, while 500 watches are registered over HTTP (retried on connection errors
with an ``Idempotency-Key``, so a retry never makes a second watch) and run to their ends on
simulated assets that finish at random times, and both webhook receivers fail at random (each
event at most 3 times per target, fewer than the 5 retries allowed). Afterwards: every watch ended as
its asset did with exactly its events, every event reached every target at least once, each
duplicate on the wire carries the same ``webhook-id`` and bytes, and nothing is stuck.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler

import pytest
import requests
from sqlalchemy import func, select

from app.db import db
from app.models import Asset, Delivery, Event, StatusChange, Target, Watch, WorkerHeartbeat
from tests.processes import AUTH, Processes, answers, bridge_env, child_pids, free_port
from tests.receiver import Answer, Receiver
from tests.test_worker_processes import END_STATE, check_watch, sim_schedule, watch_body

pytestmark = pytest.mark.slow

WATCHES = 500
KILL_SECONDS = 35.0
#: Kills that must have happened before the run may count as settled.
MIN_KILLS = 10
MAX_FAILURES_PER_EVENT = 3
ROLES = ("web", "worker-1", "worker-2")


class FlakyReceiver(Receiver):
    """Answers 500 or 502 at random, at most ``MAX_FAILURES_PER_EVENT`` times per webhook-id."""

    def __init__(self, rng: random.Random, failure_rate: float = 0.3) -> None:
        super().__init__()
        self.rng = rng
        self.failure_rate = failure_rate
        self.failures: Counter[str] = Counter()

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> Answer:
        answer = super()._record(handler, body)
        event_id = handler.headers.get("webhook-id", "")
        with self._lock:
            if self.failures[event_id] < MAX_FAILURES_PER_EVENT and (
                self.rng.random() < self.failure_rate
            ):
                self.failures[event_id] += 1
                return Answer(status=self.rng.choice((500, 502)))
        return answer


class Chaos:
    """Kills a random role every 1-3 s (seeded schedule) and starts it again at once."""

    def __init__(self, procs: Processes, env: dict[str, str], port: int, seed: int) -> None:
        self.procs, self.env, self.port = procs, env, port
        self.rng = random.Random(seed)
        self.current = {"web": "web", "worker-1": "worker-1", "worker-2": "worker-2"}
        self.kills: Counter[str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="chaos")
        self.error: BaseException | None = None

    def start_role(self, role: str, name: str) -> None:
        self.current[role] = name
        if role == "web":
            self.procs.web(name, self.env, self.port)
        else:
            self.procs.worker(name, self.env)

    def kill(self, role: str) -> None:
        proc = self.procs.started[self.current[role]]
        victims = child_pids(proc.pid) if role == "web" else set()
        proc.send_signal(signal.SIGKILL)
        for pid in victims:  # gunicorn's own workers die with their dyno
            with contextlib.suppress(ProcessLookupError):  # it died with its master
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.kills[role] += 1

    def _run(self) -> None:
        deadline = time.monotonic() + KILL_SECONDS
        try:
            while not self.stop.wait(self.rng.uniform(1.0, 3.0)):
                if time.monotonic() >= deadline:
                    return
                role = self.rng.choice(ROLES)
                self.kill(role)
                self.start_role(role, f"{role}.{self.kills[role]}")
        except BaseException as exc:  # reported by the test
            self.error = exc

    @property
    def total(self) -> int:
        return sum(self.kills.values())


def register_with_retries(base: str, body: dict, key: str, deadline: float) -> tuple[dict, int]:
    """POST until a 201 arrives (connection errors and 5xx while web restarts); returns (watch,
    retries). The same ``Idempotency-Key`` on every try."""
    retries = 0
    pause = threading.Event()
    headers = {**AUTH, "Idempotency-Key": key}
    while True:
        try:
            response = requests.post(
                f"{base}/api/v1/watches", json=body, headers=headers, timeout=10
            )
            if response.status_code == 201:
                return response.json(), retries
            assert response.status_code >= 500, response.text
        except requests.RequestException:  # web is down or restarting
            pass
        retries += 1
        assert time.monotonic() < deadline, f"could not register {key}"
        pause.wait(0.05)  # pacing the retries of a request, not a wait for work


@pytest.mark.postgres
@pytest.mark.timeout(150)
def test_sigkill_chaos_loses_and_duplicates_nothing(
    tmp_path, pg_app, postgres_url, simulator, sim_control, wait_until
):
    """SIGKILL chaos over web and two workers: no watch, event or delivery lost or doubled."""
    seed = int(os.environ.get("MI_BRIDGE_TEST_CHAOS_SEED", "20261125"))
    rng = random.Random(seed)
    print(f"\ncrash safety: seed {seed}, kills for {KILL_SECONDS:.0f} s, {WATCHES} watches")
    hooks = [FlakyReceiver(random.Random(seed + k)) for k in (1, 2)]
    for hook in hooks:
        hook.start()
    app = pg_app
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = bridge_env(
        postgres_url, simulator.url, PORT=str(port), WEB_CONCURRENCY="2",
        BRIDGE_LEASE_SECONDS="2", BRIDGE_RETRY_SCHEDULE="0.5,0.5,0.5,0.5,0.5",
    )  # fmt: skip
    plans = {}
    for n in range(WATCHES):
        targets = [hooks[0]] if rng.random() < 2 / 3 else hooks
        plans[f"c{n:03d}"] = (sim_schedule(rng, 6, 12), rng.random() < 1 / 3, targets)
    procs = Processes(tmp_path)
    chaos = Chaos(procs, env, port, seed)
    started = time.monotonic()
    registered: dict[str, dict] = {}
    retries = 0
    try:
        for role in ROLES:
            chaos.start_role(role, role)
        wait_until(lambda: answers(f"{base}/healthz"), timeout=30, message="web serves")
        chaos.thread.start()
        for asset_id, (schedule, _, _) in plans.items():
            assert sim_control.put(f"/assets/ws/1/{asset_id}", json=schedule).status_code == 201

        def register(asset_id: str) -> tuple[str, dict, int]:
            _, subscribed, targets = plans[asset_id]
            body = watch_body(asset_id, subscribed, f"{targets[0].url}/{asset_id}")
            body["targets"] = [{"type": "webhook", "url": f"{t.url}/{asset_id}"} for t in targets]
            watch, tries = register_with_retries(base, body, f"reg-{asset_id}", started + 90)
            return asset_id, watch, tries

        with ThreadPoolExecutor(8) as pool:
            for asset_id, watch, tries in pool.map(register, plans):
                registered[asset_id] = watch
                retries += tries
        registered_after = time.monotonic() - started

        def open_work() -> tuple[int, int]:
            with app.app_context():
                watching = db.session.scalar(
                    select(func.count()).select_from(Watch).where(Watch.state == "watching")
                )
                pending = db.session.scalar(
                    select(func.count()).select_from(Delivery).where(Delivery.state == "pending")
                )
                return watching, pending

        # Settled, and not before the chaos has done its minimum: a fast bridge can finish its work
        # before ten kills, and the state must stay right through kills that come after it, too.
        wait_until(
            lambda: chaos.total >= MIN_KILLS and open_work() == (0, 0),
            timeout=100,
            message="every watch and delivery, after the minimum of kills",
        )
        settled_after = time.monotonic() - started
        chaos.stop.set()
        chaos.thread.join(timeout=30)
        assert chaos.error is None, chaos.error

        def all_up() -> bool:
            """The last restarted processes are past start-up (signal handlers installed)."""
            pids = {procs.started[chaos.current[r]].pid for r in ROLES if r != "web"}
            with app.app_context():
                beating = set(
                    db.session.scalars(
                        select(WorkerHeartbeat.pid).where(WorkerHeartbeat.pid.in_(pids))
                    )
                )
            return beating == pids and answers(f"{base}/healthz")

        wait_until(all_up, timeout=30, message="the last restarted processes are up")
        # every process still running ends cleanly
        for name in {*chaos.current.values()}:
            assert procs.stop(name) == 0, name
    finally:
        chaos.stop.set()
        procs.stop_all()
        for hook in hooks:
            hook.stop()

    now = datetime.now(UTC)
    stats = sim_control.get("/stats").json()
    with app.app_context():
        session = db.session
        watches = {w.id: w for w in session.scalars(select(Watch))}
        history: dict[str, list[str]] = {}
        for change in session.scalars(select(StatusChange).order_by(StatusChange.pk)):
            history.setdefault(change.watch_id, []).append(change.status)
        events: dict[str, list[tuple[str, dict]]] = {}
        bodies: dict[str, bytes] = {}
        for event in session.scalars(select(Event).order_by(Event.seq)):
            analysis = json.loads(event.body)["data"]["analysis"]
            events.setdefault(event.watch_id, []).append((event.type, analysis))
            bodies[event.id] = event.body.encode() if isinstance(event.body, str) else event.body
        duplicates = session.execute(
            select(Event.watch_id, Event.dedupe_key)
            .group_by(Event.watch_id, Event.dedupe_key)
            .having(func.count() > 1)
        ).all()
        deliveries = session.execute(
            select(Delivery.event_id, Delivery.state, Target.url).join(
                Target, Target.id == Delivery.target_id
            )
        ).all()
        polls = session.scalar(select(func.sum(Asset.poll_count)))
        held_leases = session.scalar(
            select(func.count())
            .select_from(Asset)
            .where(Asset.lease_owner.is_not(None), Asset.lease_expires_at > now)
        ) + session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.lease_owner.is_not(None), Delivery.lease_expires_at > now)
        )

    wire = [(hook.url, r) for hook in hooks for r in hook.requests]
    by_key: dict[tuple[str, str], list[bytes]] = {}
    for url, request in wire:
        by_key.setdefault((f"{url}{request.path}", request.headers["webhook-id"]), []).append(
            request.body
        )
    failures = sum(sum(h.failures.values()) for h in hooks)
    wire_duplicates = (
        sum(len(b) - 1 for b in by_key.values()) - failures
    )  # resends beyond the scripted failures
    print(
        f"crash safety: seed {seed}; kills {chaos.total} ({dict(chaos.kills)});"
        f" registered {len(registered)} watches in {registered_after:.1f} s with {retries}"
        f" registration retries; all settled at {settled_after:.1f} s;"
        f" polls {polls} (upstream requests {stats['requests']},"
        f" max in flight per asset {stats['max_in_flight_per_asset']});"
        f" events {len(bodies)}, deliveries {len(deliveries)}, webhook requests {len(wire)},"
        f" scripted receiver failures {failures}, duplicates on the wire beyond them"
        f" {wire_duplicates}"
    )
    assert chaos.total >= 10
    # One watch per registration, however often it was retried.
    assert len(watches) == WATCHES
    assert {w["id"] for w in registered.values()} == set(watches)
    # Every watch ended as its asset did, with exactly the events its history implies.
    for asset_id, (schedule, subscribed, _) in plans.items():
        watch = watches[registered[asset_id]["id"]]
        outcome = schedule["outcome"]
        assert (watch.state, watch.status) == (END_STATE[outcome], outcome), asset_id
        check_watch(outcome, subscribed, history[watch.id], events.get(watch.id, []))
        types = Counter(
            (kind, analysis["status"] if kind == "analysis.status_changed" else None)
            for kind, analysis in events.get(watch.id, [])
        )
        assert set(types.values()) == {1}, types
    assert duplicates == []
    # Every event reached every target, and each resend is the same event, byte for byte.
    assert {state for _, state, _ in deliveries} == {"succeeded"}
    for event_id, _, url in deliveries:
        sent = by_key.get((url, event_id))
        assert sent, f"{event_id} never reached {url}"
        assert set(sent) == {bodies[event_id]}
    assert len(by_key) == len(deliveries)
    # Nothing stuck.
    assert held_leases == 0
    assert stats["max_in_flight_per_asset"] == 1
    assert all(len(s) <= 1 + MAX_FAILURES_PER_EVENT + chaos.total for s in by_key.values())
