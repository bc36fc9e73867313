"""Webhook deliveries from the outbox, end to end through a real receiver on 127.0.0.1."""

import json

import pytest
from standardwebhooks import Webhook

from tests.receiver import Answer

TOKEN = {"Authorization": "Bearer test-api-token"}


@pytest.fixture
def bridge_overrides():
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true", "BRIDGE_RETRY_SCHEDULE": "1,2,4"}


def watch_with_receiver(bridge, receiver, asset_id="a1", **fields):
    bridge.set_status(asset_id, "ANALYZING")
    fields.setdefault("targets", [{"type": "webhook", "url": receiver.url + "/hook"}])
    watch = bridge.register(asset_id, **fields)
    bridge.tick()
    return watch


def complete(bridge, asset_id="a1", index_id=1001):
    bridge.set_status(asset_id, "ANALYZE_COMPLETED", index_id=index_id)
    bridge.tick(advance=1.2)


def delivery_of(bridge, watch_id):
    deliveries = bridge.watch(watch_id)["deliveries"]
    assert len(deliveries) == 1
    return deliveries[0]


def test_signature_verifies_with_the_reference_library(bridge, receiver, deliver):
    watch = watch_with_receiver(bridge, receiver, labels={"cms_id": "abc-123"})
    secret = watch["targets"][0]["secret"]
    complete(bridge)
    report = deliver()
    assert (report.claimed, report.sent) == (1, 1)
    [request] = receiver.requests
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "analysis.completed"
    assert payload["data"]["analysis"]["index_id"] == 1001
    assert payload["data"]["watch"] == {"id": watch["id"], "labels": {"cms_id": "abc-123"}}
    assert request.headers["webhook-id"] == payload["id"]
    assert request.headers["content-type"] == "application/json"
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 44).verify(request.body, request.headers)
    delivery = delivery_of(bridge, watch["id"])
    assert delivery["state"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [200]


def test_a_given_secret_signs(bridge, receiver, deliver):
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" + "bbbbbbbbbbbb"
    watch_with_receiver(
        bridge, receiver, targets=[{"type": "webhook", "url": receiver.url, "secret": secret}]
    )
    complete(bridge)
    deliver()
    [request] = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "analysis.completed"


def test_fails_twice_then_succeeds_with_identical_bytes(bridge, receiver, deliver):
    watch = watch_with_receiver(bridge, receiver)
    complete(bridge)
    receiver.answer(Answer(500, body=b"boom"), Answer(502))
    deliver()
    assert deliver(advance=0.5).claimed == 0  # not due before the first delay (1 s +-10 %)
    deliver(advance=0.7)
    deliver(advance=2.5)
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    delivery = delivery_of(bridge, watch["id"])
    assert delivery["state"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 502, 200]
    assert delivery["attempts"][0]["error"] == "answered HTTP 500"
    assert delivery["attempts"][0]["error_detail"] == "HTTP 500 Internal Server Error"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_waited_out_without_using_an_attempt(bridge, receiver, deliver, status):
    watch = watch_with_receiver(bridge, receiver)
    complete(bridge)
    receiver.answer(Answer(status, headers={"Retry-After": "30"}))
    deliver()
    delivery = delivery_of(bridge, watch["id"])
    assert (delivery["state"], delivery["attempt_count"]) == ("pending", 0)
    assert deliver(advance=29).claimed == 0
    deliver(advance=1.5)
    delivery = delivery_of(bridge, watch["id"])
    assert (delivery["state"], delivery["attempt_count"]) == ("succeeded", 1)
    assert [a["status_code"] for a in delivery["attempts"]] == [status, 200]


def test_410_disables_the_target_and_later_events_fail_unsent(bridge, receiver, deliver):
    watch = watch_with_receiver(
        bridge, receiver, events=["analysis.status_changed", "analysis.completed"]
    )
    receiver.answer(Answer(410))
    bridge.set_status("a1", "WAIT_ANALYZE")
    bridge.tick(advance=1.2)
    deliver()
    assert bridge.watch(watch["id"])["targets"][0]["disabled"] is True
    complete(bridge)
    deliver(advance=1)
    deliver()  # the completed event waits for the status_changed before it (per-target order)
    assert len(receiver.requests) == 1
    states = [d["state"] for d in bridge.watch(watch["id"])["deliveries"]]
    assert states == ["failed", "failed", "failed"]  # status_changed x2 + completed


def test_always_failing_becomes_dead_then_retry_delivers_same_webhook_id(bridge, receiver, deliver):
    watch = watch_with_receiver(bridge, receiver)
    complete(bridge)
    receiver.default = Answer(500)
    for advance in (0, 1.2, 2.3, 4.5):
        deliver(advance=advance)
    delivery = delivery_of(bridge, watch["id"])
    assert (delivery["state"], delivery["attempt_count"]) == ("dead", 4)  # 1 + 3 retries
    assert deliver(advance=100).claimed == 0
    receiver.default = Answer(200)
    response = bridge.client.post(f"/api/v1/deliveries/{delivery['id']}/retry", headers=TOKEN)
    assert response.status_code == 202
    assert (
        bridge.client.post(f"/api/v1/deliveries/{delivery['id']}/retry", headers=TOKEN).status_code
        == 409
    )
    deliver()
    assert delivery_of(bridge, watch["id"])["state"] == "succeeded"
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len(receiver.requests) == 5


def test_a_redirect_is_a_failed_attempt_and_never_followed(bridge, receiver, deliver):
    from tests.receiver import Receiver

    elsewhere = Receiver().start()
    try:
        watch = watch_with_receiver(bridge, receiver)
        complete(bridge)
        receiver.answer(Answer(302, headers={"Location": elsewhere.url + "/stolen"}))
        deliver()
        delivery = delivery_of(bridge, watch["id"])
        assert (delivery["state"], delivery["attempts"][0]["status_code"]) == ("pending", 302)
        assert "redirect" in delivery["attempts"][0]["error"]
        assert elsewhere.requests == []
    finally:
        elsewhere.stop()


def test_two_events_to_one_target_arrive_in_order_even_with_a_retry(bridge, receiver, deliver):
    watch = watch_with_receiver(
        bridge, receiver, events=["analysis.status_changed", "analysis.completed"]
    )
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=2)
    bridge.tick(advance=1.2)  # two events: status_changed, then completed
    receiver.answer(Answer(500))
    report = deliver()
    # Both in one chain: the earlier's failure ends it and gives the later one back, which the next
    # claim of the same tick takes once the earlier's first attempt is recorded.
    assert (report.claimed, report.sent) == (3, 2)
    assert [json.loads(r.body)["type"] for r in receiver.requests] == [
        "analysis.status_changed", "analysis.completed",
    ]  # fmt: skip
    deliver()
    deliver(advance=1.2)
    types = [json.loads(r.body)["type"] for r in receiver.requests]
    assert types == ["analysis.status_changed", "analysis.completed", "analysis.status_changed"]
    assert all(d["state"] == "succeeded" for d in bridge.watch(watch["id"])["deliveries"])


