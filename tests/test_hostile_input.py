"""Hostile input: oversized, deep, mis-encoded and mistyped bodies, injection attempts in labels,
requests without credentials, the constant-time token comparison, and secrets kept out of answers."""

from __future__ import annotations

import hmac
import json
import sys

import pytest

from app.web import auth as api_auth
from tests.dashboardtools import seed_watch, sign_in
from tests.fake_slack import TOKEN as SLACK_TOKEN
from tests.fixtures import AUTH, TEST_SECRET_KEY, Bridge, simulator_config

LIMIT = 64 * 1024
PROBLEM = "application/problem+json"
WATCH = {
    "workspace": "ws",
    "project_id": "1",
    "asset_id": "a1",
    "targets": [{"type": "webhook", "url": "https://hooks.example.test/in"}],
}
HOSTILE_LABELS = {
    "jinja": "{{7*7}}",
    "jinja_marker": "{{ 'evalu' ~ 'ated-label' }}",  # renders a word no page has if evaluated
    "statement": "{% print 1 %}",
    "html": "<script>alert(1)</script>",
    "mrkdwn": "<!channel> & <https://evil.example|click>",
}


def post_raw(client, data: bytes, content_type: str = "application/json"):
    return client.post("/api/v1/watches", data=data, headers={**AUTH, "Content-Type": content_type})


def padded(document: dict, size: int) -> bytes:
    """``document`` as JSON, padded with trailing whitespace to exactly ``size`` bytes."""
    raw = json.dumps(document).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


# --- bodies ---------------------------------------------------------------------------------------


def test_a_body_over_64_kib_is_413_problem_json(client):
    response = post_raw(client, padded(WATCH, LIMIT + 1))
    assert response.status_code == 413
    assert response.mimetype == PROBLEM
    assert response.json["status"] == 413


def test_a_valid_body_of_exactly_64_kib_is_accepted(client):
    response = post_raw(client, padded(WATCH, LIMIT))
    assert response.status_code == 201, response.json


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_json_nested_as_deep_as_the_body_limit_allows_is_400(client, opener):
    """100000 levels cannot pass the 64 KiB limit (413, above); the deepest that fit are 400."""
    closer = "]" if opener == "[" else "}"
    levels = (LIMIT - 1) // (len(opener) + 1)
    response = post_raw(client, (opener * levels + "1" + closer * levels).encode())
    assert response.status_code == 400
    assert response.mimetype == PROBLEM


def test_a_deeply_nested_label_value_is_an_ordinary_422(client):
    body = {**WATCH, "labels": {"deep": json.loads("[" * 500 + "]" * 500)}}
    response = client.post("/api/v1/watches", json=body, headers=AUTH)
    assert response.status_code == 422


@pytest.mark.parametrize(
    "raw",
    [b'{"workspace": "\xff\xfe"}', b'{"workspace": "ws\xc3"}', b"\xed\xa0\x80", b"\x80"],
)
def test_invalid_utf8_is_400(client, raw):
    response = post_raw(client, raw)
    assert response.status_code == 400
    assert response.mimetype == PROBLEM


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "",
    ],
)
def test_bodies_that_are_not_json_are_415(client, content_type):
    response = post_raw(client, json.dumps(WATCH).encode(), content_type)
    assert response.status_code == 415
    assert response.mimetype == PROBLEM


def test_a_charset_parameter_does_not_change_how_the_body_is_read(client):
    """The body is always UTF-8 (RFC 8259): a latin-1 label is a malformed body, not mojibake."""
    ascii_body = json.dumps(WATCH).encode()
    assert post_raw(client, ascii_body, "application/json; charset=latin-1").status_code == 201
    latin = json.dumps({**WATCH, "labels": {"k": "é"}}, ensure_ascii=False).encode("latin-1")
    response = post_raw(client, latin, "application/json; charset=latin-1")
    assert response.status_code == 400
    assert response.mimetype == PROBLEM


# --- header injection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels",
    [
        {"k": "v\r\nX-Injected: 1"},
        {"k": "v\nX-Injected: 1"},
        {"k\r\nX-Injected": "1"},
        {"k": "v\x00"},
    ],
)
def test_control_characters_in_labels_are_422(client, labels):
    response = client.post("/api/v1/watches", json={**WATCH, "labels": labels}, headers=AUTH)
    assert response.status_code == 422
    assert response.json["errors"][0]["pointer"].startswith("#/labels")


