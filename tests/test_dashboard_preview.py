"""The dashboard's message fields and Preview buttons (issue 22): http targets, Slack templates and
languages on the registration form and the endpoint page; previews rendered by the same function as
``POST /api/v1/preview``, escaped, CSRF-protected, never sent (a real receiver on 127.0.0.1 hears
nothing, no delivery or attempt row appears), with a stored endpoint's header values withheld.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from markupsafe import escape
from werkzeug.datastructures import MultiDict

from app.dashboard.watch_form import field_for_pointer
from app.db import db
from app.models import Delivery, DeliveryAttempt, Endpoint, Event, Target, Watch
from tests.dashboardtools import field_errors, sign_in
from tests.fixtures import AUTH

PART = re.compile(r'<pre class="preview__part" data-part="(\w+)">(.*?)</pre>', re.S)
#: The sample events' hostile label (``app.notify.samples``), as the dashboard must show it: text.
HOSTILE = "<!channel> & <http://x|y>"
HTTP_BODY = '{"text": "{{ asset.asset_id }} {{ labels.title }}", "labels": {{ labels | tojson }}}'
SLACK_TEMPLATE = "*{{ asset.asset_id }}*: {{ labels.title }}"
CREDENTIAL = "Bearer s3cr3t-header-value"


@pytest.fixture
def bridge_overrides() -> dict[str, str]:
    """The ``bridge`` fixture may send to the receiver on 127.0.0.1 (it must not, for a preview)."""
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true"}


@pytest.fixture
def web(app_factory) -> tuple[Any, Any, str]:
    """An app that may reach 127.0.0.1, a signed-in dashboard client of it and its CSRF token."""
    app = app_factory(BRIDGE_ALLOW_PRIVATE_URLS="true")
    client = app.test_client()
    return app, client, sign_in(client)


def form(csrf: str, **fields: str) -> MultiDict:
    data = MultiDict({"csrf_token": csrf, "workspace": "ws", "project_id": "1", "asset_id": "a1",
                      "events": "analysis.completed", **fields})  # fmt: skip
    return data


def parts(page: str) -> dict[str, str]:
    """The preview's parts on a page, unescaped."""
    return {name: html.unescape(text) for name, text in PART.findall(page)}


def api_preview(client: Any, target: dict[str, Any], event_type: str) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/preview", json={"target": target, "event_type": event_type}, headers=AUTH
    )
    assert answer.status_code == 200, answer.json
    return answer.json


def rows(app: Any) -> dict[str, int]:
    """How many rows the tables a send would write hold."""
    with app.app_context():
        return {
            model.__name__: db.session.query(model).count()
            for model in (Watch, Target, Event, Delivery, DeliveryAttempt)
        }


# --- the registration form -------------------------------------------------------------------------


