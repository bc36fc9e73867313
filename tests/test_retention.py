"""Retention (``BRIDGE_RETENTION_DAYS``): housekeeping deletes watches that ended long enough ago
with everything that hangs off them, in committed batches, and the heartbeat rows of gone workers;
nothing else. On SQLite and PostgreSQL, driven tick by tick on a fake clock."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.pool import NullPool

from app.cli.housekeep import housekeep_command
from app.db import db
from app.models import (
    Asset,
    BridgeState,
    Delivery,
    DeliveryAttempt,
    Event,
    StatusChange,
    Target,
    Watch,
    WorkerHeartbeat,
)
from app.services import services
from app.worker.delivery import deliver_once
from app.worker.heartbeat import beat
from app.worker.housekeeping import (
    SQLITE_MIN_PAUSE,
    SQLITE_PAUSE_RATIO,
    housekeep,
    housekeeping_pass,
    pause_ratio_for,
)
from app.worker.runtime import WorkerRuntime
from tests.fixtures import AUTH, TICK_TIMINGS, Bridge, FakeClock, dispose, simulator_config

DAY = 24 * 3600.0
#: Retention in these tests: decimals allowed.
RETENTION_DAYS = "1.5"
#: Long enough for a watch to keep watching through every jump of the clock below (the maximum).
LONG_TIMEOUT = 30 * DAY


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_bridge(request, app_factory, clock, simulator, sim_control, tmp_path) -> Iterator:
    """``make_bridge(**config)``: the bridge on SQLite, then on PostgreSQL, polling the simulator
    tick by tick on ``clock``, with ``BRIDGE_RETENTION_DAYS`` 1.5 unless ``config`` says otherwise."""
    made: list[Bridge] = []

    def make(**config: str) -> Bridge:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path}/retention.db"
        else:
            url = request.getfixturevalue("postgres_url")
        settings = {"BRIDGE_RETENTION_DAYS": RETENTION_DAYS, **TICK_TIMINGS, **config}
        app = app_factory(
            clock=clock, DATABASE_URL=url, **simulator_config(simulator.url), **settings
        )
        bridge = Bridge(app, clock, simulator, sim_control)
        made.append(bridge)
        return bridge

    yield make
    for bridge in made:
        bridge.runtime.close()
        dispose(bridge.app)


def end_watches(
    bridge: Bridge, asset_ids: list[str], status: str = "ANALYZE_COMPLETED"
) -> list[str]:
    """Register a watch of each asset (a webhook and a Slack target), let it see ANALYZING, then
    ``status``, and run delivery ticks: each ends with history, an event, deliveries and attempts
    (the webhook's host is not loopback, so its sends fail and are retried: attempts rows)."""
    ids = []
    for asset_id in asset_ids:
        bridge.set_status(asset_id, "ANALYZING")
        targets = [
            {"type": "webhook", "url": "https://hooks.example.test/in"},
            {"type": "slack_webhook", "url": "https://hooks.example.test/services/T0/B0/X"},
        ]
        ids.append(bridge.register(asset_id, targets=targets)["id"])
    bridge.tick()
    for asset_id in asset_ids:
        bridge.set_status(asset_id, status, index_id=7)
    bridge.tick(advance=1.2)
    deliver_once(bridge.runtime)
    bridge.clock.advance(6)
    deliver_once(bridge.runtime)  # a second attempt after the first retry delay (5 s)
    return ids


def rows_of(bridge: Bridge, watch_id: str) -> dict[str, int]:
    """How many rows of each kind hang off ``watch_id`` (and whether the watch itself exists)."""
    with bridge.db():
        session = db.session()
        deliveries = select(Delivery.seq).where(Delivery.watch_id == watch_id)

        def count(model, *where) -> int:
            return session.scalar(select(func.count()).select_from(model).where(*where))

        return {
            "watches": count(Watch, Watch.id == watch_id),
            "status_history": count(StatusChange, StatusChange.watch_id == watch_id),
            "events": count(Event, Event.watch_id == watch_id),
            "deliveries": count(Delivery, Delivery.watch_id == watch_id),
            "delivery_attempts": count(
                DeliveryAttempt, DeliveryAttempt.delivery_seq.in_(deliveries)
            ),
            "targets": count(Target, Target.watch_id == watch_id),
        }


def asset_ids_stored(bridge: Bridge) -> set[str]:
    with bridge.db():
        return set(db.session.scalars(select(Asset.asset_id)))


def count_all(bridge: Bridge, model) -> int:
    with bridge.db():
        return db.session.scalar(select(func.count()).select_from(model))


def metric_samples(bridge: Bridge) -> dict:
    response = bridge.client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def pruned(bridge: Bridge, table: str) -> float:
    return metric_samples(bridge)[("mi_bridge_pruned_rows_total", (("table", table),))]


# --- what goes and what stays ----------------------------------------------------------------------


def test_watches_ended_long_enough_ago_go_with_all_their_rows_and_nothing_else(make_bridge):
    bridge = make_bridge()
    old = end_watches(bridge, ["old-1"]) + end_watches(bridge, ["old-2"], "ANALYZE_FAIL")
    # Two watches share an asset: one stopped long ago, one still watching.
    bridge.set_status("shared", "ANALYZING")
    stopped = bridge.register("shared")["id"]
    watching = bridge.register("shared", timeout_seconds=LONG_TIMEOUT)["id"]
    bridge.tick()
    assert bridge.client.delete(f"/api/v1/watches/{stopped}", headers=AUTH).status_code == 200
    bridge.clock.advance(DAY)
    recent = end_watches(bridge, ["recent"])
    before = {watch_id: rows_of(bridge, watch_id) for watch_id in [*old, *recent, watching]}
    for watch_id in [*old, *recent]:  # the scenario really has every kind of row
        assert all(before[watch_id].values()), before[watch_id]
    old_events = {e["id"] for w in old for e in bridge.events(w)}
    assert old_events

    bridge.clock.advance(0.6 * DAY)  # old ones ended 1.6 days ago, "recent" 0.6 days ago
    report = housekeep(bridge.runtime)

    assert report.removed["watches"] == 3  # old-1, old-2 and the stopped one
    for watch_id in [*old, stopped]:
        assert set(rows_of(bridge, watch_id).values()) == {0}
        assert bridge.client.get(f"/api/v1/watches/{watch_id}", headers=AUTH).status_code == 404
    for watch_id in [*recent, watching]:
        assert rows_of(bridge, watch_id) == before[watch_id]
    feed = bridge.events()
    assert not old_events & {e["id"] for e in feed}
    assert {e["data"]["watch"]["id"] for e in feed} == {recent[0]}
    # Assets nobody watches any more went; the shared one stays (still watched, still polled).
    assert asset_ids_stored(bridge) == {"recent", "shared"}
    assert bridge.watch(watching)["state"] == "watching"
    expected = {
        "watches": 3,
        "targets": sum(before[w]["targets"] for w in old) + 1,
        "status_history": sum(before[w]["status_history"] for w in old) + 1,
        "events": sum(before[w]["events"] for w in old),
        "deliveries": sum(before[w]["deliveries"] for w in old),
        "delivery_attempts": sum(before[w]["delivery_attempts"] for w in old),
        "assets": 2,
    }
    assert {table: report.removed[table] for table in expected} == expected
    for table, value in expected.items():
        assert pruned(bridge, table) == value

    # Later passes remove nothing more until "recent" is old enough too.
    assert housekeep(bridge.runtime).total == 0
    bridge.clock.advance(DAY)
    assert housekeep(bridge.runtime).removed["watches"] == 1
    assert bridge.client.get(f"/api/v1/watches/{recent[0]}", headers=AUTH).status_code == 404
    assert bridge.events() == []
    assert pruned(bridge, "watches") == 4  # cumulative


def test_zero_retention_keeps_every_watch(make_bridge):
    bridge = make_bridge(BRIDGE_RETENTION_DAYS="0")
    ended = end_watches(bridge, ["a1", "a2"])
    before = {watch_id: rows_of(bridge, watch_id) for watch_id in ended}
    bridge.clock.advance(365 * DAY)
    report = housekeep(bridge.runtime)
    assert report.removed.get("watches", 0) == 0
    assert {watch_id: rows_of(bridge, watch_id) for watch_id in ended} == before
    assert asset_ids_stored(bridge) == {"a1", "a2"}
    assert pruned(bridge, "watches") == 0


def test_a_watch_whose_delivery_is_being_sent_waits_for_a_later_pass(make_bridge):
    bridge = make_bridge()
    first, second = end_watches(bridge, ["sending", "idle"])
    bridge.clock.advance(2 * DAY)
    now = bridge.clock()
    with bridge.db():  # a worker holds a lease on one of its deliveries, as while sending
        db.session.execute(
            update(Delivery)
            .where(Delivery.watch_id == first)
            .values(lease_owner="other-worker#1", lease_expires_at=now + timedelta(seconds=30))
        )
        db.session.commit()
    assert housekeep(bridge.runtime).removed["watches"] == 1
    assert rows_of(bridge, first)["watches"] == 1
    assert rows_of(bridge, second)["watches"] == 0
    bridge.clock.advance(31)  # the lease ran out
    assert housekeep(bridge.runtime).removed["watches"] == 1
    assert rows_of(bridge, first)["watches"] == 0


@pytest.mark.postgres
def test_housekeeping_never_waits_for_a_row_another_transaction_holds(pg_app, clock):
    """A claim in progress (a delivery row locked, lease not yet written) keeps its watch; the
    pass goes on with the others instead of waiting (``SKIP LOCKED``)."""
    with pg_app.app_context():
        session = db.session()
        ids = _insert_ended_watches(session, clock(), 3)
        session.commit()
    engine = create_engine(services(pg_app).settings.sqlalchemy_url, poolclass=NullPool)
    try:
        with engine.connect() as other:
            other.execute(
                text("SELECT seq FROM deliveries WHERE watch_id = :id FOR UPDATE"), {"id": ids[0]}
            )
            with pg_app.app_context():  # were it to wait, the test's timeout would end it
                report = housekeeping_pass(db.session(), lambda: clock() + timedelta(days=40), 30)
            assert report.removed["watches"] == 2
            other.rollback()
    finally:
        engine.dispose()
    with pg_app.app_context():
        assert db.session.scalars(select(Watch.id)).all() == [ids[0]]


def _insert_ended_watches(session, now, count: int) -> list[str]:
    """``count`` ended watches with one target, event and delivery each, written directly."""
    ids = []
    for n in range(count):
        watch = Watch(
            workspace="ws", project_id="1", asset_id=f"direct-{n}", api="index", state="completed",
            events=["analysis.completed"], deadline_at=now, finished_at=now,
        )  # fmt: skip
        target = Target(type="webhook", url="https://hooks.example.test/in")
        watch.targets.append(target)
        session.add(watch)
        session.flush()
        event = Event(watch_id=watch.id, type="analysis.completed", dedupe_key="c", body="{}")
        session.add(event)
        session.flush()
        session.add(Delivery(event_id=event.id, target_id=target.id, watch_id=watch.id))
        ids.append(watch.id)
    return ids


# --- batches ---------------------------------------------------------------------------------------


def test_batches_commit_one_after_another(make_bridge):
    bridge = make_bridge()
    ended = end_watches(bridge, [f"b{n}" for n in range(5)])
    bridge.clock.advance(2 * DAY)
    url = services(bridge.app).settings.sqlalchemy_url
    observer = create_engine(url, poolclass=NullPool)  # its own connection: sees commits only
    seen: list[int] = []

    def count_from_outside(batch) -> None:
        with observer.connect() as connection:
            seen.append(connection.scalar(text("SELECT count(*) FROM watches")))

    try:
        with bridge.db():
            report = housekeeping_pass(
                db.session(), bridge.clock, 1.5, batch_size=2, on_batch=count_from_outside
            )
    finally:
        observer.dispose()
    assert [batch["watches"] for batch in report.batches] == [2, 2, 1]
    assert seen == [3, 1, 0]
    assert report.removed["watches"] == 5
    assert all(set(rows_of(bridge, w).values()) == {0} for w in ended)
    assert sum(batch["events"] for batch in report.batches) == report.removed["events"] == 5


class _WritingWait(threading.Event):
    """A stop event whose waits are the pauses between batches: each one records its length and
    writes from a connection of its own that never waits for a lock (``timeout=0``), so it succeeds
    only if the pass holds no lock while it pauses."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.pauses: list[float] = []
        self.writes: list[str] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.pauses.append(timeout or 0.0)
        other = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE bridge_state SET id = id")
            other.execute("COMMIT")
            self.writes.append("written")
        except sqlite3.OperationalError as exc:  # "database is locked"
            self.writes.append(str(exc))
        finally:
            other.close()
        return self.is_set()


def test_on_sqlite_a_pass_pauses_between_batches_with_the_write_lock_free(make_bridge):
    """SQLite has one write lock: batches back to back starved the poller of it (polls seconds
    late while a backlog was pruned). The pass now pauses after every full batch, lock released;
    PostgreSQL locks rows and never pauses."""
    bridge = make_bridge()
    end_watches(bridge, [f"p{n}" for n in range(5)])
    bridge.clock.advance(2 * DAY)
    url = services(bridge.app).settings.sqlalchemy_url
    stop = _WritingWait(url.removeprefix("sqlite:///"))
    with bridge.db():
        session = db.session()
        ratio = pause_ratio_for(session)
        if url.startswith("sqlite"):
            assert ratio == SQLITE_PAUSE_RATIO
        else:
            assert ratio == 0.0
            return
        report = housekeeping_pass(
            session, bridge.clock, 1.5, batch_size=2, stop=stop, pause_ratio=ratio
        )
    assert [batch["watches"] for batch in report.batches] == [2, 2, 1]
    assert len(stop.pauses) == 2  # after each full batch; the last one ends the pass
    assert all(pause >= SQLITE_MIN_PAUSE for pause in stop.pauses)
    assert stop.writes == ["written", "written"]


def test_a_stop_during_a_pause_ends_the_pass(make_bridge):
    bridge = make_bridge()
    end_watches(bridge, [f"s{n}" for n in range(5)])
    bridge.clock.advance(2 * DAY)
    stop = threading.Event()
    with bridge.db():
        report = housekeeping_pass(
            db.session(), bridge.clock, 1.5, batch_size=2, stop=stop, pause_ratio=1.0,
            on_batch=lambda _batch: stop.set(),
        )  # fmt: skip
    assert [batch["watches"] for batch in report.batches] == [2]


# --- heartbeats and idempotency keys ---------------------------------------------------------------


def test_heartbeats_of_gone_workers_are_pruned_and_metrics_keep_their_counts(make_bridge):
    bridge = make_bridge()
    gone = WorkerRuntime.from_app(bridge.app, rng=random.Random(1))
    try:
        for _ in range(3):
            gone.counters.poll("status", 0.02)
        beat(gone)
    finally:
        gone.close()
    bridge.clock.advance(23 * 3600)
    bridge.runtime.counters.poll("status", 0.02)
    beat(bridge.runtime)
    assert count_all(bridge, WorkerHeartbeat) == 2
    polls = ("mi_bridge_polls_total", (("outcome", "status"),))
    assert metric_samples(bridge)[polls] == 4

    assert housekeep(bridge.runtime).removed.get("worker_heartbeats", 0) == 0  # gone for 23 h
    bridge.clock.advance(2 * 3600)
    beat(bridge.runtime)
    assert housekeep(bridge.runtime).removed["worker_heartbeats"] == 1
    with bridge.db():
        assert db.session.scalars(select(WorkerHeartbeat.worker_id)).all() == [
            bridge.runtime.worker_id
        ]
        state = db.session.get(BridgeState, 1)
        assert state.retired_counters["polls"] == {"status": 3}
    found = metric_samples(bridge)
    assert found[polls] == 4  # the gone worker's polls still count: no false reset
    assert found[("mi_bridge_poll_duration_seconds_count", ())] == 4
    assert found[("mi_bridge_pruned_rows_total", (("table", "worker_heartbeats"),))] == 1


def test_expired_idempotency_keys_are_still_purged_and_counted(make_bridge):
    bridge = make_bridge()
    headers = {**AUTH, "Idempotency-Key": "old"}
    body = {"workspace": "ws", "project_id": "1", "asset_id": "k1",
            "targets": [{"type": "slack", "channel": "C1"}]}  # fmt: skip
    assert bridge.client.post("/api/v1/watches", json=body, headers=headers).status_code == 201
    bridge.clock.advance(25 * 3600)
    report = housekeep(bridge.runtime)
    assert report.removed["idempotency_keys"] == 1
    assert report.removed.get("watches", 0) == 0  # the watch is still watching
    assert pruned(bridge, "idempotency_keys") == 1


# --- alongside polling -----------------------------------------------------------------------------


def test_retention_runs_between_poll_ticks_while_polling_goes_on(make_bridge):
    bridge = make_bridge()
    old = end_watches(bridge, ["old"])
    bridge.set_status("live", "ANALYZING")
    live = bridge.register("live", timeout_seconds=LONG_TIMEOUT)["id"]
    bridge.tick()
    polls = bridge.watch(live)["poll_count"]
    for _ in range(3):  # two days of polling, housekeeping between ticks
        bridge.tick(advance=DAY / 3)
        housekeep(bridge.runtime)
        bridge.tick(advance=DAY / 3)
    assert rows_of(bridge, old[0])["watches"] == 0
    watched = bridge.watch(live)
    assert watched["state"] == "watching"
    assert watched["poll_count"] == polls + 6
    bridge.set_status("live", "ANALYZE_COMPLETED", index_id=9)
    bridge.tick(advance=10)
    housekeep(bridge.runtime)  # just ended: kept
    assert bridge.watch(live)["state"] == "completed"
    assert [e["type"] for e in bridge.events(live)] == ["analysis.completed"]
    assert "live" in asset_ids_stored(bridge)


# --- mi-bridge housekeep ---------------------------------------------------------------------------


def test_the_housekeep_command_runs_one_pass_and_says_what_went(make_bridge):
    bridge = make_bridge()
    ended = end_watches(bridge, ["c1", "c2"])
    runner = bridge.app.test_cli_runner()
    result = runner.invoke(housekeep_command, [])
    assert result.exit_code == 0, result.output
    assert result.output == "nothing to remove (retention 1.5 days)\n"
    bridge.clock.advance(2 * DAY)
    result = runner.invoke(housekeep_command, [])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "batch: 2 watches and their rows removed"
    assert lines[1] == "removed (retention 1.5 days):"
    assert "  watches: 2" in lines
    assert "  assets: 2" in lines
    assert all(rows_of(bridge, w)["watches"] == 0 for w in ended)


def test_mi_bridge_housekeep_as_a_process(app_factory, tmp_path):
    path = tmp_path / "cli.db"
    three_days_ago = FakeClock(datetime.now(UTC) - timedelta(days=3))
    app = app_factory(clock=three_days_ago, DATABASE_URL=f"sqlite:///{path}")
    with app.app_context():
        _insert_ended_watches(db.session(), three_days_ago(), 3)
        db.session.commit()
    dispose(app)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}", "BRIDGE_ENV": "development"}
    mi_bridge = str(Path(sys.executable).with_name("mi-bridge"))

    def run(*args: str, **more_env: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [mi_bridge, "housekeep", *args], env={**env, **more_env}, cwd=tmp_path,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result

    assert "nothing to remove (retention 30 days)" in run().stdout  # the default keeps them
    assert "every watch kept" in run(BRIDGE_RETENTION_DAYS="0").stdout
    report = json.loads(run("--json", BRIDGE_RETENTION_DAYS="2.5").stdout)
    assert report["removed"]["watches"] == 3
    assert report["removed"]["deliveries"] == 3
    assert report["batches"] == 1
