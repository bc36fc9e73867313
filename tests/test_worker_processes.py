"""Workers as real OS processes: several at once on PostgreSQL, SIGKILL and SIGTERM mid-poll, and
the single-machine SQLite setup (gunicorn web process plus a worker) under concurrent registration.

Every process is started from the venv's console scripts with its output in files under
``tmp_path``, and stopped in a ``finally`` block. Waits are bounded (``wait_until``, ``wait``).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from app.db import db
from app.models import Asset, Delivery, Event, StatusChange, Watch, WorkerHeartbeat
from tests.processes import AUTH, BIN, REPO, Processes, bridge_env, free_port

pytestmark = pytest.mark.slow

OUTCOMES = ("ANALYZE_COMPLETED", "ANALYZE_FAIL", "ANALYZE_CANCEL")
END_STATE = {
    "ANALYZE_COMPLETED": "completed",
    "ANALYZE_FAIL": "failed",
    "ANALYZE_CANCEL": "cancelled",
}
TERMINAL_EVENT = {
    "ANALYZE_COMPLETED": "analysis.completed",
    "ANALYZE_FAIL": "analysis.failed",
    "ANALYZE_CANCEL": "analysis.cancelled",
}
DEFAULT_EVENTS = [*TERMINAL_EVENT.values(), "watch.expired", "watch.error"]
STATUS_CHANGED = "analysis.status_changed"


def watch_body(asset_id: str, subscribe_changes: bool, hook: str) -> dict[str, Any]:
    events = [*DEFAULT_EVENTS, STATUS_CHANGED] if subscribe_changes else DEFAULT_EVENTS
    return {
        "workspace": "ws",
        "project_id": "1",
        "asset_id": asset_id,
        "api": "index",
        "targets": [{"type": "webhook", "url": hook}],
        "events": events,
    }


def check_watch(
    outcome: str, subscribed: bool, history: list[str], events: list[tuple[str, dict]]
) -> None:
    """The events a watch must have for its history: one per observed change, in order.

    ``history`` is the watch's statuses in order; ``events`` its (type, data.analysis), by seq.
    """
    running = ["WAIT_ANALYZE", "ANALYZING"]
    assert history[-1] == outcome, history
    assert all(status in running for status in history[:-1]), history
    assert history[:-1] == sorted(set(history[:-1]), key=running.index), history  # no regressions
    expected: list[tuple[str, str, str | None]] = []
    if subscribed:
        expected += [(STATUS_CHANGED, new, old) for old, new in pairwise(history)]
    expected.append((TERMINAL_EVENT[outcome], outcome, history[-2] if len(history) > 1 else None))
    seen = [(kind, a["status"], a["previous_status"]) for kind, a in events]
    assert seen == expected, (history, seen)


def sim_schedule(rng: random.Random, wait: float, analyze: float) -> dict[str, Any]:
    return {
        "wait_seconds": round(rng.uniform(0, wait), 3),
        "analyze_seconds": round(rng.uniform(0, analyze), 3),
        "outcome": rng.choice(OUTCOMES),
    }


# --- PostgreSQL: two workers, 300 watches ---------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_two_workers_share_300_watches_exactly_once(
    tmp_path, pg_app, postgres_url, simulator, sim_control, receiver, wait_until
):
    """Every watch ends as its asset did, with exactly its events; one poll per asset at a time."""
    rng = random.Random(20261125)
    plans = {f"a{n:03d}": (sim_schedule(rng, 2, 4), rng.random() < 1 / 3) for n in range(300)}
    app = pg_app
    client = app.test_client()
    procs = Processes(tmp_path)
    # The lease must outlast a whole batch (64 claims polled, then applied in one transaction),
    # which takes seconds on a busy machine: nothing is killed here, so a long lease costs nothing.
    env = bridge_env(postgres_url, simulator.url, BRIDGE_LEASE_SECONDS="30")
    started = time.monotonic()
    try:
        procs.worker("worker-1", env)
        procs.worker("worker-2", env)
        watch_ids: dict[str, str] = {}
        for asset_id, (schedule, subscribed) in plans.items():
            assert sim_control.put(f"/assets/ws/1/{asset_id}", json=schedule).status_code == 201
            response = client.post(
                "/api/v1/watches",
                json=watch_body(asset_id, subscribed, f"{receiver.url}/in"),
                headers=AUTH,
            )
            assert response.status_code == 201, response.json
            watch_ids[asset_id] = response.json["id"]
        registered = time.monotonic() - started

        def still_watching() -> int:
            with app.app_context():
                return db.session.scalar(
                    select(func.count()).select_from(Watch).where(Watch.state == "watching")
                )

        wait_until(lambda: still_watching() == 0, timeout=60, message="every watch ended")
        ended = time.monotonic() - started
        assert procs.stop("worker-1") == 0
        assert procs.stop("worker-2") == 0
    finally:
        procs.stop_all()

    stats = sim_control.get("/stats").json()
    with app.app_context():
        session = db.session
        beats = session.scalars(select(WorkerHeartbeat)).all()
        asset_polls = session.scalar(select(func.sum(Asset.poll_count)))
        watches = {w.id: w for w in session.scalars(select(Watch))}
        history: dict[str, list[str]] = {}
        for change in session.scalars(select(StatusChange).order_by(StatusChange.pk)):
            history.setdefault(change.watch_id, []).append(change.status)
        events: dict[str, list[tuple[str, dict]]] = {}
        for event in session.scalars(select(Event).order_by(Event.seq)):
            analysis = json.loads(event.body)["data"]["analysis"]
            events.setdefault(event.watch_id, []).append((event.type, analysis))
        duplicates = session.execute(
            select(Event.watch_id, Event.dedupe_key)
            .group_by(Event.watch_id, Event.dedupe_key)
            .having(func.count() > 1)
        ).all()
        deliveries = session.scalar(select(func.count()).select_from(Delivery))
        leased = session.scalar(
            select(func.count()).select_from(Asset).where(Asset.lease_owner.is_not(None))
        )

    polls_by_worker = {b.worker_id: sum(b.counters["polls"].values()) for b in beats}
    outcomes = Counter()
    for beat in beats:
        outcomes.update(beat.counters["polls"])
    event_types = Counter(kind for items in events.values() for kind, _ in items)
    print(
        f"\n300 watches, 2 workers: registered in {registered:.1f} s, all ended at {ended:.1f} s;"
        f" upstream requests {stats['requests']}, polls recorded by workers {polls_by_worker}"
        f" ({dict(outcomes)}), sum of assets.poll_count {asset_polls};"
        f" max in flight per asset {stats['max_in_flight_per_asset']};"
        f" events {dict(event_types)}; deliveries {deliveries}, {len(receiver.requests)} received"
    )
    assert len(beats) == 2
    assert all(polls > 0 for polls in polls_by_worker.values()), polls_by_worker
    assert stats["max_in_flight_per_asset"] == 1
    assert stats["requests"] == sum(polls_by_worker.values()) == asset_polls
    assert set(outcomes) == {"status"}, outcomes
    assert duplicates == []
    assert leased == 0
    assert deliveries == sum(event_types.values())  # one webhook target each
    assert set(events) <= set(watch_ids.values())
    for asset_id, (schedule, subscribed) in plans.items():
        watch = watches[watch_ids[asset_id]]
        outcome = schedule["outcome"]
        assert (watch.state, watch.status) == (END_STATE[outcome], outcome), asset_id
        check_watch(outcome, subscribed, history[watch.id], events.get(watch.id, []))


# --- PostgreSQL: a worker killed, or stopped, while its poll is held open -------------------------


def _held_watch(app, sim_control, asset_id: str, hook: str) -> tuple[Any, str]:
    assert sim_control.put(f"/assets/ws/1/{asset_id}", json={"status": "ANALYZING"}).ok
    client = app.test_client()
    response = client.post("/api/v1/watches", json=watch_body(asset_id, True, hook), headers=AUTH)
    assert response.status_code == 201, response.json
    return client, response.json["id"]


def _hold_next_poll(sim_control, asset_id: str, wait_until) -> None:
    fault = {"kind": "hold", "asset_id": asset_id, "timeout_seconds": 120}
    assert sim_control.post("/faults", json=fault).status_code == 201
    wait_until(lambda: sim_control.get("/stats").json()["held"] == 1, timeout=10, message="held")


def _asset(app, asset_id: str) -> Asset:
    with app.app_context():
        return db.session.scalars(select(Asset).where(Asset.asset_id == asset_id)).one()


@pytest.mark.postgres
@pytest.mark.timeout(60)
def test_sigkill_mid_poll_lease_expires_and_another_worker_finishes(
    tmp_path, pg_app, postgres_url, simulator, sim_control, receiver, wait_until
):
    """kill -9 during a poll: the lease expires, another worker retakes it, one terminal event."""
    app = pg_app
    client, watch_id = _held_watch(app, sim_control, "k1", f"{receiver.url}/in")
    procs = Processes(tmp_path)
    env = bridge_env(postgres_url, simulator.url)
    try:
        procs.worker("worker-a", env)
        wait_until(lambda: _asset(app, "k1").poll_count >= 1, timeout=15, message="first poll")
        _hold_next_poll(sim_control, "k1", wait_until)
        held = _asset(app, "k1")
        assert held.lease_owner is not None
        assert procs.stop("worker-a", signal.SIGKILL, timeout=10) == -signal.SIGKILL
        killed_at = time.monotonic()
        assert sim_control.put("/assets/ws/1/k1", json={"status": "ANALYZE_COMPLETED"}).ok
        assert sim_control.post("/release").json() == {"released": 1}
        procs.worker("worker-b", env)

        def ended() -> bool:
            with app.app_context():
                return db.session.get(Watch, watch_id).state != "watching"

        wait_until(ended, timeout=20, message="the watch ended under worker-b")
        took = time.monotonic() - killed_at
        assert procs.stop("worker-b") == 0
    finally:
        procs.stop_all()

    watch = client.get(f"/api/v1/watches/{watch_id}", headers=AUTH).json
    events = client.get("/api/v1/events", query_string={"watch_id": watch_id}, headers=AUTH).json
    after = _asset(app, "k1")
    sim_asset = sim_control.get("/assets/ws/1/k1").json()
    print(
        f"\nSIGKILL mid-poll: ended {took:.1f} s after the kill (lease 2 s);"
        f" upstream requests {sim_asset['requests']}, assets.poll_count {after.poll_count},"
        f" events {[e['type'] for e in events['items']]}"
    )
    assert watch["state"] == "completed"
    assert [h["status"] for h in watch["history"]] == ["ANALYZING", "ANALYZE_COMPLETED"]
    check_watch(
        "ANALYZE_COMPLETED",
        True,
        [h["status"] for h in watch["history"]],
        [(e["type"], e["data"]["analysis"]) for e in events["items"]],
    )
    with app.app_context():
        finished = db.session.get(Watch, watch_id).finished_at
    assert finished >= held.lease_expires_at  # retaken only once the dead worker's lease expired
    assert (after.lease_owner, after.next_poll_at) == (None, None)
    assert sim_asset["max_in_flight"] == 1
    assert after.poll_count == sim_asset["requests"] - 1  # the killed worker's poll is lost


@pytest.mark.postgres
@pytest.mark.timeout(60)
def test_sigterm_mid_poll_exits_promptly_and_cleanly(
    tmp_path, pg_app, postgres_url, simulator, sim_control, receiver, wait_until
):
    """SIGTERM during a poll the upstream holds open: exit 0 well within Heroku's 30 s."""
    app = pg_app
    _held_watch(app, sim_control, "t1", f"{receiver.url}/in")
    fault = {"kind": "hold", "asset_id": "t1", "timeout_seconds": 120}
    assert sim_control.post("/faults", json=fault).status_code == 201  # the very first poll
    procs = Processes(tmp_path)
    try:
        procs.worker("worker", bridge_env(postgres_url, simulator.url))
        wait_until(lambda: sim_control.get("/stats").json()["held"] == 1, timeout=15)
        sent = time.monotonic()
        code = procs.stop("worker", timeout=35)
        took = time.monotonic() - sent
    finally:
        sim_control.post("/release")
        procs.stop_all()
    with app.app_context():
        beats = db.session.scalars(select(WorkerHeartbeat)).all()
    after = _asset(app, "t1")
    print(
        f"\nSIGTERM mid-poll: exit {code} after {took:.1f} s; final counters {beats[0].counters['polls']}"
    )
    assert code == 0
    assert took < 30
    assert len(beats) == 1
    assert after.lease_owner is None  # no stuck lease for the next worker
    assert sum(beats[0].counters["polls"].values()) == 1  # the final heartbeat counted it