def test_an_http_preview_is_the_apis_escaped_and_nothing_is_sent(bridge, receiver, deliver):
    client = bridge.app.test_client()
    csrf = sign_in(client)
    before = rows(bridge.app)
    url = receiver.url + "/hook"
    data = form(csrf, http_url=url, http_method="PUT", http_headers="X-Team: video\n",
                http_body=HTTP_BODY, labels="cms_id=abc", preview_event="analysis.failed")  # fmt: skip
    response = client.post("/watches/new/preview", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 200, field_errors(page)
    assert HOSTILE not in page  # markup from a label never reaches the page unescaped
    assert "&lt;!channel&gt; &amp; &lt;http://x|y&gt;" in page
    shown = parts(page)
    target = {"type": "http", "url": url, "method": "PUT", "headers": {"X-Team": "video"},
              "body": HTTP_BODY}  # fmt: skip
    expected = api_preview(bridge.client, target, "analysis.failed")
    assert json.loads(shown["body"]) == json.loads(expected["body"])
    assert shown["body"] == json.dumps(json.loads(expected["body"]), indent=2, ensure_ascii=False)
    assert json.loads(shown["headers"]) == expected["headers"]
    assert {k.lower(): v for k, v in expected["headers"].items()}["x-team"] == "video"
    assert HOSTILE in json.loads(shown["body"])["text"]
    # Nothing was sent or stored: a delivery tick finds nothing, the receiver heard nothing.
    deliver()
    assert receiver.requests == []
    assert rows(bridge.app) == before
    # The form is shown again as typed.
    for kept in ('value="' + url + '"', "<option value=\"PUT\" selected>", "X-Team: video",
                 str(escape(HTTP_BODY)), "cms_id=abc",
                 '<option value="analysis.failed" selected>'):  # fmt: skip
        assert kept in page, kept


def test_a_slack_preview_escapes_twice_and_honours_the_template_and_language(web):
    app, client, csrf = web
    data = form(csrf, slack_channel="C0123456789", slack_template=SLACK_TEMPLATE, language="ko",
                preview_target="slack")  # fmt: skip
    page = client.post("/watches/new/preview", data=data).get_data(as_text=True)
    shown = parts(page)
    target = {"type": "slack", "channel": "C0123456789", "template": SLACK_TEMPLATE,
              "language": "ko"}  # fmt: skip
    expected = api_preview(client, target, "analysis.completed")
    assert shown["text"] == expected["text"]
    assert json.loads(shown["blocks"]) == expected["blocks"]
    # mrkdwn-escaped by the template, then HTML-escaped by the page.
    assert "&lt;!channel&gt; &amp; &lt;http://x|y&gt;" in shown["text"]
    assert "&amp;lt;!channel&amp;gt;" in page
    assert "<!channel>" not in page
    english = api_preview(client, {**target, "language": "en"}, "analysis.completed")
    assert english["blocks"] != expected["blocks"]  # the language reached the preview
    assert '<option value="ko" lang="ko" selected>한국어</option>' in page
    assert rows(app)["Watch"] == 0


def test_the_first_filled_in_target_is_previewed_by_default(web):
    _app, client, csrf = web
    url = "https://hooks.example.test/services/T000/B000/XXsecretXX"
    data = form(csrf, slack_webhook_url=url, http_url="https://hooks.example.test/h",
                http_body='{"a": 1}')  # fmt: skip
    page = client.post("/watches/new/preview", data=data).get_data(as_text=True)
    assert "Preview: Slack incoming webhook" in page
    assert set(parts(page)) == {"text", "blocks"}


def test_preview_needs_the_csrf_token(web):
    app, client, csrf = web
    data = form(csrf, webhook_url="https://hooks.example.test/in")
    del data["csrf_token"]
    refused = client.post("/watches/new/preview", data=data)
    assert refused.status_code == 400
    assert "could not be accepted" in refused.get_data(as_text=True)
    assert "data-part=" not in refused.get_data(as_text=True)
    create = {"name": "chat", "type": "slack_webhook", "url": "https://hooks.example.test/s/x"}
    assert client.post("/api/v1/endpoints", json=create, headers=AUTH).status_code == 201
    refused = client.post("/endpoints/chat/preview", data={"template": "x"})
    assert refused.status_code == 400
    assert "data-part=" not in refused.get_data(as_text=True)
    assert rows(app)["Watch"] == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"slack_channel": "C0123456789", "slack_template": "{% if %}"}, "slack_template"),
        ({"http_url": "https://hooks.example.test/h", "http_body": '{"a": {{ x'}, "http_body"),
        (
            {
                "http_url": "https://hooks.example.test/h",
                "http_body": "{",
                "http_headers": "Host: evil",
            },
            "http_headers",
        ),
    ],
)
def test_an_invalid_template_is_an_error_next_to_its_field(web, fields, field):
    _app, client, csrf = web
    for path in ("/watches/new/preview", "/watches/new"):
        response = client.post(path, data=form(csrf, **fields))
        page = response.get_data(as_text=True)
        assert response.status_code == 422, path
        errors = field_errors(page)
        assert field in errors, (path, errors)
        assert re.search(f'id="{field}"[^>]*aria-invalid="true"', page), path
        assert "data-part=" not in page
    heading = "The message could not be previewed"
    assert heading in client.post("/watches/new/preview", data=form(csrf, **fields)).get_data(
        as_text=True
    )


def test_preview_errors_read_as_the_apis(web):
    _app, client, csrf = web
    data = form(csrf, slack_channel="C0123456789", slack_template="{% if %}")
    shown = field_errors(client.post("/watches/new/preview", data=data).get_data(as_text=True))
    target = {"type": "slack", "channel": "C0123456789", "template": "{% if %}"}
    api = client.post("/api/v1/preview", json={"target": target}, headers=AUTH)
    assert api.status_code == 422
    assert shown == {"slack_template": [e["detail"] for e in api.json["errors"]]}


