"""The demo's stand-ins and their dashboard pages: signatures checked, Slack mrkdwn rendered safely."""

import json
import re
import time
from urllib.parse import urlsplit

import pytest

from app.demo.samples import RETIRED_GENERATION, SAMPLES
from app.demo.standins import SLACK_TOKEN, DemoConfig, install_standins
from app.demo.views import slack_mrkdwn
from app.notify.webhook import sign
from app.upstream.generations import successor
from app.vocabulary import ApiGeneration
from tests.browser import LiveServer
from tests.dashboardtools import sign_in

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
    sign_in(client)
    page = client.get("/demo/slack").get_data(as_text=True)
    assert "&lt;!channel&gt;" in page
    assert "<script>" not in page
    assert "<strong>Labels</strong>" in page


def test_mrkdwn_links_bold_code_and_escaping():
    rendered = str(slack_mrkdwn("*Status*\n`ok` <https://x.test/w/1|Open> a&amp;b <b>"))
    assert '<a href="https://x.test/w/1">Open</a>' in rendered
    assert "<strong>Status</strong><br><code>ok</code>" in rendered
    assert "a&amp;b &lt;b&gt;" in rendered


# --- a watch of one's own, sent to the demo inbox (issue 20, item 5) -------------------------------


@pytest.fixture
def bridge_overrides():
    """The demo's own setting: the inbox is on 127.0.0.1."""
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true"}


@pytest.fixture
def served_demo(bridge):
    """The ``bridge`` fixture's app with the demo's stand-ins, served on 127.0.0.1."""
    config = DemoConfig(SECRET, fail_first=set())
    install_standins(bridge.app, config)
    server = LiveServer(bridge.app).start()
    yield server, config
    server.stop()


def inbox_instructions(client) -> tuple[str, str]:
    """The inbox URL (its path) and the secret the inbox page tells users to register with."""
    html = client.get("/demo/inbox").get_data(as_text=True)
    url = re.search(r'data-field="inbox-url">(.*?)</code>', html)
    secret = re.search(r'data-field="inbox-secret">([^<]+)<', html)
    assert url, html
    assert secret, html
    return urlsplit(url.group(1).replace("<wbr>", "")).path, secret.group(1)


def complete_and_deliver(bridge, deliver, asset_id: str, inbox_url: str, **target) -> dict:
    bridge.set_status(asset_id, "ANALYZING")
    watch = bridge.register(asset_id, targets=[{"type": "webhook", "url": inbox_url, **target}])
    bridge.tick()
    bridge.set_status(asset_id, "ANALYZE_COMPLETED", index_id=7)
    bridge.tick(advance=1.2)
    assert deliver().sent == 1
    (delivery,) = bridge.watch(watch["id"])["deliveries"]
    return delivery


def test_a_watch_registered_with_the_secret_the_inbox_page_shows_is_accepted(
    bridge, deliver, served_demo
):
    server, config = served_demo
    client = bridge.app.test_client()
    sign_in(client)
    path, secret = inbox_instructions(client)
    assert path.startswith("/demo/inbox/")
    assert secret == SECRET  # the one secret the inbox verifies with, as the page says
    delivery = complete_and_deliver(bridge, deliver, "mine-1", server.url + path, secret=secret)
    assert delivery["state"] == "succeeded"
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [200]
    (entry,) = config.state.inbox
    assert (entry.event_type, entry.verified) == ("analysis.completed", True)
    assert entry.payload["data"]["asset"]["asset_id"] == "mine-1"
    page = client.get("/demo/inbox").get_data(as_text=True)
    assert ">verified<" in page
    assert ">invalid<" not in page


def test_a_watch_with_a_generated_secret_is_verified_with_its_own(bridge, deliver, served_demo):
    server, config = served_demo
    client = bridge.app.test_client()
    sign_in(client)
    path, _secret = inbox_instructions(client)
    assert "Leave the secret empty" in client.get("/demo/inbox").get_data(as_text=True)
    delivery = complete_and_deliver(bridge, deliver, "mine-2", server.url + path)  # generated
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [200]
    (entry,) = config.state.inbox
    assert entry.verified is True


def test_a_delivery_signed_with_a_secret_its_watch_does_not_hold_is_refused(
    bridge, deliver, served_demo
):
    """The lookup trusts the watch id in the payload only to choose the secret: a forger naming a
    real watch still needs that watch's secret."""
    server, config = served_demo
    client = bridge.app.test_client()
    sign_in(client)
    path, _secret = inbox_instructions(client)
    delivery = complete_and_deliver(bridge, deliver, "mine-3", server.url + path)
    (stored,) = config.state.inbox
    body = json.dumps(stored.payload).encode()
    forged = client.post(path, data=body, headers=signed_headers(body, "whsec_" + "A" * 44))
    assert forged.status_code == 401
    assert delivery["state"] == "succeeded"
    assert [entry.verified for entry in config.state.inbox] == [True, False]


