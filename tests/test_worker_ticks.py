"""The poll tick, driven tick by tick with an injected clock against the simulator over real HTTP."""

import pytest
from sqlalchemy import func, select

from app.db import db
from app.models import Asset, BridgeState, Event

COMPLETED_EVENTS = ["analysis.completed", "analysis.failed", "analysis.cancelled"]


def asset_row(bridge, asset_id, api="index"):
    with bridge.db():
        return db.session.scalars(
            select(Asset).where(Asset.asset_id == asset_id, Asset.api == api)
        ).one()


def bridge_state(bridge):
    with bridge.db():
        return db.session.get(BridgeState, 1)


@pytest.mark.parametrize(
    ("status", "state", "event"),
    [
        ("ANALYZE_COMPLETED", "completed", "analysis.completed"),
        ("ANALYZE_FAIL", "failed", "analysis.failed"),
        ("ANALYZE_CANCEL", "cancelled", "analysis.cancelled"),
    ],
)
def test_each_terminal_status_ends_the_watch_with_its_event(bridge, status, state, event):
    bridge.set_status("a1", "ANALYZING")
    watch = bridge.register("a1")
    bridge.tick()
    assert bridge.watch(watch["id"])["status"] == "ANALYZING"
    assert bridge.events(watch["id"]) == []
    bridge.set_status(
        "a1",
        status,
        index_id=5 if status == "ANALYZE_COMPLETED" else None,
        message="person extraction failure" if status == "ANALYZE_FAIL" else None,
    )
    bridge.tick(advance=1.2)
    ended = bridge.watch(watch["id"])
    assert (ended["state"], ended["status"]) == (state, status)
    assert ended["finished_at"] is not None
    assert ended["next_poll_at"] is None
    events = bridge.events(watch["id"])
    assert [e["type"] for e in events] == [event]
    analysis = events[0]["data"]["analysis"]
    assert analysis["previous_status"] == "ANALYZING"
    if status == "ANALYZE_COMPLETED":
        assert analysis["index_id"] == ended["index_id"] == 5
    if status == "ANALYZE_FAIL":
        assert analysis["message"] == ended["message"] == "person extraction failure"
    assert [d["event_type"] for d in ended["deliveries"]] == [event]
    # Ended: no further polls.
    before = bridge.upstream_requests()
    bridge.tick(advance=30)
    assert bridge.upstream_requests() == before


def test_first_poll_already_terminal_ends_at_once(bridge):
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=9)
    watch = bridge.register("a1", events=["analysis.completed", "analysis.status_changed"])
    report = bridge.tick()
    assert report.requests == 1
    ended = bridge.watch(watch["id"])
    assert (ended["state"], ended["index_id"], ended["poll_count"]) == ("completed", 9, 1)
    assert [h["status"] for h in ended["history"]] == ["ANALYZE_COMPLETED"]
    # The first observation emits only the terminal event, not status_changed.
    assert [e["type"] for e in bridge.events(watch["id"])] == ["analysis.completed"]


def test_first_poll_is_prompt_and_not_terminal_emits_nothing(bridge):
    bridge.set_status("a1", "WAIT_ANALYZE")
    watch = bridge.register("a1", events=["analysis.status_changed", "analysis.completed"])
    assert bridge.tick().requests == 1  # no clock advance needed: due at registration
    current = bridge.watch(watch["id"])
    assert [h["status"] for h in current["history"]] == ["WAIT_ANALYZE"]
    assert bridge.events(watch["id"]) == []


