"""The fault matrix: each simulator fault against the real worker code, and the bridge's recovery.

Every row follows one asset story: ``WAIT_ANALYZE`` (first poll), then the fault is injected and
the asset moves to ``ANALYZING`` while the fault lasts, then it completes. Whatever the fault, each
watch must end ``completed`` with exactly the events that story implies (two
``analysis.status_changed`` and one ``analysis.completed``, in order), each delivered once to a
real receiver, and the bridge must recover by itself (errors cleared, pause ended, credentials
``ok`` again). Most rows drive ticks in process with the ``bridge`` fixture's clock; the database
outage runs a real ``mi-bridge worker`` on PostgreSQL behind ``tests/tcpproxy.py``.

Each row prints one ``fault matrix:`` line with what it observed (docs/reliability.md quotes them).
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import timedelta
from itertools import groupby
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import func, select

from app.clock import rfc3339
from app.db import db
from app.models import Asset, BridgeState, Delivery, Event, StatusChange, Watch, WorkerHeartbeat
from app.upstream.client import MediaIntelligenceClient
from app.worker.delivery import deliver_once
from tests.fixtures import TEST_ACCESS_KEY
from tests.processes import AUTH, Processes, bridge_env
from tests.tcpproxy import TcpProxy

STORY = ["WAIT_ANALYZE", "ANALYZING", "ANALYZE_COMPLETED"]
EXPECTED_EVENTS = [
    ("analysis.status_changed", "ANALYZING", "WAIT_ANALYZE"),
    ("analysis.status_changed", "ANALYZE_COMPLETED", "ANALYZING"),
    ("analysis.completed", "ANALYZE_COMPLETED", "ANALYZING"),
]
ALL_EVENTS = [
    "analysis.status_changed",
    "analysis.completed",
    "analysis.failed",
    "analysis.cancelled",
    "watch.expired",
    "watch.error",
]
ASSETS = ("f1", "f2", "f3")


@pytest.fixture
def bridge_overrides():
    """Webhooks go to the test's receiver on 127.0.0.1; a failed send is retried after 1 s."""
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true", "BRIDGE_RETRY_SCHEDULE": "1,1,1"}


def report(fault: str, observed: str) -> None:
    print(f"\nfault matrix: {fault} | {observed}")


def asset_row(bridge, asset_id: str, api: str = "index") -> Asset:
    with bridge.db():
        return db.session.scalars(
            select(Asset).where(Asset.asset_id == asset_id, Asset.api == api)
        ).one()


def state_row(bridge) -> BridgeState:
    with bridge.db():
        return db.session.get(BridgeState, 1)


def start_story(bridge, receiver, api: str = "index") -> list[str]:
    """Watch ASSETS (all events, one webhook target each) and take the first poll: WAIT_ANALYZE."""
    ids = []
    for asset_id in ASSETS:
        bridge.set_status(asset_id, "WAIT_ANALYZE")
        target = {"type": "webhook", "url": f"{receiver.url}/in/{asset_id}"}
        ids.append(bridge.register(asset_id, api=api, events=ALL_EVENTS, targets=[target])["id"])
    assert bridge.tick().requests == len(ASSETS)
    assert all(bridge.watch(i)["status"] == "WAIT_ANALYZE" for i in ids)
    return ids


def move_all(bridge, status: str) -> None:
    for asset_id in ASSETS:
        bridge.set_status(asset_id, status, **({"index_id": 7} if "COMPLETED" in status else {}))


def tick_until(bridge, ids: list[str], want, limit: int = 20) -> int:
    """Tick (10 s of fake time each, beyond the 8 s cap) until ``want(watch)`` for every watch."""
    for ticks in range(1, limit + 1):
        bridge.tick(advance=10)
        if all(want(bridge.watch(i)) for i in ids):
            return ticks
    raise AssertionError(f"not reached in {limit} ticks: {[bridge.watch(i) for i in ids]}")


def finish_story(bridge, ids: list[str]) -> None:
    """ANALYZING must be seen (after the fault); then the assets complete and the watches end."""
    tick_until(bridge, ids, lambda w: w["status"] == "ANALYZING")
    move_all(bridge, "ANALYZE_COMPLETED")
    tick_until(bridge, ids, lambda w: w["state"] == "completed")