def test_test_endpoint_reports_real_outcomes(bridge, receiver):
    from tests.receiver import Receiver

    failing = Receiver().start()
    failing.default = Answer(500, body=b"nope")
    try:
        watch = bridge.register("a1", targets=[
            {"type": "webhook", "url": receiver.url + "/ok"},
            {"type": "webhook", "url": failing.url + "/bad"},
        ])  # fmt: skip
        response = bridge.client.post(f"/api/v1/watches/{watch['id']}/test", headers=TOKEN)
        assert response.status_code == 200
        results = response.json["results"]
        assert [(r["ok"], r["status_code"]) for r in results] == [(True, 200), (False, 500)]
        assert json.loads(receiver.requests[0].body)["type"] == "bridge.test"
        deliveries = bridge.watch(watch["id"])["deliveries"]
        assert sorted(d["state"] for d in deliveries) == ["failed", "succeeded"]
        assert bridge.events(watch["id"]) == []  # bridge.test is not in the feed
    finally:
        failing.stop()


def test_deliveries_list_filters(bridge, receiver, deliver):
    watch = watch_with_receiver(bridge, receiver)
    complete(bridge)
    receiver.answer(Answer(500))
    deliver()
    listed = bridge.client.get(
        "/api/v1/deliveries", query_string={"state": "pending"}, headers=TOKEN
    )
    assert [d["watch_id"] for d in listed.json["items"]] == [watch["id"]]
    assert (
        bridge.client.get("/api/v1/deliveries", query_string={"state": "dead"}, headers=TOKEN).json[
            "items"
        ]
        == []
    )
    assert (
        bridge.client.get(
            "/api/v1/deliveries", query_string={"state": "bogus"}, headers=TOKEN
        ).status_code
        == 400
    )