def test_lookahead_claims_up_to_one_tick_early_never_late(bridge):
    """A claim may come a tick early; its request still waits for the due time (test_poll_isolation_due)."""
    from app.worker.polling import poll_once

    bridge.set_status("a1", "ANALYZING")
    bridge.register("a1")
    bridge.tick()
    wait = (asset_row(bridge, "a1").next_poll_at - bridge.clock.now).total_seconds()
    bridge.clock.advance(wait - 0.6)
    assert poll_once(bridge.runtime).requests == 0  # due in 0.6 s: not without lookahead
    assert poll_once(bridge.runtime, lookahead=0.5).requests == 0
    assert poll_once(bridge.runtime, lookahead=1.0).requests == 1
    # Early claims count as on time in the lateness histogram.
    lateness = bridge.runtime.counters.snapshot()["poll_lateness"]
    assert (lateness["count"], lateness["sum"]) == (2, 0.0)


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_quiet_polls_count_and_reschedule_like_any_poll(request, database):
    """Unchanged polls take the batch fast path (one UPDATE per table, written differently on each
    database): counters, message and schedule still move, the lease is given back, and working
    credentials are recorded."""
    bridge = request.getfixturevalue("bridge" if database == "sqlite" else "pg_bridge")
    bridge.set_status("a1", "ANALYZING", message="step 1")
    bridge.set_status("a2", "ANALYZING")
    first = bridge.register("a1")
    second = bridge.register("a1")  # two watches share the asset
    other = bridge.register("a2")
    bridge.tick()
    assert bridge_state(bridge).upstream_auth == "ok"
    with bridge.db():  # as if another worker had just seen a 401
        db.session.get(BridgeState, 1).upstream_auth = "failing"
        db.session.commit()
    failing_since = bridge.clock.now
    bridge.set_status("a1", "ANALYZING", message="step 2")
    for _ in range(3):
        row = asset_row(bridge, "a1")
        bridge.tick(advance=(row.next_poll_at - bridge.clock.now).total_seconds() + 5)
    row = asset_row(bridge, "a1")
    assert (row.poll_count, row.message, row.lease_owner) == (4, "step 2", None)
    assert row.next_poll_at > bridge.clock.now
    state = bridge_state(bridge)
    assert state.upstream_auth == "ok"
    assert state.upstream_auth_changed_at > failing_since
    for watch_id in (first["id"], second["id"]):
        watch = bridge.watch(watch_id)
        assert (watch["poll_count"], watch["status"], watch["message"]) == (
            4,
            "ANALYZING",
            "step 2",
        )
        assert [h["status"] for h in watch["history"]] == ["ANALYZING"]
    assert bridge.watch(other["id"])["poll_count"] == 4
    assert bridge.events() == []


def test_back_off_grows_to_the_cap_and_resets_on_change(bridge):
    bridge.set_status("a1", "ANALYZING")
    bridge.register("a1")
    bridge.tick()
    intervals = [asset_row(bridge, "a1").interval]
    for _ in range(6):
        row = asset_row(bridge, "a1")
        wait = (row.next_poll_at - bridge.clock.now).total_seconds()
        assert 0.9 * row.interval <= wait <= row.interval  # jittered, up to 10 % shorter
        assert bridge.tick(advance=wait).requests == 1
        intervals.append(asset_row(bridge, "a1").interval)
    assert intervals == [1.0, 1.5, 2.25, 3.375, 5.0625, 7.59375, 8.0]
    # Not due yet: a tick before next_poll_at sends nothing.
    assert bridge.tick(advance=0.5).requests == 0
    bridge.set_status("a1", "ANALYZE_PAUSED")  # any change, even an unknown status
    bridge.tick(advance=9)
    assert asset_row(bridge, "a1").interval == 1.0


def test_transient_errors_back_off_faster_and_keep_watching(bridge):
    bridge.set_status("a1", "ANALYZING")
    watch = bridge.register("a1")
    bridge.tick()
    bridge.fault(kind="http_error", status=503, count=2)
    bridge.tick(advance=1.2)
    row = asset_row(bridge, "a1")
    assert (row.interval, row.consecutive_errors) == (2.0, 1)
    assert row.last_error == "HTTP 503: Endpoint Error"  # the bridge's words, then the gateway's
    bridge.tick(advance=2.3)
    assert asset_row(bridge, "a1").interval == 4.0
    bridge.tick(advance=4.5)
    row = asset_row(bridge, "a1")
    assert (row.interval, row.consecutive_errors) == (6.0, 0)
    assert bridge.watch(watch["id"])["state"] == "watching"


