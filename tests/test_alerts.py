"""``bridge.alert``: each kind fires once, reminds every ``BRIDGE_ALERT_REPEAT`` and resolves, as a
real receiver on 127.0.0.1 sees it (verified with the Standard Webhooks library).

The bridge runs in process against the simulator with a fake clock, so the contract's thresholds
(5 minutes, 60 s, 6 hours) are used as they are and take no wall time: ``Alerting.step`` moves the
clock, writes this worker's heartbeat, polls, delivers, evaluates the alerts and delivers again, as
the worker's jobs do.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from standardwebhooks import Webhook

from app.alerts.sentinel import AlertSentinel
from app.worker.alerting import alert_tick
from app.worker.delivery import deliver_once
from app.worker.heartbeat import beat
from tests.fake_slack import TOKEN
from tests.fixtures import AUTH, TICK_TIMINGS, Bridge, simulator_config

SECRET = "whsec_" + base64.b64encode(b"alert-receiver-secret-24b").decode()
REPEAT = 21600


class Alerting(Bridge):
    """The in-process bridge, plus the alert receiver's view."""

    def __init__(self, *args: Any, receiver: Any) -> None:
        super().__init__(*args)
        self.receiver = receiver

    def step(self, advance: float = 0.0, *, heartbeat: bool = True) -> None:
        """Move the clock, then one round of the worker's jobs (heartbeat, poll, alerts, deliver)."""
        self.clock.advance(advance)
        if heartbeat:
            beat(self.runtime)
        self.tick()
        deliver_once(self.runtime)
        alert_tick(self.runtime)
        deliver_once(self.runtime)

    def alerts(self, kind: str | None = None) -> list[dict[str, Any]]:
        """``data.alert`` of every verified ``bridge.alert`` the alert receiver got (of ``kind``)."""
        seen = []
        for request in self.receiver.requests:
            if request.path != "/alerts":
                continue
            envelope = Webhook(SECRET).verify(request.body, request.headers)
            assert envelope["type"] == "bridge.alert"
            alert = envelope["data"]["alert"]
            if kind is None or alert["kind"] == kind:
                seen.append(alert)
        return seen

    def states(self, kind: str) -> list[str]:
        return [alert["state"] for alert in self.alerts(kind)]

    def readyz(self) -> dict[str, Any]:
        return self.client.get("/readyz").json


def alert_config(receiver: Any, **extra: Any) -> dict[str, Any]:
    targets = [{"type": "webhook", "url": f"{receiver.url}/alerts", "secret": SECRET}]
    return {
        "BRIDGE_ALERT_TARGETS": json.dumps(targets),
        "BRIDGE_ALLOW_PRIVATE_URLS": "true",
        "BRIDGE_RETRY_SCHEDULE": "1,1",
        **extra,
    }


@pytest.fixture
def alerting(app_factory, clock, simulator, sim_control, receiver, fake_slack):
    app = app_factory(
        clock=clock, **simulator_config(simulator.url), **TICK_TIMINGS,
        **alert_config(receiver, SLACK_API_URL=fake_slack.api_url, SLACK_BOT_TOKEN=TOKEN),
    )  # fmt: skip
    bridge = Alerting(app, clock, simulator, sim_control, receiver=receiver)
    yield bridge
    bridge.runtime.close()


def watch_asset(alerting: Alerting, asset_id: str, **fields: Any) -> str:
    alerting.set_status(asset_id, "ANALYZING")
    target = {"type": "webhook", "url": f"{alerting.receiver.url}/in/{asset_id}"}
    return alerting.register(asset_id, targets=[target], **fields)["id"]


