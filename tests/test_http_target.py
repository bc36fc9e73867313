"""``http`` targets end to end through a real receiver on 127.0.0.1: the rendered body and headers,
the Standard Webhooks headers and signature, 410, a template failing at send time, refusals at
registration, endpoints, and preview (which sends nothing)."""

import json

import pytest
from standardwebhooks import Webhook

from app.alerts.watch import alerts_watch, sync_targets
from app.clock import utcnow
from app.db import db
from app.models import Target
from app.watches.validation import DefaultTargets
from tests.fixtures import AUTH
from tests.receiver import Answer

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" + "bbbbbbbbbbbb"
HOSTILE = '<!channel> & <http://x|y> "quoted" \\ back'
BODY = (
    '{"text": "{{ event.type }}: {{ asset.asset_id }} {{ labels.title }}",'
    ' "labels": {{ labels | tojson }}, "index": {{ analysis.index_id | tojson }}}'
)


@pytest.fixture
def bridge_overrides():
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true", "BRIDGE_RETRY_SCHEDULE": "1,2,4"}


def http_target(receiver, **fields):
    return {"type": "http", "url": receiver.url + "/chat", "body": BODY, **fields}


def complete(bridge, target, asset_id="a1", labels=None, events=("analysis.completed",)):
    """Register ``target`` for ``asset_id`` and let its analysis complete (one event)."""
    bridge.set_status(asset_id, "ANALYZING")
    watch = bridge.register(
        asset_id, targets=[target], labels=labels or {"title": HOSTILE}, events=list(events)
    )
    bridge.tick()
    bridge.set_status(asset_id, "ANALYZE_COMPLETED", index_id=1001)
    bridge.tick(advance=1.2)
    return watch


def delivery_of(bridge, watch_id):
    [delivery] = bridge.watch(watch_id)["deliveries"]
    return delivery


def test_renders_the_body_and_headers_and_signs_what_it_sends(bridge, receiver, deliver):
    headers = {
        "X-Asset": "{{ asset.workspace }}/{{ asset.asset_id }}",
        "Authorization": "Bearer t0k",
    }
    target = http_target(receiver, method="PUT", headers=headers, secret=SECRET)
    watch = complete(bridge, target)
    assert watch["targets"][0]["headers"] == {"X-Asset": "****", "Authorization": "****"}
    assert watch["targets"][0]["body"] == BODY
    assert "secret" not in watch["targets"][0]
    assert deliver().sent == 1
    [request] = receiver.requests
    assert (request.method, request.path) == ("PUT", "/chat")
    sent = json.loads(request.body)
    assert sent == {
        "text": f"analysis.completed: a1 {HOSTILE}",
        "labels": {"title": HOSTILE},
        "index": 1001,
    }
    assert request.headers["x-asset"] == "ws/a1"
    assert request.headers["authorization"] == "Bearer t0k"
    assert request.headers["content-type"] == "application/json"
    event_id = request.headers["webhook-id"]
    assert event_id.startswith("evt_")
    assert request.headers["webhook-timestamp"].isdigit()
    Webhook(SECRET).verify(request.body, request.headers)  # signed over the exact bytes sent
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "A" * 44).verify(request.body, request.headers)
    assert delivery_of(bridge, watch["id"])["state"] == "succeeded"


def test_without_a_secret_there_is_no_signature_and_a_content_type_may_be_set(
    bridge, receiver, deliver
):
    target = http_target(receiver, headers={"Content-Type": "application/json; charset=UTF-8"})
    complete(bridge, target)
    deliver()
    [request] = receiver.requests
    assert request.method == "POST"
    assert "webhook-signature" not in request.headers
    assert {"webhook-id", "webhook-timestamp"} <= set(request.headers)
    assert request.headers["content-type"] == "application/json; charset=UTF-8"


def test_410_disables_the_target(bridge, receiver, deliver):
    watch = complete(bridge, http_target(receiver))
    receiver.answer(Answer(410))
    deliver()
    target = bridge.watch(watch["id"])["targets"][0]
    assert target["disabled"] is True
    assert delivery_of(bridge, watch["id"])["state"] == "failed"


def test_a_template_failing_at_send_time_is_a_failed_attempt_that_says_why(
    bridge, receiver, deliver
):
    # Valid for the samples (they have no label n), but this watch's label divides by zero.
    body = '{"ratio": {{ 100 / (labels.n | default(1) | int) }}}'
    watch = complete(bridge, http_target(receiver, body=body), labels={"n": "0"})
    deliver()
    assert receiver.requests == []
    delivery = delivery_of(bridge, watch["id"])
    assert delivery["state"] == "pending"
    [attempt] = delivery["attempts"]
    assert attempt["outcome"] == "retry"
    assert attempt["error"].startswith("body template failed: ZeroDivisionError")
    # Fixed in place (as an operator would), the retry sends the fixed body.
    with bridge.db():
        row = db.session.get(Target, watch["targets"][0]["id"])
        row.body = '{"n": "{{ labels.n }}"}'
        db.session.commit()
    deliver(advance=1.2)
    [request] = receiver.requests
    assert json.loads(request.body) == {"n": "0"}