def assert_exact_events(bridge, receiver, ids: list[str]) -> Counter:
    """Each watch: the story's history and exactly its three events; each delivered once."""
    event_ids = []
    for watch_id in ids:
        watch = bridge.watch(watch_id)
        assert watch["state"] == "completed", watch
        statuses = [status for status, _ in groupby(h["status"] for h in watch["history"])]
        assert statuses == STORY, watch["history"]
        events = bridge.events(watch_id)
        seen = [
            (e["type"], e["data"]["analysis"]["status"], e["data"]["analysis"]["previous_status"])
            for e in events
        ]
        assert seen == EXPECTED_EVENTS, seen
        event_ids += [e["id"] for e in events]
    for _ in range(30):
        bridge.clock.advance(2)
        deliver_once(bridge.runtime)
        with bridge.db():
            pending = db.session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.state != "succeeded")
            )
        if not pending:
            break
    assert pending == 0
    on_wire = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert set(on_wire) == set(event_ids)
    assert set(on_wire.values()) == {1}, on_wire
    with bridge.db():
        duplicates = db.session.execute(
            select(Event.watch_id, Event.dedupe_key)
            .group_by(Event.watch_id, Event.dedupe_key)
            .having(func.count() > 1)
        ).all()
    assert duplicates == []
    return on_wire


# --- upstream faults, in process -----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_burst_backs_off_then_resumes(bridge, receiver, status):
    ids = start_story(bridge, receiver)
    bridge.fault(kind="http_error", status=status, count=3 * len(ASSETS))
    move_all(bridge, "ANALYZING")
    for expected_errors in (1, 2, 3):
        bridge.tick(advance=10)
        row = asset_row(bridge, "f1")
        assert row.consecutive_errors == expected_errors
        assert row.last_error.startswith(f"HTTP {status}")
        assert all(bridge.watch(i)["state"] == "watching" for i in ids)
        # The watch JSON says why it learns nothing, with NCP's request id for a support ticket.
        last_error = bridge.watch(ids[0])["last_error"]
        assert last_error["kind"] == "transient"
        assert (last_error["status_code"], last_error["consecutive"]) == (status, expected_errors)
        assert last_error["message"] == row.last_error
        assert last_error["at"] == rfc3339(bridge.clock.now)
        assert len(last_error["request_id"]) == 36  # the simulator's uuid4, as NCP sends one
    intervals = asset_row(bridge, "f1").interval
    finish_story(bridge, ids)
    assert asset_row(bridge, "f1").consecutive_errors == 0
    assert [bridge.watch(i)["last_error"] for i in ids] == [None] * len(ids)
    on_wire = assert_exact_events(bridge, receiver, ids)
    report(
        f"{status} x3 per asset",
        f"watching through 3 errors (interval grew to {intervals:.0f} s), resumed on the next "
        f"success, consecutive_errors back to 0; {len(on_wire)} events, each delivered once",
    )


@pytest.mark.parametrize(("retry_after", "pause"), [("20", 20), (None, 30)])
def test_429_pauses_every_poll_then_resumes(bridge, receiver, retry_after, pause):
    ids = start_story(bridge, receiver)
    spec = {"kind": "rate_limit", **({"retry_after": retry_after} if retry_after else {})}
    bridge.fault(**spec)
    move_all(bridge, "ANALYZING")
    bridge.tick(advance=10)
    paused_until = state_row(bridge).rate_limited_until
    assert pause - 1 <= (paused_until - bridge.clock.now).total_seconds() <= pause
    assert bridge.client.get("/readyz").json["rate_limited_until"] is not None
    before = bridge.upstream_requests()
    waited = 0
    while bridge.clock.now + timedelta(seconds=3) < paused_until:
        assert bridge.tick(advance=3).paused
        waited += 3
    assert bridge.upstream_requests() == before  # not one request while paused
    finish_story(bridge, ids)
    on_wire = assert_exact_events(bridge, receiver, ids)
    report(
        f"429 {'Retry-After: ' + retry_after if retry_after else 'without Retry-After'}",
        f"all polling paused {pause} s (0 requests in {waited} s of ticks), then resumed; "
        f"{len(on_wire)} events, each delivered once",
    )


def test_timeouts_beyond_the_request_budget_are_transient(bridge, receiver):
    """``slow`` answers later than the poll's budget (half the 2 s lease): a timeout, retried."""
    ids = start_story(bridge, receiver)
    bridge.runtime.settings = bridge.runtime.settings.model_copy(
        update={"bridge_lease_seconds": 2.0}
    )
    bridge.fault(kind="slow", delay_seconds=3, count=len(ASSETS))
    move_all(bridge, "ANALYZING")
    started = time.monotonic()
    bridge.tick(advance=10)
    took = time.monotonic() - started
    assert took < 2.5  # the tick gave up within its budget, not after the 3 s answer
    row = asset_row(bridge, "f1")
    assert (row.consecutive_errors, row.last_error) == (1, "timeout")
    assert bridge.watch(ids[0])["last_error"]["status_code"] is None  # no answer, no status
    finish_story(bridge, ids)
    on_wire = assert_exact_events(bridge, receiver, ids)
    report(
        "slow 3 s (budget 1 s)",
        f"tick gave up after {took:.1f} s with a timeout, the watch kept watching, the next poll "
        f"saw the change; {len(on_wire)} events, each delivered once",
    )