@pytest.fixture
def bridge_overrides():
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true", "BRIDGE_RETRY_SCHEDULE": "1"}


def test_a_crlf_label_stored_anyway_never_becomes_a_header_of_a_webhook(bridge, receiver, deliver):
    """Even a label that bypassed validation (written to the database) stays inside the body."""
    from app.db import db
    from app.models import Watch

    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=1)
    watch = bridge.register("a1", targets=[{"type": "webhook", "url": receiver.url + "/hook"}])
    with bridge.db():
        row = db.session.get(Watch, watch["id"])
        row.labels = {"k": "v\r\nX-Injected: 1", "k2\r\nX-Injected-Key": "2"}
        db.session.commit()
    bridge.tick()
    deliver()
    [received] = receiver.requests
    assert not any(name.startswith("x-injected") for name in received.headers)
    labels = json.loads(received.body)["data"]["watch"]["labels"]
    assert labels == {"k": "v\r\nX-Injected: 1", "k2\r\nX-Injected-Key": "2"}


# --- template and markup injection ----------------------------------------------------------------


def test_hostile_labels_are_shown_escaped_on_the_dashboard(app):
    watch_id = seed_watch(app, "a1", labels=HOSTILE_LABELS)
    client = app.test_client()
    sign_in(client)
    for page in (f"/watches/{watch_id}", "/", f"/watches/{watch_id}/live", "/live/watches"):
        html = client.get(page).get_data(as_text=True)
        assert "<script>alert(1)" not in html, page
        assert "<!channel>" not in html, page
        # Not evaluated: ("49" alone could be a clock time on the page, so a marker word is used)
        assert "evaluated-label" not in html, page
    html = client.get(f"/watches/{watch_id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{7*7}}" in html
    assert "{% print 1 %}" in html
    assert "{{ &#39;evalu&#39; ~ &#39;ated-label&#39; }}" in html


def test_hostile_labels_reach_slack_as_literal_escaped_text(
    app_factory, fake_slack, clock, simulator, sim_control
):
    from app.worker.delivery import deliver_once

    app = app_factory(
        clock=clock,
        **simulator_config(simulator.url),
        SLACK_API_URL=fake_slack.api_url,
        SLACK_BOT_TOKEN=SLACK_TOKEN,
    )
    bridge = Bridge(app, clock, simulator, sim_control)
    try:
        bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=1)
        bridge.register(
            "a1", targets=[{"type": "slack", "channel": "general"}], labels=HOSTILE_LABELS
        )
        bridge.tick()
        for _ in range(3):
            deliver_once(bridge.runtime)
    finally:
        bridge.runtime.close()
    [message] = fake_slack.messages("general")
    everything = json.dumps([message["text"], message["blocks"], message["replies"]])
    assert "<script>" not in everything
    assert "<!channel>" not in everything
    assert "<https://evil.example|click>" not in everything
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in everything
    assert "{{7*7}}" in everything
    assert "{% print 1 %}" in everything


# --- credentials ----------------------------------------------------------------------------------


def _concrete(rule) -> str:
    values = dict.fromkeys(rule.arguments, "wch_01JD3Q00000000000000000000")
    return rule.build(values, append_unknown=False)[1]


def _rules(app, prefix: str):
    return [r for r in app.url_map.iter_rules() if r.endpoint.startswith(prefix)]


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Bearer ", "Basic dGVzdC1hcGktdG9rZW46", "test-api-token",
     "Bearer test-api-token-and-more", "Bearer TEST-API-TOKEN"],
)  # fmt: skip
def test_every_api_route_refuses_requests_without_a_valid_token(app, authorization):
    client = app.test_client()
    rules = _rules(app, "api.")
    assert len(rules) >= 8
    headers = {"Authorization": authorization} if authorization else {}
    requests = 0
    for rule in rules:
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            # Each from an address of its own: more wrong tokens than the throttle allows from one
            # address would be 429 (tests/test_front_door.py), not the 401 checked here.
            requests += 1
            address = {"REMOTE_ADDR": f"10.0.{requests // 250}.{requests % 250 + 1}"}
            response = client.open(
                _concrete(rule), method=method, headers=headers, json={}, environ_base=address
            )
            where = f"{method} {rule.rule}"
            assert response.status_code == 401, where
            assert response.mimetype == PROBLEM, where
            assert response.headers["WWW-Authenticate"].startswith("Bearer"), where


def test_a_dashboard_session_is_not_an_api_credential(app):
    client = app.test_client()
    sign_in(client)
    assert client.get("/api/v1/watches").status_code == 401