def test_a_stored_body_that_no_longer_renders_json_fails_the_attempt(bridge, receiver, deliver):
    watch = complete(bridge, http_target(receiver))
    with bridge.db():
        db.session.get(Target, watch["targets"][0]["id"]).body = "not json {{ asset.asset_id }}"
        db.session.commit()
    deliver()
    assert receiver.requests == []
    [attempt] = delivery_of(bridge, watch["id"])["attempts"]
    assert attempt["error"].startswith("body template failed: does not render valid JSON")


def refusal(bridge, target, **fields):
    body = {"workspace": "ws", "project_id": "1", "asset_id": "a1", "targets": [target], **fields}
    response = bridge.client.post("/api/v1/watches", json=body, headers=AUTH)
    assert response.status_code == 422, response.json
    return {error["pointer"]: error["detail"] for error in response.json["errors"]}


def test_invalid_templates_are_refused_with_pointers(bridge, receiver):
    errors = refusal(bridge, http_target(receiver, body='{"a": {{ asset.asset_id }'))
    assert errors == {"#/targets/0/body": "template syntax error on line 1: unexpected '}'"}
    errors = refusal(bridge, http_target(receiver, body='{"a": {{ asset.workspace }}}'))
    assert errors["#/targets/0/body"].startswith(
        "does not render valid JSON for a sample analysis.completed event: "
    )
    # Valid for analysis.completed (it has an index id), not for analysis.failed (null renders empty).
    number = http_target(receiver, body='{"index": {{ analysis.index_id }}}')
    errors = refusal(bridge, number, events=["analysis.completed", "analysis.failed"])
    assert errors["#/targets/0/body"].startswith(
        "does not render valid JSON for a sample analysis.failed event: "
    )
    assert refusal(bridge, http_target(receiver, method="GET")) == {
        "#/targets/0/method": "must be 'POST' or 'PUT'"
    }
    assert refusal(bridge, {"type": "http", "url": receiver.url}) == {
        "#/targets/0/body": "required"
    }


def test_reserved_and_malformed_headers_are_refused(bridge, receiver):
    headers = {
        "Host": "x", "content-length": "1", "Transfer-Encoding": "chunked", "Connection": "close",
        "Webhook-Signature": "v1,x", "Bad Name": "x", "X-Fine": "ok", "X-Broken": "{{ 1 / 0 }}",
    }  # fmt: skip
    errors = refusal(bridge, http_target(receiver, headers=headers))
    bad = {"Host", "content-length", "Transfer-Encoding", "Connection", "Webhook-Signature"}
    assert set(errors) == {f"#/targets/0/headers/{name}" for name in {*bad, "Bad Name", "X-Broken"}}
    for name in bad:
        assert "may not be set" in errors[f"#/targets/0/headers/{name}"]
    assert "ZeroDivisionError" in errors["#/targets/0/headers/X-Broken"]
    too_many = {f"X-{n}": "v" for n in range(21)}
    assert refusal(bridge, http_target(receiver, headers=too_many)) == {
        "#/targets/0/headers": "must have at most 20 headers"
    }


def test_an_unsafe_url_is_refused_like_a_webhooks(app_factory):
    app = app_factory()  # private addresses not allowed
    target = {"type": "http", "url": "http://127.0.0.1:9/x", "body": "{}"}
    body = {"workspace": "ws", "project_id": "1", "asset_id": "a1", "targets": [target]}
    response = app.test_client().post("/api/v1/watches", json=body, headers=AUTH)
    assert response.status_code == 422
    assert [e["pointer"] for e in response.json["errors"]] == ["#/targets/0/url"]


