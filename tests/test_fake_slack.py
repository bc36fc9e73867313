"""The fake Slack of ``tests/fake_slack.py``, driven over HTTP by slack-sdk's own clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from tests.fake_slack import TOKEN, FakeSlack

CHANNELS = {
    "general": "C0GENERAL",
    "old": "C0OLD",
    "private": "C0PRIVATE",
}


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A started fake Slack on 127.0.0.1 (token ``TOKEN``, #general = C0GENERAL); stopped after."""
    fake = FakeSlack(channels=CHANNELS, archived=("old",), not_member=("C0PRIVATE",)).start()
    yield fake
    fake.stop()


@pytest.fixture
def web(fake_slack: FakeSlack) -> WebClient:
    """slack-sdk's WebClient on the fake, with no retries of its own."""
    return web_client(fake_slack, TOKEN)


def web_client(fake: FakeSlack, token: str | None) -> WebClient:
    return WebClient(token=token, base_url=fake.api_url, timeout=5, retry_handlers=[])


def webhook(fake: FakeSlack, name: str) -> WebhookClient:
    return WebhookClient(fake.webhook_url(name), timeout=5, retry_handlers=[])


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def api_error(call, **kwargs: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        call(**kwargs)
    return caught.value


# --- chat.postMessage and chat.update --------------------------------------------------------------


def test_a_post_then_an_update_of_the_same_ts(fake_slack: FakeSlack, web: WebClient) -> None:
    posted = web.chat_postMessage(channel="#general", text="first", blocks=[section("first")])
    assert posted["ok"] is True
    assert posted["channel"] == "C0GENERAL"
    assert posted["message"]["text"] == "first"
    ts = posted["ts"]

    updated = web.chat_update(channel="C0GENERAL", ts=ts, text="second", blocks=[section("2nd")])
    assert (updated["ts"], updated["text"]) == (ts, "second")
    assert updated["message"]["edited"]["ts"] == ts

    [message] = fake_slack.messages("general")
    assert message == {
        "ts": ts, "text": "second", "blocks": [section("2nd")], "edits": 1, "replies": [],
    }  # fmt: skip
    [post], [update] = fake_slack.calls_to("chat.postMessage"), fake_slack.calls_to("chat.update")
    assert post.kind == "api"
    assert post.body == {"channel": "#general", "text": "first", "blocks": [section("first")]}
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert (update.status, update.answer["ok"]) == (200, True)


def test_timestamps_are_unique_and_slack_shaped(web: WebClient) -> None:
    stamps = {web.chat_postMessage(channel="general", text=f"m{i}")["ts"] for i in range(5)}
    assert len(stamps) == 5
    for ts in stamps:
        seconds, micros = ts.split(".")
        assert seconds.isdigit()
        assert len(micros) == 6
        assert micros.isdigit()


def test_an_update_keeps_the_blocks_it_is_not_given(fake_slack: FakeSlack, web: WebClient) -> None:
    ts = web.chat_postMessage(channel="general", text="a", blocks=[section("a")])["ts"]
    web.chat_update(channel="general", ts=ts, text="b")
    assert fake_slack.messages("general")[0]["blocks"] == [section("a")]


def test_a_threaded_reply_broadcast_to_the_channel(fake_slack: FakeSlack, web: WebClient) -> None:
    parent = web.chat_postMessage(channel="general", text="watching")["ts"]
    quiet = web.chat_postMessage(channel="general", text="note", thread_ts=parent)
    loud = web.chat_postMessage(
        channel="general", text="done", thread_ts=parent, reply_broadcast=True
    )
    assert loud["message"]["thread_ts"] == parent
    assert loud["message"]["subtype"] == "thread_broadcast"
    # A reply to a reply joins the parent's thread, as in Slack.
    web.chat_postMessage(channel="general", text="again", thread_ts=quiet["ts"])

    [message] = fake_slack.messages("C0GENERAL")
    replies = [(r["text"], r["broadcast"]) for r in message["replies"]]
    assert replies == [("note", False), ("done", True), ("again", False)]
    assert message["replies"][1]["ts"] == loud["ts"]


def test_a_thread_must_exist_in_that_channel(fake_slack: FakeSlack, web: WebClient) -> None:
    fake_slack.channels["random"] = "C0RANDOM"
    elsewhere = web.chat_postMessage(channel="random", text="x")["ts"]
    for thread_ts in ("1600000000.000100", elsewhere):
        error = api_error(web.chat_postMessage, channel="general", text="r", thread_ts=thread_ts)
        assert error.response["error"] == "thread_not_found"
    assert fake_slack.messages("general") == []


def test_an_update_of_an_unknown_ts_is_rejected(fake_slack: FakeSlack, web: WebClient) -> None:
    ts = web.chat_postMessage(channel="general", text="x")["ts"]
    fake_slack.channels["random"] = "C0RANDOM"
    for channel, unknown in (("general", "1600000000.000100"), ("random", ts)):
        error = api_error(web.chat_update, channel=channel, ts=unknown, text="y")
        assert error.response.status_code == 200
        assert error.response["error"] == "message_not_found"
    assert fake_slack.messages("general")[0]["text"] == "x"


@pytest.mark.parametrize(
    ("channel", "error"),
    [
        ("nowhere", "channel_not_found"),
        ("C0NOWHERE", "channel_not_found"),
        ("old", "is_archived"),
        ("C0OLD", "is_archived"),
        ("#private", "not_in_channel"),
    ],
)
def test_channel_errors(fake_slack: FakeSlack, web: WebClient, channel: str, error: str) -> None:
    caught = api_error(web.chat_postMessage, channel=channel, text="x")
    assert caught.response.status_code == 200
    assert caught.response.data == {"ok": False, "error": error}
    assert fake_slack.calls_to("chat.postMessage")[0].answer["error"] == error


def test_a_message_needs_text_or_blocks_and_not_too_much(fake_slack: FakeSlack) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = fake_slack.api_url + "chat.postMessage"
    for body in ({"channel": "general"}, {"channel": "general", "text": " ", "blocks": []}):
        answer = requests.post(url, json=body, headers=headers, timeout=5).json()
        assert answer == {"ok": False, "error": "no_text"}
    web = web_client(fake_slack, TOKEN)
    long = api_error(web.chat_postMessage, channel="general", text="x" * 40001)
    assert long.response["error"] == "msg_too_long"
    assert web.chat_postMessage(channel="general", text="x" * 40000)["ok"]


def test_require_text_also_wants_a_fallback_with_blocks(fake_slack: FakeSlack) -> None:
    body = {"channel": "general", "blocks": [section("only blocks")]}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = fake_slack.api_url + "chat.postMessage"
    assert requests.post(url, json=body, headers=headers, timeout=5).json()["ok"] is True
    fake_slack.require_text = True
    answer = requests.post(url, json=body, headers=headers, timeout=5).json()
    assert answer == {"ok": False, "error": "no_text"}


# --- authentication --------------------------------------------------------------------------------


def test_auth_errors(fake_slack: FakeSlack) -> None:
    wrong = api_error(
        web_client(fake_slack, "xoxb-wrong").chat_postMessage, channel="general", text="x"
    )
    assert wrong.response["error"] == "invalid_auth"
    missing = api_error(web_client(fake_slack, None).chat_postMessage, channel="general", text="x")
    assert missing.response["error"] == "not_authed"
    assert fake_slack.messages("general") == []


def test_a_token_is_revoked_and_restored(fake_slack: FakeSlack, web: WebClient) -> None:
    assert web.auth_test()["team_id"] == "T000"
    fake_slack.revoke(TOKEN)
    assert api_error(web.auth_test).response["error"] == "token_revoked"
    fake_slack.restore(TOKEN)
    assert web.auth_test()["ok"] is True
    fake_slack.valid_tokens.discard(TOKEN)
    assert api_error(web.auth_test).response["error"] == "invalid_auth"


def test_form_encoded_calls(fake_slack: FakeSlack) -> None:
    # slack-sdk sends auth.test form-encoded (token in the Authorization header) ...
    assert web_client(fake_slack, TOKEN).api_call("auth.test")["user_id"]
    assert fake_slack.calls_to("auth.test")[0].body == {}
    # ... and other clients may put the token in a form field.
    url = fake_slack.api_url + "chat.postMessage"
    form = {"token": TOKEN, "channel": "general", "text": "form"}
    form["blocks"] = json.dumps([section("form")])
    posted = requests.post(url, data=form, timeout=5).json()
    reply_form = {**form, "thread_ts": posted["ts"], "reply_broadcast": "true"}
    reply = requests.post(url, data=reply_form, timeout=5).json()
    assert reply["message"]["subtype"] == "thread_broadcast"
    [message] = fake_slack.messages("general")
    assert message["blocks"] == [section("form")]
    assert message["replies"][0]["broadcast"] is True
    assert fake_slack.calls_to("chat.postMessage")[0].body == form
    wrong = requests.post(url, data={**form, "token": "xoxb-wrong"}, timeout=5).json()
    assert wrong == {"ok": False, "error": "invalid_auth"}


def test_an_unknown_method(web: WebClient) -> None:
    error = api_error(web.api_call, api_method="chat.delete", json={"channel": "general"})
    assert (error.response.status_code, error.response["error"]) == (404, "unknown_method")


# --- Block Kit limits ------------------------------------------------------------------------------

FIELD = {"type": "mrkdwn", "text": "f"}


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ([section("x")] * 51, "no more than 50 items allowed [json-pointer:/blocks]"),
        (
            [section("x"), section("y" * 3001)],
            "must be less than 3001 characters [json-pointer:/blocks/1/text/text]",
        ),
        (
            [{"type": "section", "fields": [FIELD] * 11}],
            "no more than 10 items allowed [json-pointer:/blocks/0/fields]",
        ),
        (
            [{"type": "section", "fields": [FIELD, {"type": "mrkdwn", "text": "z" * 2001}]}],
            "must be less than 2001 characters [json-pointer:/blocks/0/fields/1/text]",
        ),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            "must be less than 151 characters [json-pointer:/blocks/0/text/text]",
        ),
        (
            [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
            "must be one of plain_text [json-pointer:/blocks/0/text/type]",
        ),
        (
            [{"type": "context", "elements": [FIELD] * 11}],
            "no more than 10 items allowed [json-pointer:/blocks/0/elements]",
        ),
        ([section("")], "must be more than 0 characters [json-pointer:/blocks/0/text/text]"),
        ([{"type": "sektion"}], "unsupported type: sektion [json-pointer:/blocks/0/type]"),
    ],
)
def test_block_limits(
    fake_slack: FakeSlack, web: WebClient, blocks: list[dict[str, Any]], expected: str
) -> None:
    error = api_error(web.chat_postMessage, channel="general", text="t", blocks=blocks)
    assert error.response["error"] == "invalid_blocks"
    assert error.response["errors"] == [expected]
    assert error.response["response_metadata"]["messages"] == [f"[ERROR] {expected}"]
    assert fake_slack.messages("general") == []