def test_upstream_unreachable_fires_once_reminds_and_resolves(alerting):
    watch_asset(alerting, "u1")
    alerting.step()
    alerting.fault(kind="http_error", status=503, count=1000)
    for _ in range(9):  # 4.5 minutes of failing polls: not yet
        alerting.step(30)
    assert alerting.alerts() == []
    assert alerting.readyz()["status"] == "ready"
    for _ in range(4):
        alerting.step(30)
    (firing,) = alerting.alerts("upstream_unreachable")
    assert firing["state"] == "firing"
    assert "HTTP 503" in firing["detail"]
    assert alerting.readyz()["status"] == "degraded"
    assert alerting.readyz()["alerts"] == ["upstream_unreachable"]
    alerting.step(REPEAT / 2)
    assert alerting.states("upstream_unreachable") == ["firing"]  # no reminder before the period
    alerting.step(REPEAT / 2)
    assert alerting.states("upstream_unreachable") == ["firing", "firing"]  # the reminder
    assert len({a["since"] for a in alerting.alerts("upstream_unreachable")}) == 1
    alerting.control.delete("/faults").raise_for_status()
    alerting.step(10)
    alerting.step(10)
    assert alerting.states("upstream_unreachable") == ["firing", "firing", "resolved"]
    assert alerting.readyz()["status"] == "ready"
    alerting.step(REPEAT)
    assert alerting.states("upstream_unreachable") == ["firing", "firing", "resolved"]


def test_upstream_auth_fires_reminds_and_resolves(alerting):
    watch_asset(alerting, "a1")
    alerting.fault(kind="auth", count=1000)
    alerting.step()
    assert alerting.states("upstream_auth") == ["firing"]
    assert alerting.readyz()["alerts"] == ["upstream_auth"]
    alerting.step(REPEAT)
    assert alerting.states("upstream_auth") == ["firing", "firing"]
    alerting.control.delete("/faults").raise_for_status()
    alerting.step(200)  # after a 401 the asset is polled slowly (the 8 s cap here)
    assert alerting.states("upstream_auth") == ["firing", "firing", "resolved"]


def test_upstream_rate_limited_fires_for_a_long_pause_only(app_factory, clock, simulator,
                                                           sim_control, receiver):  # fmt: skip
    app = app_factory(
        clock=clock, **simulator_config(simulator.url), **TICK_TIMINGS,
        **alert_config(receiver, BRIDGE_ALERT_REPEAT="120"),
    )  # fmt: skip
    alerting = Alerting(app, clock, simulator, sim_control, receiver=receiver)
    try:
        watch_asset(alerting, "r1")
        alerting.fault(kind="rate_limit", retry_after="60", count=1)
        alerting.step()
        alerting.step(70)
        assert alerting.alerts() == []  # a one-minute pause is not worth telling anyone
        alerting.fault(kind="rate_limit", retry_after="600", count=1)
        alerting.step(10)
        assert alerting.states("upstream_rate_limited") == ["firing"]
        alerting.step(130)
        assert alerting.states("upstream_rate_limited") == ["firing", "firing"]
        alerting.step(600)
        assert alerting.states("upstream_rate_limited") == ["firing", "firing", "resolved"]
    finally:
        alerting.runtime.close()


def test_slack_auth_fires_and_resolves_with_the_fake_slack(alerting, fake_slack):
    alerting.set_status("s1", "ANALYZE_COMPLETED", index_id=1)
    alerting.register("s1", targets=[{"type": "slack", "channel": "general"}])
    fake_slack.revoke()
    alerting.step()
    assert alerting.states("slack_auth") == ["firing"]
    assert "Slack rejects" in alerting.alerts("slack_auth")[0]["detail"]
    assert alerting.readyz()["alerts"] == ["slack_auth"]
    alerting.step(REPEAT)
    assert alerting.states("slack_auth") == ["firing", "firing"]
    fake_slack.restore()
    alerting.step(61)  # held deliveries are tried again after a minute
    alerting.step(1)
    assert alerting.states("slack_auth") == ["firing", "firing", "resolved"]


def test_deliveries_dead_fires_once_per_receiver_with_a_count_and_reminds(alerting):
    from tests.receiver import Answer

    alerting.receiver.default = Answer(500, body=b"down")
    alerting.receiver.route = {"/alerts": Answer(200)}  # only the watches' receiver is broken
    for asset_id in ("d1", "d2"):
        watch_asset(alerting, asset_id)
        alerting.set_status(asset_id, "ANALYZE_COMPLETED", index_id=1)
    for _ in range(4):
        alerting.step(2)
    (firing,) = alerting.alerts("deliveries_dead")
    assert firing["state"] == "firing"
    assert "2 deliveries dead" in firing["detail"]
    assert f"webhook http://127.0.0.1:{alerting.receiver.url.rsplit(':', 1)[1]}" in firing["detail"]
    # Another death just before the period ends keeps the condition: one reminder, counted anew.
    alerting.step(REPEAT - 60)
    watch_asset(alerting, "d3")
    alerting.set_status("d3", "ANALYZE_COMPLETED", index_id=1)
    for _ in range(4):
        alerting.step(2)
    assert alerting.states("deliveries_dead") == ["firing"]  # within the period: no second one
    alerting.step(120)
    assert alerting.states("deliveries_dead") == ["firing", "firing"]
    assert "1 deliveries dead" in alerting.alerts("deliveries_dead")[1]["detail"]
    alerting.step(REPEAT)  # no death within the window: the condition ends
    assert alerting.states("deliveries_dead") == ["firing", "firing", "resolved"]


