"""Slack message templates and languages through the outbox, against the fake Slack (Web API via
slack-sdk's base_url, incoming webhooks by URL): registration, endpoints, sending and preview."""

import pytest

from tests.fake_slack import TOKEN
from tests.fixtures import AUTH
from tests.test_delivery_webhooks import delivery_of

HOSTILE = "<!channel> & <http://x|y>"
INERT = "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
TEMPLATE = "*{{ labels.title }}* {{ message }}"


@pytest.fixture
def bridge_overrides(fake_slack):
    return {
        "SLACK_API_URL": fake_slack.api_url,
        "SLACK_BOT_TOKEN": TOKEN,
        "BRIDGE_ALLOW_PRIVATE_URLS": "true",
        "BRIDGE_RETRY_SCHEDULE": "1,2",
        "BRIDGE_LANGUAGE": "ja",
    }


def complete(bridge, target, asset_id="a1"):
    """Register ``target`` for ``asset_id`` with a hostile label and let the analysis complete."""
    bridge.set_status(asset_id, "ANALYZING")
    watch = bridge.register(asset_id, targets=[target], labels={"title": HOSTILE})
    bridge.tick()
    bridge.set_status(asset_id, "ANALYZE_COMPLETED", index_id=9)
    bridge.tick(advance=1.2)
    return watch


def shown(message):
    return str({"text": message["text"], "blocks": message["blocks"]})


def test_a_template_in_korean_replaces_the_text_and_labels_stay_inert(bridge, fake_slack, deliver):
    target = {"type": "slack", "channel": "general", "template": TEMPLATE, "language": "ko"}
    watch = complete(bridge, target)
    assert watch["targets"][0]["template"] == TEMPLATE
    assert watch["targets"][0]["language"] == "ko"
    deliver()
    [message] = fake_slack.messages("general")
    assert message["text"] == f"*{INERT}* 분석 완료: 에셋 a1 (ws/1)"
    [section] = [b for b in message["blocks"] if b["type"] == "section" and "fields" in b]
    assert section["text"]["text"] == message["text"]
    assert "분석 완료 (ANALYZE_COMPLETED)" in str(section["fields"])
    assert message["blocks"][0]["text"]["text"] == "✅ 분석 완료"
    assert "<!channel>" not in shown(message)
    assert "<http://x|y>" not in shown(message)
    assert INERT in str(message["blocks"][2:])  # the labels block, escaped too


def test_the_default_text_follows_bridge_language_and_labels_stay_inert(
    bridge, fake_slack, deliver
):
    complete(bridge, {"type": "slack_webhook", "url": fake_slack.webhook_url("team")})
    deliver()
    [post] = fake_slack.webhook_posts("team")
    assert post["text"] == "解析完了: アセット a1 (ws/1)"
    assert "解析完了 (ANALYZE_COMPLETED)" in str(post["blocks"])
    assert INERT in str(post["blocks"])
    assert "<!channel>" not in str(post)
    assert "<http://x|y>" not in str(post)


def test_a_template_failing_at_send_time_sends_the_default_text_and_says_so(
    bridge, fake_slack, deliver
):
    target = {
        "type": "slack_webhook", "url": fake_slack.webhook_url("team"),
        "template": "{{ labels.title }} {{ 1 / (labels | length - 1) }}", "language": "en",
    }  # fmt: skip
    watch = complete(bridge, target)
    deliver()
    [post] = fake_slack.webhook_posts("team")
    assert post["text"] == "Analysis completed: asset a1 (ws/1)"
    delivery = delivery_of(bridge, watch["id"])
    assert delivery["state"] == "succeeded"
    [attempt] = delivery["attempts"]
    assert attempt["outcome"] == "succeeded"
    assert attempt["error"].startswith("template failed, default text sent: ZeroDivisionError")