@pytest.mark.parametrize("kind", ["malformed", "unexpected"])
def test_malformed_and_unexpected_json_are_transient(bridge, receiver, kind):
    ids = start_story(bridge, receiver)
    bridge.fault(kind=kind, count=2 * len(ASSETS))
    move_all(bridge, "ANALYZING")
    bridge.tick(advance=10)
    row = asset_row(bridge, "f1")
    assert row.consecutive_errors == 1
    detail = row.last_error
    assert all(bridge.watch(i)["status"] == "WAIT_ANALYZE" for i in ids)  # nothing invented
    finish_story(bridge, ids)
    on_wire = assert_exact_events(bridge, receiver, ids)
    report(
        f"{kind} 200 body x2",
        f"transient ({detail!r}), status unchanged, polling resumed; "
        f"{len(on_wire)} events, each delivered once",
    )


def _auth_story(bridge, receiver, break_it, fix_it, label: str) -> None:
    ids = start_story(bridge, receiver)
    break_it()
    move_all(bridge, "ANALYZING")
    bridge.tick(advance=10)
    state = state_row(bridge)
    assert state.upstream_auth == "failing"
    assert bridge.client.get("/readyz").json["upstream_auth"] == "failing"
    assert all(bridge.watch(i)["state"] == "watching" for i in ids)
    assert all(bridge.events(i) == [] for i in ids)
    detail = state.upstream_auth_detail
    fix_it()
    finish_story(bridge, ids)
    assert state_row(bridge).upstream_auth == "ok"
    assert bridge.client.get("/readyz").json["upstream_auth"] == "ok"
    on_wire = assert_exact_events(bridge, receiver, ids)
    report(
        label,
        f"upstream_auth failing ({detail!r}), no watch failed, no event; after the fix "
        f"upstream_auth ok by itself; {len(on_wire)} events, each delivered once",
    )


def test_401_from_clock_skew_recovers_when_the_clock_is_right(bridge, receiver):
    def skew() -> None:
        assert bridge.control.put("/config", json={"clock_offset_seconds": 600}).ok

    def unskew() -> None:
        assert bridge.control.put("/config", json={"clock_offset_seconds": 0}).ok

    _auth_story(bridge, receiver, skew, unskew, "401 clock skew 600 s")


def test_401_from_a_bad_secret_recovers_when_the_secret_is_fixed(bridge, receiver):
    good = bridge.runtime.client

    def bad_secret() -> None:
        bridge.runtime.client = MediaIntelligenceClient(
            bridge.simulator.url, TEST_ACCESS_KEY, "not-the-secret"
        )

    def fix() -> None:
        bridge.runtime.client.close()
        bridge.runtime.client = good

    _auth_story(bridge, receiver, bad_secret, fix, "401 bad secret key")


@pytest.mark.parametrize("gone_status", [404, 410])
def test_generation_switched_off_mid_watch(bridge, receiver, gone_status):
    ids = start_story(bridge, receiver, api="video-assets")
    assert bridge.control.put(
        "/generations/video-assets", json={"enabled": False, "status_code": gone_status}
    ).ok
    move_all(bridge, "ANALYZING")
    report_tick = bridge.tick(advance=10)
    assert report_tick.requests == 2 * len(ASSETS)  # the old path, then the next generation
    for watch_id in ids:
        watch = bridge.watch(watch_id)
        assert (watch["api"], watch["reason"], watch["status"]) == (
            "assets",
            "generation_gone",
            "ANALYZING",
        )
    finish_story(bridge, ids)
    on_wire = assert_exact_events(bridge, receiver, ids)
    by_generation = bridge.control.get("/stats").json()["by_generation"]
    report(
        f"video-assets switched off ({gone_status})",
        f"moved to assets in the same tick, no status lost, requests by generation "
        f"{by_generation}; {len(on_wire)} events, each delivered once",
    )


# --- the database briefly unavailable, under a real worker process --------------------------------


def _outage_lines(log: str) -> int:
    """The worker's lines about the database going away (one when it goes, then at most one a
    minute): an outage is not a traceback per tick."""
    return sum("database unreachable" in line for line in log.splitlines())


