"""Visible trouble: a watch whose upstream fails says why (API, watch page, list, CLI) until a poll
succeeds; a dead notification marks its watch in the list.

The upstream is the simulator with fault rules; polls run tick by tick with a fake clock.
"""

from __future__ import annotations

import re

import pytest

from app.cli.watch_output import watch_detail, watch_table
from tests.dashboardtools import dead_delivery, sign_in
from tests.fixtures import AUTH

REQUEST_ID = re.compile(r"^[0-9a-f-]{36}$")


@pytest.fixture
def page(bridge):
    """GET a dashboard page of ``bridge``'s app, signed in; returns its HTML."""
    sign_in(bridge.client)

    def get(path: str) -> str:
        response = bridge.client.get(path)
        assert response.status_code == 200, path
        return response.get_data(as_text=True)

    return get


def test_a_failing_upstream_shows_last_error_everywhere_and_a_success_clears_it(bridge, page):
    bridge.set_status("t1", "ANALYZING")
    watch_id = bridge.register("t1")["id"]
    assert bridge.watch(watch_id)["last_error"] is None
    bridge.fault(kind="http_error", status=503, count=2)
    bridge.tick()
    bridge.tick(advance=10)

    error = bridge.watch(watch_id)["last_error"]
    assert error["kind"] == "transient"
    assert (error["status_code"], error["consecutive"]) == (503, 2)
    assert error["message"].startswith("HTTP 503")
    assert REQUEST_ID.match(error["request_id"])
    html = page(f"/watches/{watch_id}")
    assert 'id="last-error"' in html
    assert "The last 2 polls failed" in html
    assert error["request_id"] in html
    assert "No answer yet: 2 failed polls" in html  # the timeline no longer just "waits"
    listing = page("/")
    assert 'data-trouble="poll-error"' in listing
    assert "transient 503 \u00d72" in listing  # times two
    detail = "\n".join(watch_detail(bridge.watch(watch_id)))
    assert f"last error transient, HTTP 503, 2 in a row, last at {error['at']}" in detail
    table = "\n".join(watch_table([bridge.watch(watch_id)]))
    assert "!transient x2" in table

    bridge.tick(advance=10)  # the fault rule is used up: the simulator answers
    assert bridge.watch(watch_id)["status"] == "ANALYZING"
    assert bridge.watch(watch_id)["last_error"] is None
    assert 'id="last-error"' not in page(f"/watches/{watch_id}")
    assert 'data-trouble="poll-error"' not in page("/")


@pytest.mark.parametrize(
    ("fault", "kind", "status_code"),
    [
        ({"kind": "auth"}, "auth", 401),
        ({"kind": "rate_limit", "retry_after": "5"}, "rate_limited", 429),
        ({"kind": "malformed"}, "transient", 200),
    ],
)
def test_each_kind_of_failed_poll_is_named(bridge, fault, kind, status_code):
    bridge.set_status("k1", "ANALYZING")
    watch_id = bridge.register("k1")["id"]
    bridge.fault(**fault, count=1)
    bridge.tick()
    error = bridge.watch(watch_id)["last_error"]
    assert (error["kind"], error["status_code"], error["consecutive"]) == (kind, status_code, 1)
    assert bridge.watch(watch_id)["state"] == "watching"


def test_a_refused_asset_ends_the_watch_with_a_permanent_last_error(bridge, page):
    bridge.set_status("p1", "ANALYZING")
    watch_id = bridge.register("p1")["id"]
    bridge.fault(kind="http_error", status=400, count=1)
    bridge.tick()
    watch = bridge.watch(watch_id)
    assert (watch["state"], watch["reason"]) == ("error", "upstream_rejected")
    assert (watch["last_error"]["kind"], watch["last_error"]["status_code"]) == ("permanent", 400)
    assert "The upstream refused this asset" in page(f"/watches/{watch_id}")