def test_endpoint_disabled_fires_reminds_and_resolves_when_re_enabled(alerting):
    from tests.receiver import Answer

    alerting.receiver.route = {"/in/g1": Answer(410, body=b"gone"), "/alerts": Answer(200)}
    watch_asset(alerting, "g1", events=["analysis.status_changed", "analysis.completed"])
    alerting.step()
    alerting.set_status("g1", "ANALYZE_WAITING")  # a change: its event finds the receiver gone
    alerting.step(2)
    alerting.step(2)
    (firing,) = alerting.alerts("endpoint_disabled")
    assert "gone" in firing["detail"].lower() or "410" in firing["detail"]
    alerting.step(REPEAT)  # the watch still watches: the receiver is still gone
    assert alerting.states("endpoint_disabled") == ["firing", "firing"]
    del alerting.receiver.route["/in/g1"]
    with alerting.db():
        from app.db import db
        from app.models import Delivery

        dead = db.session.query(Delivery).filter(Delivery.state == "failed").one()
        delivery_id = dead.id
    response = alerting.client.post(f"/api/v1/deliveries/{delivery_id}/retry", headers=AUTH)
    assert response.status_code in (200, 202), response.json  # a retry re-enables the target
    alerting.step(2)
    assert alerting.states("endpoint_disabled") == ["firing", "firing", "resolved"]


def test_a_disabled_receiver_of_an_ended_watch_counts_for_an_hour(alerting):
    from tests.receiver import Answer

    alerting.receiver.route = {"/in/h1": Answer(410, body=b"gone"), "/alerts": Answer(200)}
    watch_asset(alerting, "h1")
    alerting.set_status("h1", "ANALYZE_COMPLETED", index_id=1)
    alerting.step()
    alerting.step(1)
    assert alerting.states("endpoint_disabled") == ["firing"]
    alerting.step(3601)
    assert alerting.states("endpoint_disabled") == ["firing", "resolved"]


def test_failing_alert_deliveries_raise_no_alert_of_their_own(alerting):
    from tests.receiver import Answer

    alerting.receiver.default = Answer(500, body=b"alert receiver down")
    watch_asset(alerting, "f1")
    alerting.fault(kind="auth", count=1000)
    for _ in range(6):
        alerting.step(2)
    with alerting.db():
        from app.db import db
        from app.models import Alert

        kinds = [row.kind for row in db.session.query(Alert)]
    assert kinds == ["upstream_auth"]  # its dead deliveries raised no deliveries_dead
    assert alerting.client.get("/api/v1/watches", headers=AUTH).json["items"][0]["asset_id"] == "f1"
    assert len(alerting.client.get("/api/v1/watches", headers=AUTH).json["items"]) == 1


def test_workers_missing_is_sent_by_the_web_sentinel_when_no_worker_runs(alerting):
    watch_asset(alerting, "w1")
    alerting.step()  # a worker beat at t0
    sentinel = AlertSentinel(alerting.app)  # not started: its rounds are run here, one by one
    alerting.clock.advance(59)
    assert sentinel.run_once() == 0
    assert alerting.alerts() == []
    alerting.clock.advance(2)  # 61 s without a heartbeat
    assert sentinel.run_once() == 1  # written and sent by the web process itself
    assert alerting.states("workers_missing") == ["firing"]
    assert alerting.readyz()["alerts"] == ["workers_missing"]
    alerting.clock.advance(REPEAT)
    assert sentinel.run_once() == 1
    assert alerting.states("workers_missing") == ["firing", "firing"]
    alerting.step(1)  # a worker is back: it resolves and delivers
    assert alerting.states("workers_missing") == ["firing", "firing", "resolved"]
    assert sentinel.run_once() == 0  # a live worker sends; the sentinel does not