@pytest.mark.parametrize(
    ("target", "pointer"),
    [
        ({"type": "slack", "channel": "general", "template": "{{ oops"}, "#/targets/0/template"),
        ({"type": "slack_webhook", "url": "http://127.0.0.1:9/x", "template": "x" * 4097},
         "#/targets/0/template"),
        ({"type": "slack", "channel": "general", "template": 3}, "#/targets/0/template"),
        ({"type": "slack", "channel": "general", "language": "fr"}, "#/targets/0/language"),
        ({"type": "webhook", "url": "http://127.0.0.1:9/x", "template": "x"},
         "#/targets/0/template"),
    ],
)  # fmt: skip
def test_invalid_templates_and_languages_are_refused_with_pointers(bridge, target, pointer):
    body = {"workspace": "ws", "project_id": "1", "asset_id": "a1", "targets": [target]}
    answer = bridge.client.post("/api/v1/watches", json=body, headers=AUTH)
    assert answer.status_code == 422
    [error] = answer.json["errors"]
    assert error["pointer"] == pointer
    assert "Value error" not in error["detail"]
    assert "pattern" not in error["detail"]
    if target.get("template") == "{{ oops":
        assert error["detail"].startswith("template syntax error on line 1")


def test_preview_honours_language_and_template_and_sends_nothing(bridge, fake_slack):
    url = fake_slack.webhook_url("team")
    target = {"type": "slack_webhook", "url": url, "language": "ko", "template": TEMPLATE}
    answer = bridge.client.post(
        "/api/v1/preview", json={"target": target, "event_type": "analysis.failed"}, headers=AUTH
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["text"].endswith("분석 실패: 에셋 5678 (my-workspace/1234)")
    assert answer.json["text"].startswith("*Launch")
    assert "&lt;!channel&gt;" in answer.json["text"]
    assert answer.json["blocks"][0]["text"]["text"] == "❌ 분석 실패"
    default = bridge.client.post(
        "/api/v1/preview", json={"target": {"type": "slack", "channel": "general"}}, headers=AUTH
    )
    assert default.json["text"] == "解析完了: アセット 5678 (my-workspace/1234)"  # BRIDGE_LANGUAGE
    broken = {**target, "template": "{{ 1 / 0 }}"}
    refused = bridge.client.post("/api/v1/preview", json={"target": broken}, headers=AUTH)
    assert refused.status_code == 422
    assert refused.json["errors"][0]["pointer"] == "#/target/template"
    assert "ZeroDivisionError" in refused.json["errors"][0]["detail"]
    http = {"type": "http", "url": url, "language": "ko", "body": '{"m": "{{ message }}"}'}
    answer = bridge.client.post("/api/v1/preview", json={"target": http}, headers=AUTH)
    assert answer.json["body"] == '{"m": "분석 완료: 에셋 5678 (my-workspace/1234)"}'
    assert fake_slack.calls == []


def test_endpoints_carry_template_and_language_to_their_deliveries(bridge, fake_slack, deliver):
    spec = {"name": "team", "type": "slack_webhook", "url": fake_slack.webhook_url("team"),
            "language": "ko"}  # fmt: skip
    created = bridge.client.post("/api/v1/endpoints", json=spec, headers=AUTH)
    assert created.status_code == 201, created.json
    assert created.json["language"] == "ko"
    assert "template" not in created.json
    changed = bridge.client.patch(
        "/api/v1/endpoints/team", json={"template": TEMPLATE}, headers=AUTH
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["template"] == TEMPLATE
    bad = bridge.client.patch("/api/v1/endpoints/team", json={"template": "{%"}, headers=AUTH)
    assert (bad.status_code, bad.json["errors"][0]["pointer"]) == (422, "#/template")
    complete(bridge, {"endpoint": "team"})
    deliver()
    [post] = fake_slack.webhook_posts("team")
    assert post["text"] == f"*{INERT}* 분석 완료: 에셋 a1 (ws/1)"
    hook = {"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/x"}
    assert bridge.client.post("/api/v1/endpoints", json=hook, headers=AUTH).status_code == 201
    for field, value in (("template", "x"), ("language", "ko")):
        answer = bridge.client.patch("/api/v1/endpoints/hook", json={field: value}, headers=AUTH)
        assert (answer.status_code, answer.json["errors"][0]["pointer"]) == (422, f"#/{field}")