def test_header_lines_and_missing_targets_are_form_errors(web):
    _app, client, csrf = web
    data = form(csrf, http_url="https://hooks.example.test/h", http_body='{"a": 1}',
                http_headers="no colon here\nX-A: 1\nx-a: 2", labels="not a label line")  # fmt: skip
    shown = field_errors(client.post("/watches/new/preview", data=data).get_data(as_text=True))
    assert shown == {  # the label line is the registration's problem, not the preview's
        "http_headers": ["line 1: write each header as Name: value", "line 3: x-a is given twice"]
    }
    empty = field_errors(
        client.post("/watches/new/preview", data=form(csrf)).get_data(as_text=True)
    )
    assert list(empty) == ["targets"]
    data = form(csrf, webhook_url="https://hooks.example.test/in", preview_target="http")
    shown = field_errors(client.post("/watches/new/preview", data=data).get_data(as_text=True))
    assert shown == {"http_url": ["fill in this target to preview its message"]}


def test_registering_an_http_and_a_korean_slack_target_stores_their_columns(web):
    app, client, csrf = web
    data = form(csrf, http_url="https://hooks.example.test/h", http_method="PUT",
                http_headers="Authorization: Bearer {{ labels.cms_id }}\r\nX-Team: video",
                http_body=HTTP_BODY.replace("}}}", "}} }"), slack_channel="C0123456789",
                slack_template=SLACK_TEMPLATE, language="ko", labels="cms_id=abc")  # fmt: skip
    response = client.post("/watches/new", data=data)
    assert response.status_code == 303, field_errors(response.get_data(as_text=True))
    with app.app_context():
        targets = {t.type: t for t in db.session.query(Target)}
        assert set(targets) == {"http", "slack"}
        http, slack = targets["http"], targets["slack"]
        assert (http.method, http.language) == ("PUT", "ko")
        assert http.headers == {"Authorization": "Bearer {{ labels.cms_id }}", "X-Team": "video"}
        assert http.body == HTTP_BODY.replace("}}}", "}} }")
        assert (slack.channel, slack.template, slack.language) == (
            "C0123456789", SLACK_TEMPLATE, "ko",
        )  # fmt: skip


def test_the_language_select_defaults_to_the_bridges_language(app_factory):
    client = app_factory(BRIDGE_LANGUAGE="ja").test_client()
    sign_in(client)
    page = client.get("/watches/new").get_data(as_text=True)
    assert '<option value="" selected>The bridge\'s: 日本語</option>' in page
    for code, name in (("en", "English"), ("ko", "한국어"), ("ja", "日本語")):
        assert f'<option value="{code}" lang="{code}">{name}</option>' in page


# --- the endpoint page -----------------------------------------------------------------------------


def create_endpoint(client: Any, **body: Any) -> dict[str, Any]:
    answer = client.post("/api/v1/endpoints", json=body, headers=AUTH)
    assert answer.status_code == 201, answer.json
    return answer.json


def endpoint_row(app: Any, name: str) -> Endpoint:
    with app.app_context():
        row = db.session.query(Endpoint).filter_by(name=name).one()
        db.session.expunge(row)
        return row


def test_an_http_endpoint_shows_its_fields_and_withholds_its_header_values(web, receiver):
    app, client, csrf = web
    create_endpoint(client, name="chat", type="http", url=receiver.url + "/hook", method="PUT",
                    headers={"Authorization": CREDENTIAL}, body=HTTP_BODY,
                    language="ja")  # fmt: skip
    page = client.get("/endpoints/chat").get_data(as_text=True)
    assert CREDENTIAL not in page
    assert "<code>Authorization: ****</code>" in page
    assert str(escape(HTTP_BODY)) in page
    assert '<span lang="ja">日本語</span>' in page
    previewed = client.post("/endpoints/chat/preview", data={
        "csrf_token": csrf, "method": "PUT", "body": HTTP_BODY, "language": "ja",
        "preview_event": "watch.error"})  # fmt: skip
    shown_page = previewed.get_data(as_text=True)
    assert previewed.status_code == 200, field_errors(shown_page)
    assert CREDENTIAL not in shown_page
    shown = parts(shown_page)
    expected = api_preview(client, {"endpoint": "chat"}, "watch.error")
    headers = {name.lower(): value for name, value in json.loads(shown["headers"]).items()}
    expected_headers = {name.lower(): value for name, value in expected["headers"].items()}
    # Each preview is signed at its own second: the two may straddle one.
    stamps = [int(h.pop("webhook-timestamp")) for h in (headers, expected_headers)]
    assert 0 <= stamps[1] - stamps[0] <= 1
    assert headers == expected_headers
    assert headers["authorization"] == "****"
    assert json.loads(shown["body"]) == json.loads(expected["body"])
    assert HOSTILE not in shown_page
    assert receiver.requests == []
    assert rows(app)["Delivery"] == 0


