"""Endpoints of type ``slack`` (Slack's disabling errors disable the endpoint for every watch) and
endpoints named by ``BRIDGE_DEFAULT_TARGETS``, against the fake Slack Web API."""

import pytest

from tests.fake_slack import TOKEN
from tests.fixtures import AUTH


@pytest.fixture
def bridge_overrides(fake_slack):
    return {
        "SLACK_API_URL": fake_slack.api_url,
        "SLACK_BOT_TOKEN": TOKEN,
        "BRIDGE_RETRY_SCHEDULE": "1,2",
        "BRIDGE_DEFAULT_TARGETS": '[{"endpoint": "newsroom"}]',
    }


def create(bridge, **body):
    answer = bridge.client.post("/api/v1/endpoints", headers=AUTH, json=body)
    assert answer.status_code == 201, answer.json
    return answer.json


def complete(bridge, asset_id, **fields):
    bridge.set_status(asset_id, "ANALYZING")
    watch = bridge.register(asset_id, events=["analysis.completed"], **fields)
    bridge.tick()
    bridge.set_status(asset_id, "ANALYZE_COMPLETED", index_id=3)
    bridge.tick(advance=1.2)
    return watch


def test_default_targets_may_name_an_endpoint(bridge, fake_slack, deliver):
    refused = bridge.client.post("/api/v1/watches", headers=AUTH, json={
        "workspace": "ws", "project_id": "1", "asset_id": "early"})  # fmt: skip
    assert refused.status_code == 422  # the endpoint does not exist yet
    assert refused.json["errors"] == [
        {"pointer": "#/targets", "detail": "BRIDGE_DEFAULT_TARGETS names no endpoint: 'newsroom'"}
    ]
    create(bridge, name="newsroom", type="slack", channel="general")
    watch = complete(bridge, "a1", targets=None)
    (target,) = watch["targets"]
    assert target["endpoint"] == "newsroom"
    assert target["channel"] == "general"
    assert deliver().sent == 1
    assert len(fake_slack.messages("general")) == 1


def test_a_disabling_slack_error_disables_the_endpoint_for_every_watch(bridge, fake_slack, deliver):
    create(bridge, name="gone", type="slack", channel="no-such-channel")
    first = complete(bridge, "a1", targets=[{"endpoint": "gone"}])
    assert deliver().sent == 1
    shown = bridge.client.get("/api/v1/endpoints/gone", headers=AUTH).json
    assert shown["disabled"] is True
    assert "channel_not_found" in shown["disabled_reason"]
    second = complete(bridge, "a2", targets=[{"endpoint": "gone"}])
    assert deliver(advance=5).claimed == 0  # held, not attempted
    for watch in (first, second):
        (delivery,) = bridge.watch(watch["id"])["deliveries"]
        assert delivery["state"] == "pending"
    # The channel is fixed: changing the endpoint fixes it for both watches, in order.
    fixed = bridge.client.patch("/api/v1/endpoints/gone", headers=AUTH,
                                json={"channel": "general", "disabled": False})  # fmt: skip
    assert fixed.status_code == 200
    assert deliver().sent + deliver().sent == 2
    assert len(fake_slack.messages("general")) == 2