def test_blocks_at_the_limits_are_accepted(fake_slack: FakeSlack, web: WebClient) -> None:
    at_limits = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        section("s" * 3000),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10},
        {"type": "context", "elements": [FIELD] * 10},
        {"type": "divider"},
    ]
    blocks = at_limits + [section("x")] * (50 - len(at_limits))
    ts = web.chat_postMessage(channel="general", text="t", blocks=blocks)["ts"]
    error = api_error(web.chat_update, channel="general", ts=ts, text="t", blocks=[*blocks, {}])
    assert error.response["errors"] == [
        "no more than 50 items allowed [json-pointer:/blocks]",
        "missing required field: type [json-pointer:/blocks/50]",
    ]
    assert fake_slack.messages("general")[0]["edits"] == 0


# --- scripted faults -------------------------------------------------------------------------------


def test_a_rate_limit_with_retry_after(fake_slack: FakeSlack, web: WebClient) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=3, count=2)
    for _ in range(2):
        error = api_error(web.chat_postMessage, channel="general", text="x")
        assert error.response.status_code == 429
        assert error.response.headers["Retry-After"] == "3"
        assert error.response["error"] == "ratelimited"
    assert fake_slack.messages("general") == []
    assert web.chat_postMessage(channel="general", text="x")["ok"] is True
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [429, 429, 200]
    assert fake_slack.calls_to("chat.postMessage")[0].answer_headers == {"Retry-After": "3"}