def test_429_pauses_all_polling_until_retry_after(bridge):
    for asset_id in ("a1", "a2", "a3"):
        bridge.set_status(asset_id, "ANALYZING")
        bridge.register(asset_id)
    bridge.fault(kind="rate_limit", retry_after="20")
    bridge.tick()
    paused_until = bridge_state(bridge).rate_limited_until
    assert 19 <= (paused_until - bridge.clock.now).total_seconds() <= 20
    before = bridge.upstream_requests()
    for _ in range(3):
        assert bridge.tick(advance=5).paused
    assert bridge.upstream_requests() == before
    report = bridge.tick(advance=6)
    assert not report.paused
    assert report.requests >= 1


def test_401_is_recorded_bridge_wide_without_failing_watches(bridge):
    bridge.set_status("a1", "ANALYZING")
    watch = bridge.register("a1")
    bridge.fault(kind="auth")
    bridge.tick()
    state = bridge_state(bridge)
    assert state.upstream_auth == "failing"
    assert "Authentication Failed" in state.upstream_auth_detail
    assert bridge.watch(watch["id"])["state"] == "watching"
    assert bridge.events(watch["id"]) == []
    assert bridge.client.get("/readyz").json["upstream_auth"] == "failing"
    row = asset_row(bridge, "a1")
    assert row.interval == 8.0  # retried slowly
    bridge.tick(advance=9)
    assert bridge_state(bridge).upstream_auth == "ok"
    assert bridge.watch(watch["id"])["status"] == "ANALYZING"


def test_deadline_expiry(bridge):
    bridge.set_status("a1", "ANALYZING")
    watch = bridge.register("a1", timeout_seconds=60)
    bridge.tick()
    bridge.tick(advance=61)
    expired = bridge.watch(watch["id"])
    assert (expired["state"], expired["reason"]) == ("expired", "expired")
    events = bridge.events(watch["id"])
    assert [e["type"] for e in events] == ["watch.expired"]
    assert events[0]["data"]["watch"]["reason"] == "expired"
    assert events[0]["data"]["analysis"]["status"] == "ANALYZING"
    assert asset_row(bridge, "a1").next_poll_at is None


@pytest.mark.parametrize("gone_status", [404, 410])
def test_fallback_to_the_next_generation_in_the_same_tick(bridge, gone_status):
    bridge.set_status("a1", "ANALYZING")
    bridge.control.put(
        "/generations/video-assets", json={"enabled": False, "status_code": gone_status}
    )
    watch = bridge.register("a1", api="video-assets")
    report = bridge.tick()
    assert report.requests == 2
    moved = bridge.watch(watch["id"])
    assert (moved["api"], moved["status"], moved["reason"]) == (
        "assets",
        "ANALYZING",
        "generation_gone",
    )
    assert moved["history"][-1]["api"] == "assets"
    assert asset_row(bridge, "a1", "video-assets").next_poll_at is None
    assert asset_row(bridge, "a1", "assets").next_poll_at is not None
    # Later polls go straight to the new generation.
    assert bridge.tick(advance=1.2).requests == 1
    by_generation = bridge.control.get("/stats").json()["by_generation"]
    assert by_generation == {"video-assets": 1, "assets": 2, "index": 0}


def test_asset_missing_in_every_generation_ends_in_error(bridge):
    watch = bridge.register("nowhere", api="video-assets")
    report = bridge.tick()
    assert report.requests == 3
    ended = bridge.watch(watch["id"])
    assert (ended["state"], ended["reason"], ended["api"]) == ("error", "asset_not_found", "index")
    events = bridge.events(watch["id"])
    assert [e["type"] for e in events] == ["watch.error"]
    assert events[0]["data"]["watch"]["reason"] == "asset_not_found"


