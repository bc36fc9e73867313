"""Workflows against the simulator (issue 23): import -> analyse -> summarise in one registration,
each failure branch, a 409 that just watches, and the events in order at a real receiver.

Clocks and helpers: ``tests.workflowtools``.
"""

from __future__ import annotations

import json

import pytest

from tests.fixtures import AUTH
from tests.workflowtools import (
    BUCKET,
    KEY,
    declare_object,
    run_until_ended,
)


@pytest.fixture
def bridge_overrides():
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true", "BRIDGE_RETRY_SCHEDULE": "1,2,4"}


def register(bridge, receiver, **fields) -> dict:
    body = {"workspace": "ws", "project_id": "1",
            "targets": [{"type": "webhook", "url": f"{receiver.url}/in"}], **fields}  # fmt: skip
    response = bridge.client.post("/api/v1/watches", json=body, headers=AUTH)
    assert response.status_code == 201, response.json
    return response.json


def delivered_types(deliver, receiver) -> list[str]:
    for _ in range(5):
        deliver(advance=5)
    return [json.loads(request.body)["type"] for request in receiver.requests]


def test_import_analyse_summarise_delivers_three_events_in_order(
    bridge, receiver, deliver, sim_control, sim_advance
):
    declare_object(sim_control)
    watch = register(bridge, receiver, **{
        "import": {"bucket_name": BUCKET, "key": KEY},
        "analyze": {"sceneRange": "ALL", "analysisPersonCount": 2}, "summarize": {}})  # fmt: skip
    assert (watch["stage"], watch["asset_id"], watch["api"]) == ("importing", None, "index")
    assert watch["workflow"]["import"] == {"bucket_name": BUCKET, "key": KEY, "status": None,
                                           "message": None, "metadata": None}  # fmt: skip
    ended = run_until_ended(bridge, sim_advance, watch["id"])
    assert (ended["state"], ended["stage"]) == ("completed", "done")
    assert ended["asset_id"] is not None
    assert ended["workflow"]["import"]["status"] == "COMPLETED"
    assert ended["workflow"]["summary"]["status"] == "SUMMARIZE_COMPLETED"
    assert delivered_types(deliver, receiver) == [
        "asset.imported", "analysis.completed", "summary.completed"]  # fmt: skip
    (imported,) = sim_control.get("/imports").json()["imports"]
    assert (imported["bucket"], imported["key"]) == (BUCKET, KEY)
    work = sim_control.get(f"/assets/ws/1/{ended['asset_id']}/workflow").json()
    assert work["last_index_body"] == {"sceneRange": "ALL", "analysisPersonCount": 2}


def test_an_object_that_does_not_exist_fails_the_watch(bridge, receiver, deliver, sim_advance):
    watch = register(bridge, receiver, **{"import": {"bucket_name": BUCKET, "key": "nope.mp4"},
                                          "analyze": {}})  # fmt: skip
    ended = run_until_ended(bridge, sim_advance, watch["id"])
    assert (ended["state"], ended["reason"]) == ("failed", "import_failed")
    assert ended["workflow"]["import"]["status"] == "FILE_NOT_EXIST"
    assert delivered_types(deliver, receiver) == ["asset.import_failed"]


def test_an_import_without_analyze_ends_completed_after_it(bridge, receiver, deliver, sim_control,
                                                           sim_advance):  # fmt: skip
    declare_object(sim_control)
    watch = register(bridge, receiver, **{"import": {"bucket_name": BUCKET, "key": KEY}})
    ended = run_until_ended(bridge, sim_advance, watch["id"])
    assert (ended["state"], ended["stage"]) == ("completed", "done")
    assert delivered_types(deliver, receiver) == ["asset.imported"]


def test_a_refused_analysis_request_ends_the_watch_in_error(bridge, receiver, deliver, sim_control,
                                                             sim_advance):  # fmt: skip
    refusal = {"status": 400, "code": "10014", "message": "analysisPersonCount: 0-10"}
    response = sim_control.put("/assets/ws/1/a-refused", json={
        "wait_seconds": 1, "analyze_seconds": 2, "await_index": True, "index_refusal": refusal})  # fmt: skip
    assert response.status_code == 201, response.text
    watch = register(bridge, receiver, asset_id="a-refused", analyze={"analysisPersonCount": 99})
    ended = run_until_ended(bridge, sim_advance, watch["id"])
    assert (ended["state"], ended["reason"]) == ("error", "analyze_rejected")
    assert "analysisPersonCount: 0-10" in ended["message"]
    assert ended["poll_count"] == 0  # never followed: nothing was analysing
    assert delivered_types(deliver, receiver) == ["watch.error"]


