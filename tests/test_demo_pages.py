"""The demo's stand-ins and their dashboard pages: signatures checked, Slack mrkdwn rendered safely."""

import json
import time

import pytest

from app.demo.standins import SLACK_TOKEN, DemoConfig, install_standins
from app.demo.views import slack_mrkdwn
from app.notify.webhook import sign

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" + "bbbbbbbbbbbb"


@pytest.fixture
def demo_app(app_factory):
    app = app_factory()
    config = DemoConfig(SECRET, fail_first={"analysis.failed"})
    install_standins(app, config)
    return app, config


def signed_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    stamp = int(time.time())
    return {"webhook-id": "evt_1", "webhook-timestamp": str(stamp),
            "webhook-signature": sign(secret, "evt_1", stamp, body)}  # fmt: skip


def test_inbox_verifies_signatures_and_fails_chosen_first_deliveries(demo_app):
    app, config = demo_app
    client = app.test_client()
    body = json.dumps({"type": "analysis.completed", "data": {}}).encode()
    assert (
        client.post("/demo/inbox/main", data=body, headers=signed_headers(body)).status_code == 200
    )
    other = "whsec_" + "A" * 44
    assert (
        client.post("/demo/inbox/main", data=body, headers=signed_headers(body, other)).status_code
        == 401
    )
    failed = json.dumps({"type": "analysis.failed", "data": {}}).encode()
    assert (
        client.post("/demo/inbox/main", data=failed, headers=signed_headers(failed)).status_code
        == 503
    )
    assert (
        client.post("/demo/inbox/main", data=failed, headers=signed_headers(failed)).status_code
        == 200
    )
    assert [e.verified for e in config.state.inbox] == [True, False, True]


def test_slack_stand_in_answers_like_slack(demo_app):
    app, config = demo_app
    client = app.test_client()
    auth = {"Authorization": f"Bearer {SLACK_TOKEN}"}
    assert client.post("/demo/slack/api/chat.postMessage", json={"channel": "c", "text": "t"}).json == {
        "ok": False, "error": "invalid_auth"}  # fmt: skip
    posted = client.post(
        "/demo/slack/api/chat.postMessage", json={"channel": "c", "text": "t"}, headers=auth
    ).json
    assert posted["ok"] is True
    updated = client.post("/demo/slack/api/chat.update", headers=auth,
                          json={"channel": "c", "ts": posted["ts"], "text": "t2"}).json  # fmt: skip
    assert updated["ok"] is True
    unknown = {"channel": "c", "ts": "1.2", "text": "x"}
    answer = client.post("/demo/slack/api/chat.update", headers=auth, json=unknown).json
    assert answer["error"] == "message_not_found"
    reply = client.post("/demo/slack/api/chat.postMessage", headers=auth, json={
        "channel": "c", "text": "done", "thread_ts": posted["ts"], "reply_broadcast": True}).json  # fmt: skip
    assert reply["ok"] is True
    [message] = config.state.channels["c"]
    assert (message.text, message.edits, [r.broadcast for r in message.replies]) == (
        "t2",
        1,
        [True],
    )


def test_pages_need_sign_in_and_render_hostile_text_literally(demo_app, auth_headers):
    app, config = demo_app
    client = app.test_client()
    assert client.get("/demo/slack").status_code == 302
    config.state.post("c", "fallback", [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Labels*\n`x`: &lt;!channel&gt; <script>"}},
    ], None, False)  # fmt: skip
    with client.session_transaction() as session:
        from app.dashboard.auth import SESSION_KEY
        from app.web.auth import token_fingerprint

        session[SESSION_KEY] = token_fingerprint("test-api-token")
    page = client.get("/demo/slack").get_data(as_text=True)
    assert "&lt;!channel&gt;" in page
    assert "<script>" not in page
    assert "<strong>Labels</strong>" in page


def test_mrkdwn_links_bold_code_and_escaping():
    rendered = str(slack_mrkdwn("*Status*\n`ok` <https://x.test/w/1|Open> a&amp;b <b>"))
    assert '<a href="https://x.test/w/1">Open</a>' in rendered
    assert "<strong>Status</strong><br><code>ok</code>" in rendered
    assert "a&amp;b &lt;b&gt;" in rendered