def test_a_later_failure_of_the_asset_does_not_reach_an_ended_watch(bridge):
    bridge.set_status("e1", "ANALYZE_COMPLETED")
    ended = bridge.register("e1")["id"]
    bridge.tick()
    assert bridge.watch(ended)["state"] == "completed"
    bridge.set_status("e1", "ANALYZING")
    bridge.register("e1")  # the asset is polled again, for this watch
    bridge.fault(kind="http_error", status=500, count=1)
    bridge.tick(advance=1)
    assert bridge.watch(ended)["last_error"] is None


def test_a_dead_notification_marks_its_completed_watch_in_the_list(bridge, page):
    bridge.set_status("d1", "ANALYZE_COMPLETED")
    watch_id = bridge.register("d1")["id"]
    bridge.tick()
    row = re.compile(rf'<tr data-watch-id="{watch_id}">.*?</tr>', re.S)
    assert 'data-trouble="dead-deliveries"' not in row.search(page("/")).group(0)
    dead_delivery(bridge.app, watch_id)
    dead_delivery(bridge.app, watch_id)
    marked = row.search(page("/")).group(0)
    assert 'data-trouble="dead-deliveries"' in marked
    assert "⚠ 2 dead" in marked


def test_a_slack_target_is_refused_while_no_bot_token_is_set(app_factory, resolver, tmp_path):
    resolver.table["hooks.example.test"] = ["93.184.216.34"]
    client = app_factory(SLACK_BOT_TOKEN=None).test_client()
    body = {
        "workspace": "ws",
        "project_id": "1",
        "asset_id": "s1",
        "targets": [
            {"type": "webhook", "url": "https://hooks.example.test/in"},
            {"type": "slack", "channel": "C0123456789"},
        ],
    }
    response = client.post("/api/v1/watches", json=body, headers=AUTH)
    assert response.status_code == 422
    (error,) = response.json["errors"]
    assert error["pointer"] == "#/targets/1/type"
    assert "SLACK_BOT_TOKEN is not set" in error["detail"]
    # The same registration with the token set is accepted.
    with_token = app_factory(DATABASE_URL=f"sqlite:///{tmp_path}/with-token.db").test_client()
    assert with_token.post("/api/v1/watches", json=body, headers=AUTH).status_code == 201


def test_needs_attention_counts_and_lists_deliveries_held_by_slack_credentials(
    app_factory, clock, simulator, sim_control, fake_slack
):
    from app.worker.delivery import deliver_once
    from tests.fake_slack import TOKEN
    from tests.fixtures import TICK_TIMINGS, Bridge, simulator_config

    app = app_factory(
        clock=clock, **simulator_config(simulator.url), **TICK_TIMINGS,
        SLACK_API_URL=fake_slack.api_url, SLACK_BOT_TOKEN=TOKEN,
    )  # fmt: skip
    bridge = Bridge(app, clock, simulator, sim_control)
    try:
        sign_in(bridge.client)
        bridge.set_status("h1", "ANALYZE_COMPLETED", index_id=1)
        watch_id = bridge.register("h1", targets=[{"type": "slack", "channel": "general"}])["id"]
        html = bridge.client.get("/").get_data(as_text=True)
        assert 'id="attention-count"' not in html  # nothing needs anyone yet
        fake_slack.revoke()
        bridge.tick()
        deliver_once(bridge.runtime)
        page = bridge.client.get("/deliveries").get_data(as_text=True)
        assert re.search(r'id="attention-count"[^>]*>1<', page)
        assert "Held deliveries" in page
        assert "Slack rejects the bridge&#39;s bot token (Slack: token_revoked)" in page
        assert f'href="/watches/{watch_id}"' in page
        fake_slack.restore()
        clock.advance(61)
        deliver_once(bridge.runtime)
        page = bridge.client.get("/deliveries").get_data(as_text=True)
        assert "Held deliveries" not in page
        assert 'id="attention-count"' not in page
    finally:
        bridge.runtime.close()