def test_an_endpoint_preview_shows_the_edit_unsaved_and_saving_stores_it(web):
    app, client, csrf = web
    create_endpoint(client, name="chat", type="slack_webhook",
                    url="https://hooks.example.test/services/T0/B0/XXsecretXX")  # fmt: skip
    page = client.get("/endpoints/chat").get_data(as_text=True)
    assert "none: the default message" in page
    edited = {"csrf_token": csrf, "url": "", "template": SLACK_TEMPLATE, "language": "ko",
              "description": "", "rate_limit_per_second": ""}  # fmt: skip
    previewed = client.post("/endpoints/chat/preview", data=edited)
    shown_page = previewed.get_data(as_text=True)
    assert previewed.status_code == 200, field_errors(shown_page)
    target = {"type": "slack_webhook", "url": "https://hooks.example.test/s", "language": "ko",
              "template": SLACK_TEMPLATE}  # fmt: skip
    assert parts(shown_page)["text"] == api_preview(client, target, "analysis.completed")["text"]
    assert str(escape(SLACK_TEMPLATE)) in shown_page  # the form keeps what was typed
    row = endpoint_row(app, "chat")
    assert (row.template, row.language) == (None, None)  # a preview saves nothing
    refused = client.post("/endpoints/chat/preview", data={**edited, "template": "{% if %}"})
    assert refused.status_code == 422
    assert list(field_errors(refused.get_data(as_text=True))) == ["template"]
    saved = client.post("/endpoints/chat/edit", data=edited)
    assert saved.status_code == 303
    row = endpoint_row(app, "chat")
    assert (row.template, row.language) == (SLACK_TEMPLATE, "ko")
    assert row.url is not None
    assert row.url.endswith("XXsecretXX")
    page = client.get("/endpoints/chat").get_data(as_text=True)
    assert '<span lang="ko">한국어</span>' in page
    cleared = client.post("/endpoints/chat/edit", data={**edited, "template": "", "language": ""})
    assert cleared.status_code == 303
    row = endpoint_row(app, "chat")
    assert (row.template, row.language) == (None, None)


def test_editing_an_http_endpoints_headers_keeps_or_replaces_them(web):
    app, client, csrf = web
    create_endpoint(client, name="api", type="http", url="https://hooks.example.test/h",
                    headers={"Authorization": CREDENTIAL}, body='{"a": 1}')  # fmt: skip
    base = {"csrf_token": csrf, "method": "POST", "body": '{"a": 2}', "headers": "",
            "language": "", "description": "", "rate_limit_per_second": ""}  # fmt: skip
    assert client.post("/endpoints/api/edit", data=base).status_code == 303
    row = endpoint_row(app, "api")
    assert (row.headers, row.body) == ({"Authorization": CREDENTIAL}, '{"a": 2}')
    bad = client.post("/endpoints/api/edit", data={**base, "headers": "Webhook-Id: 1"})
    assert bad.status_code == 422
    assert list(field_errors(bad.get_data(as_text=True))) == ["headers"]
    unparsed = client.post("/endpoints/api/edit", data={**base, "headers": "X-Ok: 1\nno colon"})
    assert unparsed.status_code == 422
    assert field_errors(unparsed.get_data(as_text=True)) == {
        "headers": ["line 2: write each header as Name: value"]
    }
    assert endpoint_row(app, "api").headers == {"Authorization": CREDENTIAL}
    replaced = {**base, "headers": "X-Key: {{ watch.id }}", "method": "PUT"}
    assert client.post("/endpoints/api/edit", data=replaced).status_code == 303
    row = endpoint_row(app, "api")
    assert (row.headers, row.method) == ({"X-Key": "{{ watch.id }}"}, "PUT")
    cleared = {**base, "clear_headers": "on"}
    assert client.post("/endpoints/api/edit", data=cleared).status_code == 303
    assert endpoint_row(app, "api").headers == {}


@pytest.mark.parametrize(
    ("pointer", "field"),
    [
        ("#/targets/0/method", "http_method"),
        ("#/targets/0/headers/X-A", "http_headers"),
        ("#/targets/0/body", "http_body"),
        ("#/targets/0/language", "language"),
        ("#/targets/1/template", "slack_template"),
        ("#/targets/2/template", "slack_webhook_template"),
        ("#/targets/2/language", "language"),
    ],
)
def test_message_field_pointers_map_to_their_fields(pointer, field):
    assert field_for_pointer(pointer, ["http", "slack", "slack_webhook"]) == field
