"""The dashboard's buttons (stop, test, retry), the deliveries needing attention, the health banner."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.db import db
from app.models import BridgeState, Target, WorkerHeartbeat
from tests.dashboardtools import dead_delivery, seed_watch, sign_in
from tests.receiver import Answer

TOKEN = {"Authorization": "Bearer test-api-token"}
FLASH = re.compile(r'<p class="flash flash--(\w+)"\s+role="\w+">([^<]*)</p>')


def flashes(client, path: str) -> list[tuple[str, str]]:
    import html

    page = client.get(path).get_data(as_text=True)
    return [(kind, html.unescape(text)) for kind, text in FLASH.findall(page)]


def test_stop_a_watching_watch_then_again(app, client, csrf):
    watch_id = seed_watch(app, "a1")
    response = client.post(f"/watches/{watch_id}/stop", data={"csrf_token": csrf})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/watches/{watch_id}"
    assert flashes(client, f"/watches/{watch_id}") == [
        ("success", "Stopped: no events will be sent for this watch from now on.")
    ]
    body = client.get(f"/api/v1/watches/{watch_id}", headers=TOKEN).json
    assert (body["state"], body["reason"]) == ("stopped", "stopped")
    client.post(f"/watches/{watch_id}/stop", data={"csrf_token": csrf})
    assert flashes(client, f"/watches/{watch_id}") == [
        ("info", "Nothing to stop: this watch already ended (stopped).")
    ]


@pytest.fixture
def private_app(app_factory):
    return app_factory(BRIDGE_ALLOW_PRIVATE_URLS="true")


def test_send_a_test_shows_each_targets_real_outcome(private_app, receiver):
    client = private_app.test_client()
    csrf = sign_in(client)
    receiver.answer(Answer(200), Answer(503, body=b"down for maintenance"))
    watch_id = seed_watch(
        private_app, "a1",
        targets=[{"type": "webhook", "url": receiver.url + "/one"},
                 {"type": "webhook", "url": receiver.url + "/two"}],
    )  # fmt: skip
    response = client.post(f"/watches/{watch_id}/test", data={"csrf_token": csrf})
    assert response.status_code == 302
    messages = flashes(client, f"/watches/{watch_id}")
    assert len(receiver.requests) == 2
    kinds = sorted(kind for kind, _ in messages)
    assert kinds == ["error", "success"]
    text = " | ".join(message for _, message in messages)
    assert re.search(r"Test delivered to webhook http://127\.0\.0\.1:\d+/\w+: HTTP 200 in", text)
    assert re.search(r"Test failed for webhook http://127\.0\.0\.1:\d+/\w+: HTTP 503 in", text)
    detail = client.get(f"/watches/{watch_id}").get_data(as_text=True)
    assert "bridge.test" in detail


def test_retry_a_dead_delivery_and_refuse_a_pending_one(app, client, csrf):
    watch_id = seed_watch(app, "a1", state="completed")
    delivery_id = dead_delivery(app, watch_id)
    response = client.post(
        f"/deliveries/{delivery_id}/retry", data={"csrf_token": csrf, "next": "/deliveries"}
    )
    assert response.headers["Location"] == "/deliveries"
    [(kind, message)] = flashes(client, "/deliveries")
    assert kind == "success"
    assert f"Delivery {delivery_id} is queued again" in message
    listing = client.get("/api/v1/deliveries", headers=TOKEN).json["items"]
    assert [(d["id"], d["state"]) for d in listing] == [(delivery_id, "pending")]
    client.post(f"/deliveries/{delivery_id}/retry", data={"csrf_token": csrf})
    assert flashes(client, f"/watches/{watch_id}") == [
        ("error", "Not retried: the delivery is pending; only dead or failed ones can be retried.")
    ]
    assert client.post("/deliveries/dlv_nope/retry", data={"csrf_token": csrf}).status_code == 404


def test_retry_refuses_a_next_elsewhere(app, client, csrf):
    watch_id = seed_watch(app, "a1", state="completed")
    delivery_id = dead_delivery(app, watch_id)
    response = client.post(
        f"/deliveries/{delivery_id}/retry",
        data={"csrf_token": csrf, "next": "//evil.example/"},
    )
    assert response.headers["Location"] == f"/watches/{watch_id}"


def test_deliveries_needing_attention_and_disabled_targets(app, client, csrf):
    ok = seed_watch(app, "fine", state="completed")
    dead_delivery(app, ok, state="succeeded")
    broken = seed_watch(app, "broken", state="completed")
    dead = dead_delivery(app, broken, state="dead", error="HTTP 500 from the receiver")
    gone = seed_watch(app, "gone", state="completed")
    failed = dead_delivery(app, gone, state="failed", error="target disabled: HTTP 410")
    with app.app_context():
        target = db.session.query(Target).filter_by(watch_id=gone).one()
        target.disabled, target.disabled_reason = True, "the receiver answered 410 Gone"
        db.session.commit()
    html = client.get("/deliveries").get_data(as_text=True)
    rows = re.findall(r'<tr data-delivery-id="(dlv_\w+)">', html)
    assert rows == [failed, dead]  # newest first; the succeeded one is not there
    assert html.count('type="submit" class="button button--small"') == 2
    assert "HTTP 500 from the receiver" in html
    assert "the receiver answered 410 Gone" in html
    assert "Disabled targets" in html


def test_an_empty_attention_page(client, csrf):
    html = client.get("/deliveries").get_data(as_text=True)
    assert "Nothing failed" in html
    assert "No target is disabled" in html


# --- the health banner ---------------------------------------------------------------------------


@pytest.fixture
def clocked(app_factory, clock):
    app = app_factory(clock=clock)
    client = app.test_client()
    sign_in(client)
    return app, client, clock


def alerts(client) -> list[str]:
    html = client.get("/").get_data(as_text=True)
    return re.findall(r'data-alert="(\w+)"', html)


def set_rows(app, last_seen=None, **state):
    with app.app_context():
        if last_seen is not None:
            db.session.merge(
                WorkerHeartbeat(worker_id="w1", hostname="h", pid=1, last_seen_at=last_seen,
                                started_at=last_seen, counters={})
            )  # fmt: skip
        if state:
            row = db.session.get(BridgeState, 1) or BridgeState(id=1)
            for name, value in state.items():
                setattr(row, name, value)
            db.session.add(row)
        db.session.commit()


def test_banner_without_any_worker(clocked):
    _app, client, _clock = clocked
    assert alerts(client) == ["worker"]
    assert "No worker has been seen" in client.get("/deliveries").get_data(as_text=True)


def test_banner_with_a_fresh_then_stale_worker(clocked):
    app, client, clock = clocked
    set_rows(app, last_seen=clock.now)
    assert alerts(client) == []
    clock.advance(29)
    assert alerts(client) == []
    clock.advance(2)
    assert alerts(client) == ["worker"]
    assert "No worker seen for over 30 s" in client.get("/").get_data(as_text=True)


def test_banner_for_credentials_and_rate_limits(clocked):
    app, client, clock = clocked
    set_rows(
        app,
        last_seen=clock.now,
        upstream_auth="failing",
        upstream_auth_detail="Authentication Failed <clock skew?>",
        slack_auth="failing",
        slack_auth_detail="invalid_auth",
        rate_limited_until=clock.now + timedelta(seconds=90),
    )
    assert alerts(client) == ["upstream_auth", "slack_auth", "rate_limited"]
    html = client.get("/").get_data(as_text=True)
    assert "Authentication Failed &lt;clock skew?&gt;" in html
    assert "invalid_auth" in html
    assert "Polling is paused until" in html
    assert "(in 1 min 30 s)" in html
    live = client.get("/live/watches").get_data(as_text=True)
    assert 'data-alert="rate_limited"' in live  # the banner updates with the list
    clock.advance(91)
    set_rows(app, last_seen=clock.now, upstream_auth="ok", slack_auth="ok")
    assert alerts(client) == []


def test_no_banner_before_sign_in(app_factory):
    client = app_factory().test_client()
    assert "data-alert" not in client.get("/login").get_data(as_text=True)
