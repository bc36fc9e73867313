"""The poison matrix's one scenario per database: two ``mi-bridge worker`` processes, bystander
watches and every poison at once, on real servers on 127.0.0.1 (``tests/test_poison_matrix.py``
asserts on what it records).

Phases (every wait has a deadline; a wait that runs out is recorded in ``Run.reached`` and the
scenario carries on, so each case can still be judged on what happened):

0. Every main watch is registered before the workers start, its asset pinned ``WAIT_ANALYZE``; all
   are polled from then on (a claim takes every asset due within a tick, so they share batches).
A. Bystanders A and the delivery poisons (drip, NUL body, 300 MB answer, ``Retry-After`` of
   ``inf``/``1e300``/``0``, Slack unreachable, Slack losing thread replies) move together:
   ``ANALYZING`` now, ``ANALYZE_COMPLETED`` 2 s later, so their deliveries are due in the same
   bursts and claimed in the same batches.
B. While the drip still holds its first attempt: the upstream poisons start (``indexId`` 2^64, a
   NUL in the status message, a 401 with a 2,000-character message) and bystanders B move as in A.
C. A 429 with ``Retry-After: 1e300`` for one asset, registered just after bystanders C (pinned
   terminal, so their first poll ends them): a 429 pauses all polling by contract, so the pause must
   be bounded and recorded, and bystanders C finished and delivered all the same.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.db import db
from app.models import Asset, BridgeState, Event, Watch
from app.simulator import SimConfig, SimulatorServer, SimulatorState
from tests.fake_slack import TOKEN as SLACK_TOKEN
from tests.fake_slack import FakeSlack
from tests.fixtures import (
    AUTH,
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    SimControl,
    build_app,
    dispose,
    wait_until,
)
from tests.hostile_servers import DripReceiver, HugeAnswerReceiver, SlackFront, TimedReceiver
from tests.poison_records import (
    AssetRow,
    DeliveryRow,
    Run,
    WatchRow,
    deliveries_of,
    events_of,
    memory_kb,
    ts,
)
from tests.processes import Processes, bridge_env
from tests.receiver import Answer

RETRY_SCHEDULE = (1.0, 1.0)
LEASE_SECONDS = 30  # the contract's 15 s send timeout applies in full from a 30 s lease on
POLL_INTERVAL, POLL_MAX_INTERVAL = 0.5, 1.0
ANALYZE_SECONDS = 2.0
TERMINAL = ["analysis.completed", "analysis.failed", "analysis.cancelled"]
DEFAULT_EVENTS = [*TERMINAL, "watch.expired", "watch.error"]
WITH_CHANGES = [*DEFAULT_EVENTS, "analysis.status_changed"]

BYSTANDERS_A = ("bys-a1", "bys-a2", "bys-a3", "bys-a4")
SLACK_BYSTANDER = "bys-slack"
BYSTANDERS_B = ("bys-b1", "bys-b2", "bys-b3")
BYSTANDERS_C = ("bys-c1", "bys-c2", "bys-c3")
#: Webhook poisons: watch label -> the receiver it sends to.
WEBHOOK_POISONS = {
    "p-drip": "drip", "p-nul-body": "nul", "p-huge": "huge",
    "p-ra-inf": "inf", "p-ra-1e300": "1e300", "p-ra-0": "zero",
}  # fmt: skip
SLACK_DOWN, SLACK_THREAD = "p-slack-down", "p-slack-thread"
CHANNELS = {"general": "C0GENERAL", "down": "C0DOWN", "threads": "C0THREADS"}
UPSTREAM_POISONS = ("u-index", "u-nul", "u-401")
RATE_LIMITED = "u-429"
NUL_MESSAGE = "Video\x00 parsing\x00 failed"
LONG_401 = ("Authentication Failed: signature does not match; " * 41)[:2000]
MAIN_LABELS = (
    *BYSTANDERS_A, SLACK_BYSTANDER, *BYSTANDERS_B, *UPSTREAM_POISONS, *WEBHOOK_POISONS,
    SLACK_DOWN, SLACK_THREAD,
)  # fmt: skip
INDEX_2_64 = {
    "code": "0", "message": "success",
    "result": {"status": "ANALYZE_COMPLETED", "analysisStatusMessage": None, "indexId": 2**64},
}  # fmt: skip


def _until(predicate: Any, timeout: float) -> bool:
    """True once ``predicate()`` is, False if it is not within ``timeout`` seconds."""
    try:
        wait_until(predicate, timeout=timeout)
    except AssertionError:
        return False
    return True


class PoisonScenario:
    """Servers, the in-process app (registration and reading) and two worker processes."""

    def __init__(self, database: str, database_url: str, log_dir: Path) -> None:
        self.run = Run(database)
        self.database_url = database_url
        self.procs = Processes(log_dir)
        self.simulator = SimulatorServer(
            "127.0.0.1", 0, SimulatorState(SimConfig(auto_create=False)),
            TEST_ACCESS_KEY, TEST_SECRET_KEY,
        )  # fmt: skip
        self.receivers: dict[str, TimedReceiver] = {
            name: TimedReceiver() for name in ("good", "nul", "inf", "1e300", "zero")
        }
        self.receivers["nul"].default = Answer(200, body=b"ok\x00\x00 accepted\x00")
        for name in ("inf", "1e300", "zero"):
            value = {"inf": "inf", "1e300": "1e300", "zero": "0"}[name]
            self.receivers[name].default = Answer(503, {"Retry-After": value}, b"busy")
        self.drip = DripReceiver(interval=5.0)
        self.huge = HugeAnswerReceiver()
        self.fake_slack = FakeSlack(channels=CHANNELS)
        self.front = SlackFront(self.fake_slack)
        self.front.unreachable |= {"down", CHANNELS["down"]}
        self.front.lose_thread_replies |= {"threads", CHANNELS["threads"]}
        self.app: Any = None
        self.sim: SimControl | None = None

    # --- the whole run -----------------------------------------------------------------------

    def play(self) -> Run:
        started = time.monotonic()
        servers = [
            self.simulator, *self.receivers.values(), self.drip, self.huge, self.fake_slack,
            self.front,
        ]  # fmt: skip
        try:
            for server in servers:
                server.start()
            self.sim = SimControl(self.simulator.url)
            self.app = build_app(
                self.database_url, MI_DEFAULT_API="index", BRIDGE_ALLOW_PRIVATE_URLS="true"
            )
            self._register_main()
            self._start_workers()
            self._phase_a()
            self._phase_b()
            self._phase_c()
            self._settle()
            self._stop_workers()
            self._read_final()
        finally:
            self.procs.stop_all()
            for server in reversed(servers):
                server.stop()
            if self.sim is not None:
                self.sim.close()
            if self.app is not None:
                dispose(self.app)
        self.run.seconds = time.monotonic() - started
        return self.run

    # --- phases ------------------------------------------------------------------------------

    def _register_main(self) -> None:
        good = self.receivers["good"].url
        plans: dict[str, tuple[list[dict[str, Any]], list[str]]] = {}
        for label in (*BYSTANDERS_A, *BYSTANDERS_B, *UPSTREAM_POISONS):
            plans[label] = ([_hook(f"{good}/{label}")], WITH_CHANGES)
        plans[SLACK_BYSTANDER] = (
            [{"type": "slack", "channel": "general"}, _hook(f"{good}/{SLACK_BYSTANDER}")],
            WITH_CHANGES,
        )
        for label, receiver in WEBHOOK_POISONS.items():
            plans[label] = ([_hook(f"{self._url_of(receiver)}/{label}")], WITH_CHANGES)
        plans[SLACK_DOWN] = ([{"type": "slack", "channel": "down"}], WITH_CHANGES)
        plans[SLACK_THREAD] = ([{"type": "slack", "channel": "threads"}], DEFAULT_EVENTS)
        for label, (targets, events) in plans.items():
            self._pin(label, "WAIT_ANALYZE")
            self._register(label, targets, events)

    def _start_workers(self) -> None:
        env = bridge_env(
            self.database_url, self.simulator.url,
            BRIDGE_POLL_INTERVAL=str(POLL_INTERVAL), BRIDGE_POLL_MAX_INTERVAL=str(POLL_MAX_INTERVAL),
            BRIDGE_LEASE_SECONDS=str(LEASE_SECONDS),
            BRIDGE_RETRY_SCHEDULE=",".join(str(s) for s in RETRY_SCHEDULE),
            SLACK_API_URL=self.front.api_url, SLACK_BOT_TOKEN=SLACK_TOKEN,
        )  # fmt: skip
        self.run.marks["workers_started"] = time.time()
        self.procs.worker("worker-1", env)
        self.procs.worker("worker-2", env)
        labels = MAIN_LABELS

        def all_polled() -> bool:
            with self.app.app_context():
                counts = db.session.execute(
                    select(Watch.asset_id, Watch.poll_count).where(Watch.asset_id.in_(labels))
                ).all()
            return len(counts) == len(labels) and all(count >= 1 for _, count in counts)

        self._wait("first_polls", all_polled, 45)

    def _phase_a(self) -> None:
        self.run.marks["phase_a"] = time.time()
        for label in (*BYSTANDERS_A, SLACK_BYSTANDER, *WEBHOOK_POISONS, SLACK_DOWN, SLACK_THREAD):
            self._schedule(label)
        self._wait("bystanders_a", lambda: self._delivered(BYSTANDERS_A, SLACK_BYSTANDER), 20)
        self.run.marks["bystanders_a"] = time.time()
        self._wait("thread_reply_lost", lambda: self._attempts(SLACK_THREAD) >= 1, 15)
        self.front.restore_thread_replies()
        self.run.marks["thread_replies_restored"] = time.time()

    def _phase_b(self) -> None:
        self.run.marks["phase_b"] = time.time()
        self._fault(kind="unexpected", asset_id="u-index", count=None, body=INDEX_2_64)
        self._fault(kind="auth", asset_id="u-401", count=None, message=LONG_401)
        self._pin("u-nul", "ANALYZE_FAIL", message=NUL_MESSAGE)
        for label in BYSTANDERS_B:
            self._schedule(label)
        self._wait("bystanders_b", lambda: self._delivered(BYSTANDERS_B, "u-nul"), 20)
        self.run.marks["bystanders_b"] = time.time()

        def poisons_polled() -> bool:
            return all(self._fault_matched(label) >= 3 for label in ("u-index", "u-401"))

        self._wait("upstream_poisons_polled", poisons_polled, 15)
        for label in UPSTREAM_POISONS:
            self.run.probes[label] = self._asset_row(label)

    def _phase_c(self) -> None:
        self.run.marks["phase_c"] = time.time()
        good = self.receivers["good"].url
        for label in BYSTANDERS_C:
            self._pin(label, "ANALYZE_COMPLETED", index_id=7)
            self._register(label, [_hook(f"{good}/{label}")], DEFAULT_EVENTS)
        self._pin(RATE_LIMITED, "ANALYZING")
        self._fault(kind="rate_limit", asset_id=RATE_LIMITED, count=None, retry_after="1e300")
        self._register(RATE_LIMITED, [_hook(f"{good}/{RATE_LIMITED}")], WITH_CHANGES)
        self._wait("paused", lambda: self._bridge_state().get("rate_limited_until") is not None, 15)
        self.run.marks["paused"] = time.time()
        self._wait("bystanders_c", lambda: self._delivered(BYSTANDERS_C), 15)
        self.run.marks["bystanders_c"] = time.time()

    def _settle(self) -> None:
        """Wait for the poisons' first recorded outcomes, then read what needs live processes."""
        self._wait("drip_recorded", lambda: self._attempts("p-drip") >= 1, 25)
        self._wait("thread_delivered", lambda: self._states(SLACK_THREAD) == {"succeeded"}, 15)
        self._wait("slack_down_dead", lambda: self._states(SLACK_DOWN) == {"dead"}, 15)
        self._wait("huge_served", lambda: any(h.closed_at for h in self.huge.hits), 5)
        with self.app.app_context():
            self.run.readyz = self.app.test_client().get("/readyz").get_json()
        for name, proc in self.procs.started.items():
            self.run.memory_kb[name] = memory_kb(proc.pid)

    def _stop_workers(self) -> None:
        self.run.marks["stopping"] = time.time()
        for proc in self.procs.started.values():
            proc.send_signal(signal.SIGTERM)
        self.drip.hang_up()
        self.huge.hang_up()
        for name, proc in self.procs.started.items():
            try:
                self.run.exit_codes[name] = proc.wait(timeout=40)
            except subprocess.TimeoutExpired:  # stop_all kills it; the code stays None
                self.run.exit_codes[name] = None

    def _read_final(self) -> None:
        run = self.run
        for name, receiver in self.receivers.items():
            run.arrivals[name] = list(receiver.arrivals)
        run.hits = {"drip": list(self.drip.hits), "huge": list(self.huge.hits)}
        run.slack = {name: self.fake_slack.messages(name) for name in CHANNELS}
        run.front_calls = list(self.front.calls)
        run.outputs = {name: self.procs.output(name) for name in self.procs.started}
        run.bridge = self._bridge_state()
        run.requests = self._request_log()
        with self.app.app_context():
            session = db.session
            for watch in session.scalars(select(Watch)):
                label = watch.asset_id
                run.watches[label] = WatchRow(
                    watch.id, watch.state, watch.status, watch.message, watch.index_id,
                    tuple(change.status for change in watch.history),
                )  # fmt: skip
                run.events[label] = events_of(session, watch.id)
                run.deliveries[label] = deliveries_of(session, watch.id)
        for label in run.watches:
            run.assets[label] = self._asset_row(label)

    # --- helpers -----------------------------------------------------------------------------

    def _url_of(self, receiver: str) -> str:
        if receiver == "drip":
            return self.drip.url
        if receiver == "huge":
            return self.huge.url
        return self.receivers[receiver].url

    def _wait(self, name: str, predicate: Any, timeout: float) -> None:
        self.run.reached[name] = _until(predicate, timeout)

    def _pin(self, label: str, status: str, **extra: Any) -> None:
        assert self.sim is not None
        answer = self.sim.put(f"/assets/ws/1/{label}", json={"status": status, **extra})
        assert answer.status_code in (200, 201), answer.text

    def _schedule(self, label: str) -> None:
        """``ANALYZING`` from now, ``ANALYZE_COMPLETED`` after ``ANALYZE_SECONDS``."""
        assert self.sim is not None
        plan = {
            "wait_seconds": 0,
            "analyze_seconds": ANALYZE_SECONDS,
            "outcome": "ANALYZE_COMPLETED",
        }
        answer = self.sim.put(f"/assets/ws/1/{label}", json=plan)
        assert answer.status_code == 200, answer.text
        self.run.marks[f"terminal:{label}"] = time.time() + ANALYZE_SECONDS

    def _fault(self, **spec: Any) -> None:
        assert self.sim is not None
        answer = self.sim.post("/faults", json=spec)
        assert answer.status_code == 201, answer.text

    def _fault_matched(self, label: str) -> int:
        assert self.sim is not None
        rules = self.sim.get("/faults").json()["faults"]
        return sum(rule["matched"] for rule in rules if rule["asset_id"] == label)

    def _sim_requests(self, label: str) -> int:
        assert self.sim is not None
        return self.sim.get(f"/assets/ws/1/{label}").json()["requests"]

    def _request_log(self) -> dict[str, list[float]]:
        """The simulator's request log, its clock turned into wall-clock time."""
        assert self.sim is not None
        log = self.sim.get("/requests").json()
        offset = time.time() - log["now"]
        return {item["asset_id"]: [t + offset for t in item["times"]] for item in log["requests"]}

    def _register(self, label: str, targets: list[dict[str, Any]], events: list[str]) -> None:
        body = {
            "workspace": "ws", "project_id": "1", "asset_id": label, "api": "index",
            "targets": targets, "events": events,
        }  # fmt: skip
        response = self.app.test_client().post("/api/v1/watches", json=body, headers=AUTH)
        assert response.status_code == 201, response.get_json()
        self.run.marks[f"registered:{label}"] = time.time()

    def _delivered(self, labels: tuple[str, ...], *more: str) -> bool:
        """Every listed watch ended and each of its events reached the good receiver."""
        wanted = (*labels, *more)
        paths = [a.path for a in self.receivers["good"].arrivals]
        with self.app.app_context():
            for label in wanted:
                watch = db.session.scalars(select(Watch).where(Watch.asset_id == label)).first()
                if watch is None or watch.state == "watching":
                    return False
                events = db.session.scalars(select(Event).where(Event.watch_id == watch.id)).all()
                if paths.count(f"/{label}") < len(events) or not events:
                    return False
        if SLACK_BYSTANDER in wanted:
            messages = self.fake_slack.messages("general")
            return len(messages) == 1 and len(messages[0]["replies"]) == 1
        return True

    def _attempts(self, label: str) -> int:
        return sum(len(d.attempts) for d in self._deliveries_of(label))

    def _states(self, label: str) -> set[str]:
        return {d.state for d in self._deliveries_of(label)}

    def _deliveries_of(self, label: str) -> list[DeliveryRow]:
        with self.app.app_context():
            watch = db.session.scalars(select(Watch).where(Watch.asset_id == label)).first()
            return deliveries_of(db.session, watch.id) if watch is not None else []

    def _bridge_state(self) -> dict[str, Any]:
        with self.app.app_context():
            state = db.session.get(BridgeState, 1)
            if state is None:
                return {}
            return {
                "rate_limited_until": ts(state.rate_limited_until),
                "upstream_auth": state.upstream_auth,
                "upstream_auth_detail": state.upstream_auth_detail,
            }

    def _asset_row(self, label: str) -> AssetRow:
        at = time.time()
        with self.app.app_context():
            asset = db.session.scalars(select(Asset).where(Asset.asset_id == label)).one()
            row = (asset.poll_count, asset.consecutive_errors, asset.last_error, asset.index_id)
            next_poll_at = ts(asset.next_poll_at)
        return AssetRow(
            at, *row, next_poll_at, self._sim_requests(label), self._fault_matched(label)
        )


def _hook(url: str) -> dict[str, Any]:
    return {"type": "webhook", "url": url}
