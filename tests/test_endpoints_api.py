"""``/api/v1/endpoints`` through the app: create, list, show, change, delete, rotate, replay, and
registrations that refer to endpoints."""

import pytest

from tests.fixtures import AUTH


@pytest.fixture
def bridge_overrides():
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true"}


def create(client, **body):
    return client.post("/api/v1/endpoints", json=body, headers=AUTH)


def test_a_webhook_endpoint_is_created_with_a_generated_secret_shown_once(bridge):
    client = bridge.client
    answer = create(client, name="cms", type="webhook", url="http://127.0.0.1:9/in")
    assert answer.status_code == 201, answer.json
    body = answer.json
    assert body["id"].startswith("ept_")
    assert body["name"] == "cms"
    assert body["secret"].startswith("whsec_")
    assert answer.headers["Location"] == f"/api/v1/endpoints/{body['id']}"
    for ref in (body["id"], "cms"):
        shown = client.get(f"/api/v1/endpoints/{ref}", headers=AUTH).json
        assert "secret" not in shown
        assert shown["disabled"] is False
        assert shown["pending_deliveries"] == 0
    listed = client.get("/api/v1/endpoints", headers=AUTH).json["items"]
    assert [item["name"] for item in listed] == ["cms"]
    assert all("secret" not in item for item in listed)


def test_names_are_unique_and_checked(bridge):
    client = bridge.client
    assert create(client, name="cms", type="slack", channel="#general").status_code == 201
    again = create(client, name="cms", type="slack", channel="#other")
    assert again.status_code == 409
    bad = create(client, name="Bad Name", type="slack", channel="#x", bogus=1)
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.json["errors"]} == {"#/name", "#/bogus"}


def test_a_registration_refers_to_an_endpoint_and_shows_its_name(bridge):
    client = bridge.client
    create(client, name="cms", type="webhook", url="http://127.0.0.1:9/in")
    watch = bridge.register("a-1", targets=[{"endpoint": "cms"}])
    (target,) = watch["targets"]
    assert target["endpoint"] == "cms"
    assert target["url"] == "http://127.0.0.1:9/in"
    assert "secret" not in target
    missing = client.post("/api/v1/watches", headers=AUTH, json={
        "workspace": "ws", "project_id": "1", "asset_id": "a-2",
        "targets": [{"endpoint": "nope"}, {"endpoint": "cms"}, {"endpoint": "cms"}]})  # fmt: skip
    assert missing.status_code == 422
    assert [e["pointer"] for e in missing.json["errors"]] == [
        "#/targets/0/endpoint", "#/targets/2/endpoint"]  # fmt: skip


def test_delete_is_refused_while_a_watching_watch_uses_it(bridge):
    client = bridge.client
    create(client, name="cms", type="webhook", url="http://127.0.0.1:9/in")
    watch = bridge.register("a-1", targets=[{"endpoint": "cms"}])
    refused = client.delete("/api/v1/endpoints/cms", headers=AUTH)
    assert refused.status_code == 409
    assert "1 watching watch uses" in refused.json["detail"]
    assert client.delete(f"/api/v1/watches/{watch['id']}", headers=AUTH).status_code == 200
    assert client.delete("/api/v1/endpoints/cms", headers=AUTH).status_code == 204
    assert client.get("/api/v1/endpoints/cms", headers=AUTH).status_code == 404
    (target,) = bridge.watch(watch["id"])["targets"]
    assert target["url"] == "http://127.0.0.1:9/in"
    assert target["disabled"] is True


def test_patch_changes_fields_that_fit_the_type(bridge):
    client = bridge.client
    create(client, name="cms", type="webhook", url="http://127.0.0.1:9/in")
    changed = client.patch("/api/v1/endpoints/cms", headers=AUTH,
                           json={"url": "http://127.0.0.1:10/new", "rate_limit_per_second": 5})  # fmt: skip
    assert changed.status_code == 200, changed.json
    assert changed.json["url"] == "http://127.0.0.1:10/new"
    assert changed.json["rate_limit_per_second"] == 5
    wrong = client.patch("/api/v1/endpoints/cms", headers=AUTH, json={"channel": "#x"})
    assert wrong.status_code == 422
    assert wrong.json["errors"][0]["pointer"] == "#/channel"
    disabled = client.patch("/api/v1/endpoints/cms", headers=AUTH, json={"disabled": True})
    assert disabled.json["disabled"] is True
    assert disabled.json["disabled_reason"] == "disabled by an operator"


def test_rotate_returns_a_new_secret_once_and_an_overlap(bridge):
    client = bridge.client
    first = create(client, name="cms", type="webhook", url="http://127.0.0.1:9/in").json
    rotated = client.post("/api/v1/endpoints/cms/rotate-secret", headers=AUTH,
                          json={"overlap_seconds": 60})  # fmt: skip
    assert rotated.status_code == 200
    assert rotated.json["secret"] != first["secret"]
    assert rotated.json["previous_secret_until"] is not None
    slack = create(client, name="chat", type="slack", channel="#x")
    assert slack.status_code == 201
    assert client.post("/api/v1/endpoints/chat/rotate-secret", headers=AUTH).status_code == 409


def test_an_endpoint_named_by_the_alert_targets_cannot_be_deleted(app_factory, clock):
    app = app_factory(clock=clock, BRIDGE_ALLOW_PRIVATE_URLS="true",
                      BRIDGE_ALERT_TARGETS='[{"endpoint": "ops"}]')  # fmt: skip
    client = app.test_client()
    assert (
        create(client, name="ops", type="webhook", url="http://127.0.0.1:9/ops").status_code == 201
    )
    refused = client.delete("/api/v1/endpoints/ops", headers=AUTH)
    assert refused.status_code == 409
    assert "BRIDGE_ALERT_TARGETS names this endpoint" in refused.json["detail"]