def test_a_failed_summary_fails_the_watch_after_analysis_completed(
    bridge, receiver, deliver, sim_control, sim_advance
):
    declare_object(sim_control, analysis={
        "wait_seconds": 1, "analyze_seconds": 1, "outcome": "ANALYZE_COMPLETED", "index_id": 8,
        "summary": {"wait_seconds": 1, "summarize_seconds": 1, "outcome": "SUMMARIZE_FAIL",
                    "message": "요약 실패"}})  # fmt: skip
    watch = register(bridge, receiver, **{"import": {"bucket_name": BUCKET, "key": KEY},
                                          "analyze": {}, "summarize": {"lang": "ko"}})  # fmt: skip
    ended = run_until_ended(bridge, sim_advance, watch["id"])
    assert (ended["state"], ended["reason"], ended["message"]) == (
        "failed", "summary_failed", "요약 실패")  # fmt: skip
    assert ended["workflow"]["summary"] == {"status": "SUMMARIZE_FAIL", "message": "요약 실패"}
    assert delivered_types(deliver, receiver) == [
        "asset.imported", "analysis.completed", "summary.failed"]  # fmt: skip
    work = sim_control.get(f"/assets/ws/1/{ended['asset_id']}/workflow").json()
    assert work["summary"]["last_body"] == {"lang": "ko"}


def test_a_409_to_the_analysis_request_just_watches_the_running_analysis(
    bridge, receiver, deliver, sim_control, sim_advance
):
    response = sim_control.put("/assets/ws/1/a-running", json={
        "wait_seconds": 0, "analyze_seconds": 3, "outcome": "ANALYZE_COMPLETED", "index_id": 3})  # fmt: skip
    assert response.status_code == 201, response.text
    watch = register(bridge, receiver, asset_id="a-running", analyze={})
    assert (watch["stage"], watch["next_poll_at"]) == ("analyzing", None)  # not polled yet
    bridge.tick()  # the request: 409, already analysing
    assert sim_control.get("/assets/ws/1/a-running/workflow").json()["index_requests"] == 1
    following = bridge.watch(watch["id"])
    assert following["next_poll_at"] is not None
    ended = run_until_ended(bridge, sim_advance, watch["id"])
    assert (ended["state"], ended["index_id"]) == ("completed", 3)
    assert delivered_types(deliver, receiver) == ["analysis.completed"]