def _through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@127.0.0.1:{proxy.port}"))


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_database_outage_under_a_worker_process(
    tmp_path, pg_app, postgres_url, simulator, sim_control, receiver, wait_until
):
    """PostgreSQL cut for a while (connections reset, new ones refused) under a running worker:
    it logs the errors, keeps ticking, and after the restore finishes every watch exactly once."""
    target = urlsplit(postgres_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432).start()
    app = pg_app
    client = app.test_client()
    env = bridge_env(_through(proxy, postgres_url), simulator.url, BRIDGE_RETRY_SCHEDULE="1,1,1")
    procs = Processes(tmp_path)
    n = 20
    ids = []
    for k in range(n):
        assert sim_control.put(f"/assets/ws/1/d{k}", json={"status": "WAIT_ANALYZE"}).ok
        body = {
            "workspace": "ws", "project_id": "1", "asset_id": f"d{k}", "api": "index",
            "events": ALL_EVENTS, "targets": [{"type": "webhook", "url": f"{receiver.url}/d{k}"}],
        }  # fmt: skip
        response = client.post("/api/v1/watches", json=body, headers=AUTH)
        assert response.status_code == 201, response.json
        ids.append(response.json["id"])

    def count(*where) -> int:
        with app.app_context():
            return db.session.scalar(select(func.count()).select_from(Watch).where(*where))

    def polled() -> int:
        with app.app_context():
            return db.session.scalar(select(func.count()).select_from(StatusChange))

    try:
        procs.worker("worker", env)
        wait_until(lambda: polled() == n, timeout=30, message="first poll of every asset")
        for k in range(n):
            assert sim_control.put(f"/assets/ws/1/d{k}", json={"status": "ANALYZING"}).ok
        wait_until(lambda: polled() >= n + n // 2, timeout=30, message="some ANALYZING seen")
        open_connections = proxy.cut()
        cut_at = time.monotonic()
        for k in range(n):
            pin = {"status": "ANALYZE_COMPLETED", "index_id": k}
            assert sim_control.put(f"/assets/ws/1/d{k}", json=pin).ok
        wait_until(
            lambda: _outage_lines(procs.output("worker")) >= 1 and proxy.refused >= 3,
            timeout=30,
            message="the worker noticed the missing database and kept trying",
        )
        outage = time.monotonic() - cut_at
        assert procs.started["worker"].poll() is None  # it survived
        proxy.restore()
        restored_at = time.monotonic()
        wait_until(
            lambda: count(Watch.state == "watching") == 0,
            timeout=60,
            message="every watch ended after the restore",
        )
        recovered = time.monotonic() - restored_at

        def delivered() -> bool:
            with app.app_context():
                return not db.session.scalar(
                    select(func.count()).select_from(Delivery).where(Delivery.state != "succeeded")
                )

        wait_until(delivered, timeout=30, message="every delivery succeeded")
        assert procs.stop("worker", signal.SIGTERM) == 0
    finally:
        procs.stop_all()
        proxy.close()

    log = procs.output("worker")
    with app.app_context():
        session = db.session
        watches = session.scalars(select(Watch)).all()
        history: dict[str, list[str]] = {}
        for change in session.scalars(select(StatusChange).order_by(StatusChange.pk)):
            history.setdefault(change.watch_id, []).append(change.status)
        events: dict[str, list[tuple]] = {}
        for event in session.scalars(select(Event).order_by(Event.seq)):
            analysis = json.loads(event.body)["data"]["analysis"]
            events.setdefault(event.watch_id, []).append(
                (event.type, analysis["status"], analysis["previous_status"])
            )
        beat = session.scalars(select(WorkerHeartbeat)).one()
        leased = session.scalar(
            select(func.count()).select_from(Asset).where(Asset.lease_owner.is_not(None))
        )
    for watch in watches:
        assert (watch.state, watch.status) == ("completed", "ANALYZE_COMPLETED")
        statuses = [status for status, _ in groupby(history[watch.id])]
        story = STORY if "ANALYZING" in statuses else [STORY[0], STORY[2]]
        assert statuses == story, history[watch.id]
        expected = (
            EXPECTED_EVENTS
            if len(story) == 3
            else [
                ("analysis.status_changed", "ANALYZE_COMPLETED", "WAIT_ANALYZE"),
                ("analysis.completed", "ANALYZE_COMPLETED", "WAIT_ANALYZE"),
            ]
        )
        assert events[watch.id] == expected, events[watch.id]
    all_event_ids = {r.headers["webhook-id"] for r in receiver.requests}
    with app.app_context():
        assert all_event_ids == set(db.session.scalars(select(Event.id)))
    bodies: dict[str, set[bytes]] = {}
    for request in receiver.requests:
        bodies.setdefault(request.headers["webhook-id"], set()).add(request.body)
    assert all(len(b) == 1 for b in bodies.values())
    assert leased == 0
    assert _outage_lines(log) <= 3, "an outage is a line when it starts, not a line per tick"
    wire_duplicates = len(receiver.requests) - len(all_event_ids)
    report(
        "PostgreSQL unreachable (proxy cut)",
        f"{open_connections} connections reset, {proxy.refused} refused during {outage:.1f} s; "
        f"the worker logged {_outage_lines(log)} outage line(s), no tracebacks, and kept running; "
        f"every watch ended {recovered:.1f} s after the restore; {len(all_event_ids)} events, "
        f"{wire_duplicates} duplicate(s) on the wire; polls {sum(beat.counters['polls'].values())}",
    )