def test_every_dashboard_page_refuses_anonymous_visitors(app):
    client = app.test_client()
    rules = [r for r in _rules(app, "dashboard.") if r.endpoint != "dashboard.login"]
    assert len(rules) >= 9
    for rule in rules:
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(_concrete(rule), method=method)
            where = f"{method} {rule.rule}"
            if rule.endpoint.endswith("_live"):
                assert response.status_code == 401, where
            elif method == "GET":
                assert response.status_code == 302, where
                assert response.headers["Location"].startswith("/login"), where
            else:  # forms: refused by the CSRF check or the sign-in gate, never performed
                assert response.status_code in (302, 400), where
                if response.status_code == 302:
                    assert response.headers["Location"].startswith("/login"), where


def test_tokens_are_compared_with_compare_digest_against_every_configured_token(
    app_factory, monkeypatch
):
    app = app_factory(BRIDGE_API_TOKENS="first-token,second-token,third-token")
    client = app.test_client()
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def counting(a, b):
        caller = sys._getframe(1).f_globals["__name__"]
        if caller in ("app.web.auth", "app.dashboard.auth"):  # not itsdangerous, CSRF...
            calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(api_auth.hmac, "compare_digest", counting)
    for token, status in (("first-token", 200), ("third-token", 200), ("wrong", 401)):
        calls.clear()
        response = client.get("/api/v1/watches", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == status
        assert len(calls) == 3, token  # every token compared, no early exit on a match
        assert all(len(a) == len(b) for a, b in calls)  # fixed-length digests
    calls.clear()
    sign_in(client, token="second-token")
    assert calls
    assert len(calls) % 3 == 0
    calls.clear()
    assert client.get("/").status_code == 200
    # each check of the session's fingerprint compares it with every configured token
    assert calls
    assert len(calls) % 3 == 0


# --- secrets --------------------------------------------------------------------------------------

SLACK_WEBHOOK_SECRET = "XXsecretXXpathXX"


@pytest.fixture
def secret_bridge(app_factory, clock, simulator, sim_control, receiver, fake_slack):
    app = app_factory(
        clock=clock,
        **simulator_config(simulator.url),
        SLACK_API_URL=fake_slack.api_url,
        SLACK_BOT_TOKEN=SLACK_TOKEN,
        BRIDGE_ALLOW_PRIVATE_URLS="true",
    )
    bridge = Bridge(app, clock, simulator, sim_control)
    yield bridge
    bridge.runtime.close()


def test_secrets_never_appear_after_creation(secret_bridge, receiver, fake_slack):
    from app.worker.delivery import deliver_once

    bridge = secret_bridge
    slack_webhook = fake_slack.webhook_url("hook").rstrip("/") + "/" + SLACK_WEBHOOK_SECRET
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=1)
    created = bridge.register(
        "a1",
        targets=[
            {"type": "webhook", "url": receiver.url + "/hook"},
            {"type": "slack_webhook", "url": slack_webhook},
            {"type": "slack", "channel": "general"},
        ],
    )
    secret = created["targets"][0]["secret"]
    assert secret.startswith("whsec_")
    bridge.tick()
    for _ in range(3):
        deliver_once(bridge.runtime)
    client = bridge.client
    client.post(f"/api/v1/watches/{created['id']}/test", headers=AUTH)
    pages = [
        client.get(f"/api/v1/watches/{created['id']}", headers=AUTH),
        client.get("/api/v1/watches", headers=AUTH),
        client.get("/api/v1/events", headers=AUTH),
        client.get("/api/v1/deliveries", headers=AUTH),
        client.get("/openapi.json"),
        client.get("/metrics", headers=AUTH),
        client.get("/readyz"),
    ]
    dashboard = bridge.app.test_client()
    sign_in(dashboard)
    for path in ("/", f"/watches/{created['id']}", f"/watches/{created['id']}/live",
                 "/live/watches", "/deliveries"):  # fmt: skip
        pages.append(dashboard.get(path))
    forbidden = [secret, secret.removeprefix("whsec_"), SLACK_WEBHOOK_SECRET, SLACK_TOKEN,
                 TEST_SECRET_KEY]  # fmt: skip
    for response in pages:
        assert response.status_code in (200, 503), response.request.path  # 503: no worker
        text = response.get_data(as_text=True)
        for value in forbidden:
            assert value not in text, (response.request.path, value)
    assert "****" in json.dumps(pages[0].json["targets"])