def test_scripted_errors_and_server_errors(fake_slack: FakeSlack, web: WebClient) -> None:
    ts = web.chat_postMessage(channel="general", text="x")["ts"]
    fake_slack.fail_next("chat.update", error="invalid_auth")
    fake_slack.fail_next("chat.update", status=500)
    fake_slack.fail_next("chat.update", status=503, error="service_unavailable", retry_after=7)
    auth = api_error(web.chat_update, channel="general", ts=ts, text="y")
    assert (auth.response.status_code, auth.response["error"]) == (200, "invalid_auth")
    server = api_error(web.chat_update, channel="general", ts=ts, text="y")
    assert (server.response.status_code, server.response["error"]) == (500, "internal_error")
    busy = api_error(web.chat_update, channel="general", ts=ts, text="y")
    assert (busy.response.status_code, busy.response.headers["Retry-After"]) == (503, "7")
    assert web.chat_update(channel="general", ts=ts, text="y")["ok"] is True
    assert fake_slack.messages("general")[0]["edits"] == 1


def test_a_fault_needs_an_error_or_an_error_status(fake_slack: FakeSlack) -> None:
    with pytest.raises(ValueError, match="error"):
        fake_slack.fail_next("chat.postMessage")


def test_reset_forgets_calls_messages_and_faults(fake_slack: FakeSlack, web: WebClient) -> None:
    web.chat_postMessage(channel="general", text="x")
    fake_slack.fail_next("chat.postMessage", error="fatal_error")
    fake_slack.reset()
    assert (fake_slack.calls, fake_slack.messages("general")) == ([], [])
    assert web.chat_postMessage(channel="general", text="x")["ok"] is True