def test_preview_renders_and_sends_nothing(bridge, receiver):
    target = http_target(receiver, headers={"X-Token": "tok-{{ asset.workspace }}"}, secret=SECRET)
    answer = bridge.client.post(
        "/api/v1/preview", json={"target": target, "event_type": "analysis.failed"}, headers=AUTH
    )
    assert answer.status_code == 200, answer.json
    sent = json.loads(answer.json["body"])
    assert sent["text"].startswith("analysis.failed: 5678 ")
    assert sent["index"] is None
    assert answer.json["headers"]["x-token"] == "tok-my-workspace"
    assert "webhook-signature" not in answer.json["headers"]
    assert set(answer.json) == {"body", "headers"}
    slack = {"type": "slack_webhook", "url": receiver.url + "/slack"}
    answer = bridge.client.post("/api/v1/preview", json={"target": slack}, headers=AUTH)
    assert answer.status_code == 200
    assert set(answer.json) == {"text", "blocks"}
    assert answer.json["text"].startswith("Analysis completed")
    webhook = {"type": "webhook", "url": receiver.url + "/hook"}
    answer = bridge.client.post("/api/v1/preview", json={"target": webhook}, headers=AUTH)
    assert json.loads(answer.json["body"])["type"] == "analysis.completed"
    assert "webhook-signature" not in answer.json["headers"]
    assert receiver.requests == []


def test_preview_refuses_an_invalid_target_with_pointers(bridge, receiver):
    bad = {"target": http_target(receiver, body="{{"), "event_type": "nope"}
    answer = bridge.client.post("/api/v1/preview", json=bad, headers=AUTH)
    assert answer.status_code == 422
    pointers = {e["pointer"] for e in answer.json["errors"]}
    assert pointers == {"#/target/body", "#/event_type"}
    answer = bridge.client.post(
        "/api/v1/preview", json={"target": {"endpoint": "nobody"}}, headers=AUTH
    )
    assert answer.status_code == 422
    assert answer.json["errors"][0]["pointer"] == "#/target/endpoint"


def test_http_endpoints_are_created_shown_changed_previewed_and_used(bridge, receiver, deliver):
    spec = {"name": "chat", **http_target(receiver, headers={"X-Key": "secret-value"})}
    created = bridge.client.post("/api/v1/endpoints", json=spec, headers=AUTH)
    assert created.status_code == 201, created.json
    assert created.json["headers"] == {"X-Key": "****"}
    assert "secret" not in created.json
    assert (created.json["method"], created.json["body"]) == ("POST", BODY)
    change = {"method": "PUT", "body": '{"only": "{{ asset.asset_id }}"}'}
    changed = bridge.client.patch("/api/v1/endpoints/chat", json=change, headers=AUTH)
    assert changed.status_code == 200, changed.json
    bad = bridge.client.patch("/api/v1/endpoints/chat", json={"body": "{"}, headers=AUTH)
    assert bad.status_code == 422
    assert bad.json["errors"][0]["pointer"] == "#/body"
    preview = bridge.client.post(
        "/api/v1/preview", json={"target": {"endpoint": "chat"}}, headers=AUTH
    )
    assert preview.json["body"] == '{"only": "5678"}'
    # A stored endpoint's header values are credentials: named, never shown (not even rendered).
    assert preview.json["headers"]["x-key"] == "****"
    assert "secret-value" not in preview.get_data(as_text=True)
    assert receiver.requests == []
    watch = complete(bridge, {"endpoint": "chat"})
    assert watch["targets"][0]["endpoint"] == "chat"
    deliver()
    [request] = receiver.requests
    assert (request.method, request.body) == ("PUT", b'{"only": "a1"}')
    assert request.headers["x-key"] == "secret-value"


def test_request_fields_cannot_be_given_to_other_endpoint_types(bridge, receiver):
    spec = {"name": "hook", "type": "webhook", "url": receiver.url}
    assert bridge.client.post("/api/v1/endpoints", json=spec, headers=AUTH).status_code == 201
    answer = bridge.client.patch("/api/v1/endpoints/hook", json={"body": "{}"}, headers=AUTH)
    assert answer.status_code == 422
    assert answer.json["errors"] == [
        {"pointer": "#/body", "detail": "a webhook endpoint has no body"}
    ]


def test_an_http_alert_target_with_a_secret_is_kept_across_evaluations(app):

    spec = {"type": "http", "url": "https://hooks.example.test/a", "body": BODY, "secret": SECRET}
    (target,) = DefaultTargets.model_validate({"targets": [spec]}).targets
    changed = DefaultTargets.model_validate({"targets": [{**spec, "body": "{}"}]}).targets
    with app.app_context():
        session = db.session()
        now = utcnow()
        watch = alerts_watch(session, now)
        for _ in range(2):
            sync_targets(session, watch, (target,), now)
        rows = session.query(Target).filter_by(watch_id=watch.id).all()
        assert [(r.secret, r.body, r.disabled) for r in rows] == [(SECRET, BODY, False)]
        sync_targets(session, watch, tuple(changed), now)  # a changed template is a new target
        rows = session.query(Target).filter_by(watch_id=watch.id).order_by(Target.position).all()
        assert [(r.body, r.disabled) for r in rows] == [(BODY, True), ("{}", False)]