# --- SQLite: gunicorn and a worker on one file ------------------------------------------------------


@pytest.mark.timeout(90)
def test_sqlite_web_and_worker_processes_run_100_watches(tmp_path, simulator, receiver, wait_until):
    """The single-machine setup: gunicorn and a worker share one SQLite file without locking up."""
    database_url = f"sqlite:///{tmp_path}/bridge.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = bridge_env(database_url, simulator.url, PORT=str(port), WEB_CONCURRENCY="2")
    upgrade = subprocess.run(
        [str(BIN / "mi-bridge"), "db", "upgrade"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr
    rng = random.Random(7)
    plans = {f"s{n:03d}": (sim_schedule(rng, 1, 2), rng.random() < 1 / 3) for n in range(100)}
    codes: list[int] = []
    procs = Processes(tmp_path)
    started = time.monotonic()
    try:
        procs.start(
            "web",
            [str(BIN / "gunicorn"), "-c", str(REPO / "gunicorn.conf.py"), "--no-control-socket",
             "-b", f"127.0.0.1:{port}", "app:create_app()"],
            env,
        )  # fmt: skip
        procs.worker("worker", env)

        def web_up() -> bool:
            try:
                return requests.get(f"{base}/healthz", timeout=2).ok
            except requests.RequestException:  # not listening yet, or no worker booted yet
                return False

        wait_until(web_up, timeout=30, message="gunicorn serves /healthz")

        def register(asset_id: str) -> tuple[str, str]:
            schedule, subscribed = plans[asset_id]
            put = requests.put(
                f"{simulator.url}/_sim/assets/ws/1/{asset_id}", json=schedule, timeout=10
            )
            assert put.status_code == 201, put.text
            response = requests.post(
                f"{base}/api/v1/watches",
                json=watch_body(asset_id, subscribed, f"{receiver.url}/in"),
                headers=AUTH,
                timeout=30,
            )
            codes.append(response.status_code)
            assert response.status_code == 201, response.text
            return asset_id, response.json()["id"]

        with ThreadPoolExecutor(8) as pool:
            watch_ids = dict(pool.map(register, plans))
        registered = time.monotonic() - started

        def api(path: str, **params: Any) -> dict[str, Any]:
            response = requests.get(f"{base}{path}", params=params, headers=AUTH, timeout=30)
            codes.append(response.status_code)
            assert response.status_code == 200, response.text
            return response.json()

        wait_until(
            lambda: api("/api/v1/watches", state="watching", limit=1)["items"] == [],
            timeout=45,
            message="every watch ended",
        )
        ended = time.monotonic() - started
        watches = {w["id"]: w for w in api("/api/v1/watches", limit=200)["items"]}
        events: dict[str, list[tuple[str, dict]]] = {}
        for event in api("/api/v1/events", limit=500)["items"]:
            events.setdefault(event["watch_id"], []).append(
                (event["type"], event["data"]["analysis"])
            )
        assert procs.stop("worker") == 0
        assert procs.stop("web") == 0
    finally:
        procs.stop_all()

    print(
        f"\nSQLite, gunicorn x2 + 1 worker: 100 watches registered in {registered:.1f} s,"
        f" all ended at {ended:.1f} s; {sum(len(e) for e in events.values())} events;"
        f" HTTP status codes {dict(Counter(codes))}; {len(receiver.requests)} webhooks received"
    )
    assert not [code for code in codes if code >= 500]
    for name in ("web", "worker"):
        output = procs.output(name)
        assert "database is locked" not in output, name
        assert "Traceback" not in output, name
    assert len(watches) == 100
    for asset_id, (schedule, subscribed) in plans.items():
        watch = watches[watch_ids[asset_id]]
        outcome = schedule["outcome"]
        assert watch["state"] == END_STATE[outcome], asset_id
        history = [h["status"] for h in watch["history"]]
        check_watch(outcome, subscribed, history, events.get(watch["id"], []))