# --- incoming webhooks -----------------------------------------------------------------------------


def test_a_webhook_answers_ok_and_records_the_post(fake_slack: FakeSlack) -> None:
    response = webhook(fake_slack, "alerts").send(text="hi", blocks=[section("hi")])
    assert (response.status_code, response.body) == (200, "ok")
    assert fake_slack.webhook_posts("alerts") == [{"text": "hi", "blocks": [section("hi")]}]
    [call] = fake_slack.calls_to("alerts")
    assert (call.kind, call.answer) == ("webhook", "ok")
    assert fake_slack.webhook_url("alerts").endswith("/services/T000/B000/alerts")


@pytest.mark.parametrize(
    "answer", [(404, "no_service"), (403, "invalid_token"), (410, "channel_is_archived")]
)
def test_configured_webhook_answers(fake_slack: FakeSlack, answer: tuple[int, str]) -> None:
    fake_slack.webhook_answers["gone"] = answer
    response = webhook(fake_slack, "gone").send(text="hi")
    assert (response.status_code, response.body) == answer
    assert fake_slack.webhook_posts("gone") == []
    assert webhook(fake_slack, "other").send(text="hi").body == "ok"


def test_webhook_rate_limits_and_one_off_faults(fake_slack: FakeSlack) -> None:
    client = webhook(fake_slack, "busy")
    fake_slack.webhook_answers["busy"] = (429, "rate_limited", 30)
    limited = client.send(text="hi")
    assert (limited.status_code, limited.body, limited.headers["Retry-After"]) == (
        429, "rate_limited", "30",
    )  # fmt: skip
    del fake_slack.webhook_answers["busy"]
    fake_slack.fail_next("busy", status=500, error="internal error")
    assert (client.send(text="hi").status_code, client.send(text="hi").status_code) == (500, 200)


def test_webhook_payload_errors(fake_slack: FakeSlack) -> None:
    client = webhook(fake_slack, "hook")
    assert (client.send(text="").status_code, client.send(text="").body) == (400, "no_text")
    bad = client.send(text="t", blocks=[section("x")] * 51)
    assert (bad.status_code, bad.body) == (400, "invalid_blocks")
    raw = requests.post(fake_slack.webhook_url("hook"), data=b"{not json", timeout=5)
    assert (raw.status_code, raw.text) == (400, "invalid_payload")
    assert [c.body for c in fake_slack.calls_to("hook")][-1] is None


# --- serving ---------------------------------------------------------------------------------------


def test_concurrent_posts_each_get_their_own_ts(fake_slack: FakeSlack) -> None:
    def post(i: int) -> str:
        return web_client(fake_slack, TOKEN).chat_postMessage(channel="general", text=f"{i}")["ts"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        stamps = list(pool.map(post, range(24)))
    assert len(set(stamps)) == 24
    assert sorted(m["text"] for m in fake_slack.messages("general")) == sorted(map(str, range(24)))


def test_a_context_manager_and_a_stop_without_start() -> None:
    FakeSlack().stop()
    with FakeSlack() as fake:
        assert fake.api_url.startswith("http://127.0.0.1:")
        assert fake.api_url.endswith("/api/")
        assert web_client(fake, TOKEN).auth_test()["ok"] is True
        assert requests.post(fake.url + "/elsewhere", timeout=5).status_code == 404