def test_the_legacy_samples_label_says_where_the_watch_lands():
    retired, _status = RETIRED_GENERATION
    (legacy,) = [sample for sample in SAMPLES if sample.api == retired]
    lands_on = successor(ApiGeneration(retired))
    assert lands_on is not None
    assert legacy.labels["note"].endswith(f"falls forward to {lands_on}")


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_the_demo_pages_fit_a_phone(browser, app_factory):
    from datetime import UTC, datetime

    from app.demo.state import ChatEntry, InboxEntry
    from tests.browser import EXPECT_TIMEOUT_MS, screenshot
    from tests.browser import sign_in as browser_sign_in
    from tests.dashboardtools import API_TOKEN

    app = app_factory()
    config = DemoConfig(SECRET, fail_first=set())
    install_standins(app, config)
    payload = {"type": "analysis.status_changed", "data": {
        "asset": {"asset_id": "clip-flaky-upstream"},
        "analysis": {"status": "ANALYZE_COMPLETED", "index_id": 4343}}}  # fmt: skip
    for verified in (True, False):
        config.state.record_webhook(InboxEntry(
            datetime.now(UTC), "evt_01JD3Q0000000000000000000" + str(int(verified)),
            "analysis.status_changed", verified, payload))  # fmt: skip
    config.state.record_chat(ChatEntry(datetime.now(UTC), "POST", {"x-demo-event": "analysis.completed"},
        {"text": "解析が完了しました: " + "x" * 120, "labels": {"note": "y" * 120}}, "verified"))  # fmt: skip
    config.state.post("demo-analyses", "fallback", [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Labels*\n`note`: " + "x" * 80}},
    ], None, False)  # fmt: skip
    server = LiveServer(app).start()
    context = browser.new_context(viewport={"width": 375, "height": 800}, reduced_motion="reduce")
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    try:
        page = context.new_page()
        browser_sign_in(page, server.url, API_TOKEN)
        for name in ("inbox", "slack", "chat"):
            page.goto(f"{server.url}/demo/{name}")
            page.locator("details").evaluate_all("all => all.forEach(d => d.open = true)")
            fits = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            assert page.evaluate(fits), f"/demo/{name} scrolls sideways at 375 px"
            screenshot(page, f"demo-{name}-375")
        page.goto(f"{server.url}/demo/inbox")
        assert page.locator('[data-field="inbox-secret"]').inner_text() == SECRET
        assert page.locator("link[rel=icon]").get_attribute("href") == "/static/favicon.svg"
    finally:
        context.close()
        server.stop()


def test_a_watch_sent_through_an_endpoint_is_verified_with_the_endpoint_secret(
    bridge, deliver, served_demo
):
    from tests.fixtures import AUTH

    server, config = served_demo
    client = bridge.app.test_client()
    sign_in(client)
    path, _secret = inbox_instructions(client)
    created = client.post("/api/v1/endpoints", headers=AUTH,
                          json={"name": "inbox", "type": "webhook", "url": server.url + path})  # fmt: skip
    assert created.status_code == 201
    bridge.set_status("mine-4", "ANALYZING")
    watch = bridge.register("mine-4", targets=[{"endpoint": "inbox"}])
    bridge.tick()
    bridge.set_status("mine-4", "ANALYZE_COMPLETED", index_id=7)
    bridge.tick(advance=1.2)
    assert deliver().sent == 1
    (delivery,) = bridge.watch(watch["id"])["deliveries"]
    assert [attempt["status_code"] for attempt in delivery["attempts"]] == [200]
    (entry,) = config.state.inbox
    assert entry.verified is True


# --- the chat inbox: an http target's requests (issue 22) -----------------------------------------


def test_chat_inbox_keeps_json_and_tells_verified_unsigned_and_invalid(demo_app):
    app, config = demo_app
    client = app.test_client()
    body = json.dumps({"text": "解析が完了しました", "asset": "a-1"}, ensure_ascii=False).encode()
    assert (
        client.post("/demo/chat/team", data=body, headers=signed_headers(body)).status_code == 200
    )
    assert client.put("/demo/chat/team", data=body).status_code == 200
    forged = signed_headers(body, "whsec_" + "A" * 44)
    assert client.post("/demo/chat/team", data=body, headers=forged).status_code == 401
    assert client.post("/demo/chat/team", data=b"{not json").status_code == 400
    entries = config.state.chat
    assert [(e.method, e.signature) for e in entries] == [
        ("POST", "verified"), ("PUT", "unsigned"), ("POST", "invalid")]  # fmt: skip
    assert entries[0].body["text"] == "解析が完了しました"
    assert entries[0].headers["webhook-id"] == "evt_1"


def test_chat_page_shows_the_text_and_the_body_literally(demo_app):
    app, _config = demo_app
    client = app.test_client()
    hostile = {"text": "<script>alert(1)</script> 完了", "labels": {"x": "<!channel>"}}
    body = json.dumps(hostile, ensure_ascii=False).encode()
    assert (
        client.post("/demo/chat/team", data=body, headers=signed_headers(body)).status_code == 200
    )
    assert client.get("/demo/chat").status_code == 302  # sign-in first
    sign_in(client)
    page = client.get("/demo/chat").get_data(as_text=True)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 完了" in page  # Japanese as is, markup inert
    assert "&lt;!channel&gt;" in page
    assert "signature verified" in page


def test_the_demos_http_target_renders_valid_json_in_japanese(bridge, deliver, served_demo):
    """The sample watches' chat target, registered as the demo does, delivered by the real worker
    to the chat inbox: signed with the demo's secret, its text in Japanese, its header templated."""
    from app.demo.command import demo_targets

    server, config = served_demo
    chat = demo_targets(server.url, SECRET)["chat"]
    bridge.set_status("mine-5", "ANALYZING")
    bridge.register("mine-5", targets=[chat], labels={"cms_id": "news-0425"})
    bridge.tick()
    bridge.set_status("mine-5", "ANALYZE_COMPLETED", index_id=7)
    bridge.tick(advance=1.2)
    assert deliver().sent == 1
    (entry,) = config.state.chat
    assert entry.signature == "verified"
    assert entry.headers["x-demo-event"] == "analysis.completed"
    assert entry.body["asset"] == "mine-5"
    assert entry.body["labels"] == {"cms_id": "news-0425"}
    assert "完了" in entry.body["text"], entry.body