def test_alerts_reach_slack_as_messages_of_their_own(app_factory, clock, simulator, sim_control,
                                                     fake_slack, receiver):  # fmt: skip
    targets = [{"type": "slack", "channel": "general"}]
    app = app_factory(
        clock=clock, **simulator_config(simulator.url), **TICK_TIMINGS,
        BRIDGE_ALERT_TARGETS=json.dumps(targets), SLACK_API_URL=fake_slack.api_url,
        SLACK_BOT_TOKEN=TOKEN, BRIDGE_ALLOW_PRIVATE_URLS="true",
    )  # fmt: skip
    alerting = Alerting(app, clock, simulator, sim_control, receiver=receiver)
    try:
        watch_asset(alerting, "k1")
        alerting.fault(kind="auth", count=1000)
        alerting.step()
        alerting.step(REPEAT)  # the reminder: a second message, not an edit of the first
        texts = [message["text"] for message in fake_slack.messages("general")]
        assert len(texts) == 2
        assert all(text.startswith("mi-bridge alert firing: upstream_auth") for text in texts)
    finally:
        alerting.runtime.close()


@pytest.mark.slow
def test_a_stopped_worker_is_reported_by_the_web_process_alone(tmp_path, simulator, receiver,
                                                               wait_until):  # fmt: skip
    """Real processes: gunicorn (the Procfile's web, with its sentinel) and ``mi-bridge worker``
    (heartbeats every 5 s, so "missing" is 8 s here).
    The worker stops; with no worker left, the web process itself sends ``workers_missing``; a
    worker started again resolves it."""
    from tests.processes import Processes, answers, bridge_env, free_port, run_db_upgrade

    targets = [{"type": "webhook", "url": f"{receiver.url}/alerts", "secret": SECRET}]
    env = bridge_env(
        f"sqlite:///{tmp_path}/bridge.db", simulator.url,
        BRIDGE_ALERT_TARGETS=json.dumps(targets), BRIDGE_ALERT_INTERVAL="0.5",
        BRIDGE_ALERT_WORKERS_AFTER="8", WEB_CONCURRENCY="1",
    )  # fmt: skip
    run_db_upgrade(env, tmp_path)
    procs = Processes(tmp_path)
    port = free_port()
    alerts = Alerting.alerts.__get__(type("View", (), {"receiver": receiver})())
    try:
        procs.web("web", env, port)
        procs.worker("worker", env)
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/readyz"), 30, "web ready, a worker")
        assert procs.stop("worker") == 0
        wait_until(lambda: [a["state"] for a in alerts("workers_missing")] == ["firing"], 30,
                   "workers_missing sent by the web process")  # fmt: skip
        readyz = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).json()
        assert readyz["alerts"] == ["workers_missing"]
        procs.worker("worker-again", env)
        wait_until(lambda: [a["state"] for a in alerts("workers_missing")] == ["firing", "resolved"],
                   30, "resolved once a worker is back")  # fmt: skip
        assert "alert sentinel sent" in procs.output("web")
    finally:
        procs.stop_all()


def test_retention_removes_old_alert_events_and_keeps_the_alerts_watch(alerting):
    from app.db import db
    from app.models import ALERTS_WATCH_ID, Delivery, Event, Watch
    from app.worker.housekeeping import housekeeping_pass

    watch_asset(alerting, "o1")
    alerting.fault(kind="auth", count=1000)
    alerting.step()
    alerting.step(REPEAT)
    assert alerting.states("upstream_auth") == ["firing", "firing"]

    def counts() -> tuple[int, int]:
        with alerting.db():
            events = db.session.query(Event).filter_by(watch_id=ALERTS_WATCH_ID).count()
            deliveries = db.session.query(Delivery).filter_by(watch_id=ALERTS_WATCH_ID).count()
            return events, deliveries

    assert counts() == (2, 2)
    alerting.clock.advance(30 * 86400 - REPEAT + 1)  # the first one is now 30 days old
    with alerting.db():
        report = housekeeping_pass(db.session(), alerting.clock, 30)
        assert db.session.get(Watch, ALERTS_WATCH_ID) is not None
    assert (report.removed["events"], report.removed["deliveries"]) == (1, 1)
    assert counts() == (1, 1)
