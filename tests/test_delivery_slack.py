"""Slack targets through the outbox, against a fake Slack Web API reached via slack-sdk's base_url."""

import pytest

from tests.fake_slack import TOKEN

TOKEN_HEADER = {"Authorization": "Bearer test-api-token"}
SLACK = [{"type": "slack", "channel": "general"}]


@pytest.fixture
def bridge_overrides(fake_slack):
    return {
        "SLACK_API_URL": fake_slack.api_url,
        "SLACK_BOT_TOKEN": TOKEN,
        "BRIDGE_ALLOW_PRIVATE_URLS": "true",
        "BRIDGE_RETRY_SCHEDULE": "1,2",
        "BRIDGE_PUBLIC_URL": "https://bridge.example.test",
    }


def drain(deliver, ticks=4):
    for _ in range(ticks):
        deliver()


def test_one_post_then_edits_of_the_same_ts_then_a_broadcast_reply(bridge, fake_slack, deliver):
    bridge.set_status("a1", "WAIT_ANALYZE")
    watch = bridge.register(
        "a1", targets=SLACK, events=["analysis.status_changed", "analysis.completed"]
    )
    bridge.tick()
    for status in ("ANALYZING", "ANALYZE_COMPLETED"):
        bridge.set_status("a1", status, index_id=77 if status == "ANALYZE_COMPLETED" else None)
        bridge.tick(advance=10)
        drain(deliver)
    calls = [
        (c.target, c.body.get("thread_ts"), c.body.get("reply_broadcast")) for c in fake_slack.calls
    ]
    [message] = fake_slack.messages("general")
    ts = message["ts"]
    assert calls == [
        ("chat.postMessage", None, None),  # status_changed -> ANALYZING
        ("chat.update", None, None),  # status_changed -> ANALYZE_COMPLETED
        ("chat.update", None, None),  # analysis.completed
        ("chat.postMessage", ts, True),  # ...and its broadcast thread reply
    ]
    assert all(c.body["ts"] == ts for c in fake_slack.calls_to("chat.update"))
    assert all(c.status == 200 and c.answer["ok"] for c in fake_slack.calls)
    assert "completed" in message["text"].lower()
    assert "a1" in message["text"]
    [reply] = message["replies"]
    assert reply["broadcast"] is True
    header = message["blocks"][0]["text"]["text"]
    assert "Analysis completed" in header
    context = message["blocks"][-1]["elements"][0]["text"]
    assert f"https://bridge.example.test/watches/{watch['id']}" in context
    assert all(d["state"] == "succeeded" for d in bridge.watch(watch["id"])["deliveries"])


def test_events_sent_in_one_chain_edit_the_message_the_first_one_posted(
    bridge, fake_slack, deliver
):
    """Three events of one watch queued before a delivery tick go out as one chain; the later ones'
    target snapshots predate the first's post, and still edit its message (one message in all)."""
    bridge.set_status("a1", "WAIT_ANALYZE")
    bridge.register("a1", targets=SLACK, events=["analysis.status_changed", "analysis.completed"])
    bridge.tick()
    for status in ("ANALYZING", "ANALYZE_COMPLETED"):
        bridge.set_status("a1", status, index_id=77 if status == "ANALYZE_COMPLETED" else None)
        bridge.tick(advance=10)
    assert deliver().sent == 3
    [message] = fake_slack.messages("general")
    assert [(c.target, c.body.get("ts"), c.body.get("thread_ts")) for c in fake_slack.calls] == [
        ("chat.postMessage", None, None),
        ("chat.update", message["ts"], None),
        ("chat.update", message["ts"], None),
        ("chat.postMessage", None, message["ts"]),
    ]


def test_a_first_event_that_is_terminal_posts_and_replies(bridge, fake_slack, deliver):
    bridge.set_status("a1", "ANALYZE_FAIL", message="video parsing failure")
    bridge.register("a1", targets=SLACK)
    bridge.tick()
    deliver()
    assert [c.target for c in fake_slack.calls] == ["chat.postMessage", "chat.postMessage"]
    [message] = fake_slack.messages("general")
    assert "failed" in message["text"].lower()
    assert len(message["replies"]) == 1