def test_a_retried_registration_imports_once(bridge, receiver, sim_control, sim_advance):
    declare_object(sim_control)
    body = {"workspace": "ws", "project_id": "1", "import": {"bucket_name": BUCKET, "key": KEY},
            "targets": [{"type": "webhook", "url": f"{receiver.url}/in"}]}  # fmt: skip
    headers = {**AUTH, "Idempotency-Key": "import-once-1"}
    first = bridge.client.post("/api/v1/watches", json=body, headers=headers)
    again = bridge.client.post("/api/v1/watches", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json["id"] == again.json["id"]
    ended = run_until_ended(bridge, sim_advance, first.json["id"])
    assert ended["state"] == "completed"
    assert len(sim_control.get("/imports").json()["imports"]) == 1


def test_an_import_whose_answer_was_lost_is_found_not_repeated(
    bridge, receiver, sim_control, sim_advance, simulator
):
    """A worker died after NCP took the import and before its answer was committed: the next
    worker finds ``calling_since`` set, looks the object up, and adopts the asset it finds."""
    from app.db import db
    from app.models import Workflow
    from tests.fixtures import TEST_ACCESS_KEY, TEST_SECRET_KEY, SignedClient

    declare_object(sim_control)
    watch = register(bridge, receiver, **{"import": {"bucket_name": BUCKET, "key": KEY}})
    upstream = SignedClient(simulator.url, TEST_ACCESS_KEY, TEST_SECRET_KEY)
    taken = upstream.request("POST", "/api/v1/workspaces/ws/projects/1/assets/import/object-storage",
                             json={"key": KEY, "bucketName": BUCKET})  # fmt: skip
    assert taken.status_code == 200, taken.text
    lost_asset_id = str(taken.json()["result"]["assetId"])
    with bridge.db():
        workflow = db.session.get(Workflow, watch["id"])
        workflow.calling_since = bridge.clock()  # committed before the call, as the worker does
        db.session.commit()
    ended = run_until_ended(bridge, sim_advance, watch["id"])
    assert (ended["state"], ended["asset_id"]) == ("completed", lost_asset_id)
    assert len(sim_control.get("/imports").json()["imports"]) == 1
    upstream.close()


@pytest.mark.parametrize(("fault", "lookups"), [
    ({"kind": "http_error", "status": 503}, 1),  # may have been carried out: looked up first
    ({"kind": "rate_limit", "retry_after": "1"}, 0),  # refused before any work: no lookup
])  # fmt: skip
def test_a_failed_import_call_is_retried_and_imports_once(
    bridge, receiver, sim_control, sim_advance, fault, lookups
):
    declare_object(sim_control)
    bridge.fault(endpoint="import", count=1, **fault)
    # A rule that changes nothing but counts the asset-list requests (the lookups).
    bridge.fault(kind="slow", delay_seconds=0, endpoint="list", count=None)
    watch = register(bridge, receiver, **{"import": {"bucket_name": BUCKET, "key": KEY}})
    ended = run_until_ended(bridge, sim_advance, watch["id"])
    assert ended["state"] == "completed"
    assert len(sim_control.get("/imports").json()["imports"]) == 1
    rules = sim_control.get("/faults").json()
    rules = rules.get("faults", rules) if isinstance(rules, dict) else rules
    (counter,) = [rule for rule in rules if rule.get("endpoint") == "list"]
    assert counter["matched"] == lookups


def test_analysis_stalled_is_sent_once_per_unchanged_status(bridge, receiver, deliver):
    bridge.set_status("a-slow", "ANALYZING")
    watch = register(bridge, receiver, asset_id="a-slow", stalled_after_seconds=5,
                     events=["analysis.stalled", "analysis.completed"])  # fmt: skip
    assert watch["stalled_after_seconds"] == 5
    for _ in range(12):  # 12 s of ANALYZING: stalled once, not again
        bridge.tick(advance=1)
    assert delivered_types(deliver, receiver) == ["analysis.stalled"]
    stalled = json.loads(receiver.requests[0].body)
    assert stalled["data"]["analysis"]["status"] == "ANALYZING"
    bridge.set_status("a-slow", "WAIT_ANALYZE")
    for _ in range(8):
        bridge.tick(advance=1)
    assert delivered_types(deliver, receiver) == ["analysis.stalled", "analysis.stalled"]
    assert json.loads(receiver.requests[1].body)["data"]["analysis"]["status"] == "WAIT_ANALYZE"


def test_without_a_threshold_or_subscription_nothing_stalls(bridge, receiver, deliver):
    bridge.set_status("a-quiet", "ANALYZING")
    plain = register(bridge, receiver, asset_id="a-quiet", stalled_after_seconds=2)
    unset = register(bridge, receiver, asset_id="a-quiet", events=["analysis.stalled"])
    assert (plain["stalled_after_seconds"], unset["stalled_after_seconds"]) == (None, None)
    for _ in range(6):
        bridge.tick(advance=1)
    assert delivered_types(deliver, receiver) == []


def test_workflow_fields_are_validated(bridge, receiver):
    def refused(**fields) -> list[tuple[str, str]]:
        body = {"workspace": "ws", "project_id": "1",
                "targets": [{"type": "webhook", "url": f"{receiver.url}/in"}], **fields}  # fmt: skip
        response = bridge.client.post("/api/v1/watches", json=body, headers=AUTH)
        assert response.status_code == 422, response.json
        return [(e["pointer"], e["detail"]) for e in response.json["errors"]]

    assert refused() == [("#/asset_id", "required")]
    both = refused(asset_id="1", **{"import": {"bucket_name": BUCKET, "key": KEY}})
    assert both == [("#/asset_id", "give exactly one of asset_id and import")]
    assert refused(**{"import": {"bucket_name": BUCKET, "key": KEY}}, summarize={}) == [
        ("#/summarize", "an imported asset needs analyze first")]  # fmt: skip
    details = refused(**{"import": {"bucket_name": "A", "key": "k\u0001"}})
    assert [p for p, _ in details] == ["#/import/bucket_name", "#/import/key"]
    assert details[0][1].startswith("must be an Object Storage bucket name")
    assert details[1][1] == "must not contain control characters (a newline, a tab...)"
    assert refused(asset_id="1", analyze={"x": "y" * 5000}) == [
        ("#/analyze", "must be at most 4 KiB of JSON")]  # fmt: skip
    assert refused(asset_id="1", summarize=["x"]) == [
        ("#/summarize", "must be an object of options (passed to NCP as given; {} for none)")]  # fmt: skip
    assert [p for p, _ in refused(asset_id="1", stalled_after_seconds=0.5)] == [
        "#/stalled_after_seconds"]  # fmt: skip


def test_one_slack_message_follows_every_stage_in_place(
    app_factory, clock, simulator, sim_control, sim_advance, fake_slack
):
    """The import, the analysis and the summary edit one message; the outcomes are replies."""
    from app.worker.delivery import deliver_once
    from tests.fake_slack import TOKEN
    from tests.fixtures import TICK_TIMINGS, Bridge, simulator_config

    app = app_factory(clock=clock, **simulator_config(simulator.url), **TICK_TIMINGS,
                      SLACK_API_URL=fake_slack.api_url, SLACK_BOT_TOKEN=TOKEN)  # fmt: skip
    bridge = Bridge(app, clock, simulator, sim_control)
    try:
        declare_object(sim_control)
        response = bridge.client.post("/api/v1/watches", headers=AUTH, json={
            "workspace": "ws", "project_id": "1", "analyze": {}, "summarize": {},
            "import": {"bucket_name": BUCKET, "key": KEY},
            "targets": [{"type": "slack", "channel": "general", "language": "ko"}]})  # fmt: skip
        assert response.status_code == 201, response.json
        for _ in range(30):
            if bridge.watch(response.json["id"])["state"] != "watching":
                break
            sim_advance(1)
            bridge.tick(advance=1)
            deliver_once(bridge.runtime)
        for _ in range(3):
            deliver_once(bridge.runtime)
    finally:
        bridge.runtime.close()
    [message] = fake_slack.messages("general")
    assert [c.target for c in fake_slack.calls] == [
        "chat.postMessage",  # asset.imported
        "chat.update", "chat.postMessage",  # analysis.completed, and its reply
        "chat.update", "chat.postMessage",  # summary.completed, and its reply
    ]  # fmt: skip
    assert "장면 요약 완료" in message["blocks"][0]["text"]["text"]  # edited to the last stage
    fields = " ".join(f["text"] for f in message["blocks"][1]["fields"])
    assert "*단계*\n완료" in fields  # stage: done
    assert "SUMMARIZE_COMPLETED" in fields
    assert [reply["text"].split(":")[0] for reply in message["replies"]] == [
        "분석 완료", "장면 요약 완료"]  # fmt: skip


def test_a_429_or_401_to_a_workflow_call_is_the_accounts_trouble(bridge, receiver, sim_control):
    """Like a poll's: a 429 pauses the account (no call, no poll, until it ends), a 401 marks its
    keys failing on /readyz; the watch waits and carries on."""
    declare_object(sim_control)
    bridge.fault(endpoint="import", kind="rate_limit", retry_after="30", count=1)
    watch = register(bridge, receiver, **{"import": {"bucket_name": BUCKET, "key": KEY}})
    bridge.tick()
    ready = bridge.client.get("/readyz").json
    assert ready["rate_limited_until"] is not None
    for _ in range(5):
        bridge.tick(advance=5)  # 25 s: still paused
    assert sim_control.get("/imports").json()["imports"] == []
    assert bridge.watch(watch["id"])["workflow"]["last_error"] == "HTTP 429: Rate Limited"
    bridge.fault(endpoint="import", kind="auth", count=1)
    bridge.tick(advance=6)  # the pause is over: the import is tried, and refused with 401
    assert bridge.client.get("/readyz").json["upstream_auth"] == "failing"
    assert bridge.watch(watch["id"])["state"] == "watching"
    assert sim_control.get("/imports").json()["imports"] == []


def test_a_slow_workflow_call_holds_up_neither_polls_nor_a_whole_tick(
    bridge, receiver, sim_control
):
    """Workflow calls run in their own job: a poll tick makes none. And a workflow tick starts no
    call after its budget: the second import waits for the next tick instead of the first one's
    slow answer plus its own."""
    from app.worker.polling import poll_once
    from app.worker.workflows import TICK_BUDGET, workflow_once

    for key in ("videos/a.mp4", "videos/b.mp4"):
        declare_object(sim_control, key=key)
    bridge.fault(kind="slow", delay_seconds=TICK_BUDGET + 0.5, endpoint="import", count=1)
    bridge.set_status("plain", "ANALYZING")
    plain = register(bridge, receiver, asset_id="plain")
    for key in ("videos/a.mp4", "videos/b.mp4"):
        register(bridge, receiver, **{"import": {"bucket_name": BUCKET, "key": key}})
    report = poll_once(bridge.runtime)
    assert report.polled == 1  # the plain watch's asset, at once
    assert bridge.watch(plain["id"])["status"] == "ANALYZING"
    assert sim_control.get("/imports").json()["imports"] == []  # no workflow call from a poll
    workflow_once(bridge.runtime)  # the first import is slow: the tick's budget is spent
    assert len(sim_control.get("/imports").json()["imports"]) == 1
    workflow_once(bridge.runtime)
    keys = {i["key"] for i in sim_control.get("/imports").json()["imports"]}
    assert keys == {"videos/a.mp4", "videos/b.mp4"}