def test_permanent_upstream_answer_ends_in_error_with_its_text(bridge):
    bridge.set_status("a1", "ANALYZING")
    watch = bridge.register("a1")
    bridge.fault(kind="service_error", code="10001", message="Invalid Request.")
    bridge.tick()
    ended = bridge.watch(watch["id"])
    assert (ended["state"], ended["reason"], ended["message"]) == (
        "error",
        "upstream_rejected",
        "Invalid Request.",
    )


def test_a_shared_asset_is_polled_once_for_two_watches(bridge):
    bridge.set_status("a1", "ANALYZING")
    first = bridge.register("a1")
    second = bridge.register("a1", labels={"who": "second"})
    assert bridge.tick().requests == 1
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=3)
    assert bridge.tick(advance=1.2).requests == 1
    for watch in (first, second):
        assert [e["type"] for e in bridge.events(watch["id"])] == ["analysis.completed"]
        assert bridge.watch(watch["id"])["poll_count"] == 2
    with bridge.db():
        assert db.session.scalar(select(func.count()).select_from(Asset)) == 1


def test_one_event_per_watch_per_change_and_status_changed_only_when_subscribed(bridge):
    bridge.set_status("a1", "WAIT_ANALYZE")
    plain = bridge.register("a1")
    chatty = bridge.register("a1", events=["analysis.status_changed", "analysis.completed"])
    bridge.tick()
    for status in ("ANALYZING", "ANALYZING", "ANALYZE_COMPLETED"):
        bridge.set_status("a1", status, index_id=1 if status == "ANALYZE_COMPLETED" else None)
        bridge.tick(advance=10)
    assert [e["type"] for e in bridge.events(plain["id"])] == ["analysis.completed"]
    assert [e["type"] for e in bridge.events(chatty["id"])] == [
        "analysis.status_changed",
        "analysis.status_changed",
        "analysis.completed",
    ]
    changed = bridge.events(chatty["id"])
    assert [e["data"]["analysis"]["status"] for e in changed] == [
        "ANALYZING",
        "ANALYZE_COMPLETED",
        "ANALYZE_COMPLETED",
    ]
    with bridge.db():
        assert db.session.scalar(select(func.count()).select_from(Event)) == 4


def test_a_new_watch_never_inherits_a_cached_status(bridge):
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=1)
    early = bridge.register("a1", events=["analysis.completed"])
    bridge.tick()
    assert bridge.watch(early["id"])["state"] == "completed"
    late = bridge.register("a1")
    assert bridge.watch(late["id"])["status"] is None
    assert bridge.tick().requests == 1  # due at once, polled anew
    assert bridge.watch(late["id"])["state"] == "completed"


def test_stopped_watches_get_no_events(bridge):
    bridge.set_status("a1", "ANALYZING")
    watch = bridge.register("a1")
    bridge.tick()
    bridge.client.delete(
        f"/api/v1/watches/{watch['id']}", headers={"Authorization": "Bearer test-api-token"}
    )
    bridge.set_status("a1", "ANALYZE_COMPLETED")
    assert bridge.tick(advance=10).requests == 0
    assert bridge.events(watch["id"]) == []


def test_a_batch_that_wrote_events_wakes_the_deliveries(bridge):
    wakes = []
    bridge.runtime.wake_delivery = lambda: wakes.append(bridge.clock.now)
    bridge.set_status("a1", "ANALYZING")
    bridge.register("a1")
    bridge.tick()
    assert wakes == []  # a first, non-terminal observation writes no event
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=7)
    row = asset_row(bridge, "a1")
    bridge.tick(advance=(row.next_poll_at - bridge.clock.now).total_seconds())
    assert len(wakes) == 1
    assert [e["type"] for e in bridge.events()] == ["analysis.completed"]