def test_a_429_on_the_post_delivers_once_later(bridge, fake_slack, deliver):
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=1)
    watch = bridge.register("a1", targets=SLACK)
    bridge.tick()
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=30)
    deliver()
    [delivery] = bridge.watch(watch["id"])["deliveries"]
    assert (delivery["state"], delivery["attempt_count"]) == ("pending", 0)
    assert deliver(advance=20).claimed == 0
    deliver(advance=11)
    assert len(fake_slack.messages("general")) == 1
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [429, 200, 200]
    [delivery] = bridge.watch(watch["id"])["deliveries"]
    assert delivery["state"] == "succeeded"


def test_channel_not_found_disables_that_target_only(bridge, fake_slack, deliver):
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=1)
    watch = bridge.register("a1", targets=[*SLACK, {"type": "slack", "channel": "C0NOWHERE"}])
    bridge.tick()
    deliver()
    targets = bridge.watch(watch["id"])["targets"]
    assert [t["disabled"] for t in targets] == [False, True]
    assert "channel_not_found" in targets[1]["disabled_reason"]
    assert len(fake_slack.messages("general")) == 1
    assert bridge.client.get("/readyz").json["slack_auth"] == "ok"


def test_invalid_auth_holds_deliveries_and_marks_credentials_failing(bridge, fake_slack, deliver):
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=1)
    watch = bridge.register("a1", targets=SLACK)
    bridge.tick()
    fake_slack.valid_tokens.discard(TOKEN)
    deliver()
    [delivery] = bridge.watch(watch["id"])["deliveries"]
    assert (delivery["state"], delivery["attempt_count"]) == ("pending", 0)
    assert bridge.watch(watch["id"])["targets"][0]["disabled"] is False
    assert bridge.client.get("/readyz").json["slack_auth"] == "failing"
    fake_slack.valid_tokens.add(TOKEN)
    deliver(advance=61)
    assert bridge.watch(watch["id"])["deliveries"][0]["state"] == "succeeded"
    assert len(fake_slack.messages("general")) == 1
    assert bridge.client.get("/readyz").json["slack_auth"] == "ok"


def test_long_korean_reason_is_truncated_and_labels_are_literal(bridge, fake_slack, deliver):
    reason = "분석 결과 처리 실패: " + "가나다라마바사" * 720  # over 5,000 characters
    bridge.set_status("a1", "ANALYZE_FAIL", message=reason)
    bridge.register(
        "a1", targets=SLACK, labels={"ping": "<!channel>", "link": "<http://x|y>", "amp": "a&b"}
    )
    bridge.tick()
    deliver()
    [message] = fake_slack.messages("general")
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b]
    reason_block = next(t for t in texts if t.startswith("*Reason*"))
    assert len(reason_block) <= 3000
    assert reason_block.endswith("…")
    assert reason_block.startswith("*Reason*\n분석 결과 처리 실패")
    labels_block = next(t for t in texts if t.startswith("*Labels*"))
    assert "&lt;!channel&gt;" in labels_block
    assert "&lt;http://x|y&gt;" in labels_block
    assert "a&amp;b" in labels_block
    assert "<!channel>" not in str(message["blocks"])


def test_slack_webhook_gets_one_message_per_event_and_404_disables(bridge, fake_slack, deliver):
    fake_slack.webhook_answers["gone"] = (404, "no_service")
    bridge.set_status("a1", "WAIT_ANALYZE")
    watch = bridge.register("a1", targets=[
        {"type": "slack_webhook", "url": fake_slack.webhook_url("team")},
        {"type": "slack_webhook", "url": fake_slack.webhook_url("gone")},
    ], events=["analysis.status_changed", "analysis.completed"])  # fmt: skip
    bridge.tick()
    bridge.set_status("a1", "ANALYZING")
    bridge.tick(advance=10)
    drain(deliver)
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=3)
    bridge.tick(advance=10)
    drain(deliver)
    assert len(fake_slack.webhook_posts("team")) == 3  # two status changes + completed
    assert len(fake_slack.calls_to("gone")) == 1
    targets = bridge.watch(watch["id"])["targets"]
    assert [t["disabled"] for t in targets] == [False, True]
    assert targets[0]["url"].endswith("/****")


def test_test_endpoint_posts_a_separate_message(bridge, fake_slack):
    watch = bridge.register("a1", targets=SLACK)
    response = bridge.client.post(f"/api/v1/watches/{watch['id']}/test", headers=TOKEN_HEADER)
    assert response.json["results"][0]["ok"] is True
    [message] = fake_slack.messages("general")
    assert "Test notification" in message["blocks"][0]["text"]["text"]
