"""The dashboard's endpoint pages (issue 21): the list and one endpoint with their health, hostile
text escaped, Slack webhook credentials masked, CSRF on every action, a rotated secret shown once,
replay, enable, disable, edit, delete, and endpoints on the watch page and the registration form.

Deliveries are real: the bridge ticks against the simulator and sends to a receiver on 127.0.0.1.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from app.db import db
from app.models import Delivery, Endpoint
from tests.dashboardtools import field_errors, sign_in
from tests.fixtures import AUTH
from tests.receiver import Answer

FLASH = re.compile(r'<p class="flash flash--(\w+)"\s+role="\w+">([^<]*)</p>')
NEW_SECRET = re.compile(r'id="new-secret" class="secret" type="text" readonly value="([^"]+)"')
HOSTILE = "<script>alert(1)</script>{{7*7}}"
SLACK_CREDENTIAL = "XXsecretXXpathXX"


@pytest.fixture
def bridge_overrides():
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true", "BRIDGE_RETRY_SCHEDULE": "1"}


@pytest.fixture
def web(bridge) -> tuple[Any, str]:
    """A dashboard client of the bridge, signed in, and its CSRF token."""
    client = bridge.app.test_client()
    return client, sign_in(client)


def create(bridge, **body: Any) -> dict[str, Any]:
    answer = bridge.client.post("/api/v1/endpoints", json=body, headers=AUTH)
    assert answer.status_code == 201, answer.json
    return answer.json


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def flashes(html_text: str) -> list[tuple[str, str]]:
    return [(kind, html.unescape(text)) for kind, text in FLASH.findall(html_text)]


def post(web: tuple[Any, str], path: str, **data: str):
    client, csrf = web
    return client.post(path, data={"csrf_token": csrf, **data})


def endpoint_row(bridge, name: str) -> Endpoint:
    with bridge.db():
        row = db.session.query(Endpoint).filter_by(name=name).one()
        db.session.expunge(row)
        return row


def deliveries(bridge) -> list[tuple[str, str, int]]:
    with bridge.db():
        rows = db.session.query(Delivery).order_by(Delivery.seq)
        return [(d.id, d.state, d.attempt_count) for d in rows]


def completed_watch_of(bridge, asset_id: str, endpoint: str) -> dict[str, Any]:
    """A watch of ``asset_id`` sending to ``endpoint``, whose analysis just completed (one event,
    one pending delivery)."""
    bridge.set_status(asset_id, "ANALYZING")
    watch = bridge.register(asset_id, targets=[{"endpoint": endpoint}])
    bridge.tick()
    bridge.set_status(asset_id, "ANALYZE_COMPLETED", index_id=1001)
    bridge.tick(advance=1.2)
    return watch


# --- the pages ------------------------------------------------------------------------------------


def test_no_endpoints_says_what_they_are_and_how_to_create_one(bridge, web):
    client, _ = web
    text = html.unescape(page(client, "/endpoints"))
    assert "No endpoints yet" in text
    assert "POST /api/v1/endpoints" in text
    assert "mi-bridge endpoint add" in text
    assert re.search(
        r'href="/endpoints"\s+aria-current="page">Endpoints<', page(client, "/endpoints")
    )


def test_pages_show_health_escape_hostile_text_and_mask_slack_credentials(bridge, web):
    client, _ = web
    create(bridge, name="cms", type="webhook", url="https://hooks.example.test/in",
           description=HOSTILE, rate_limit_per_second=2.5)  # fmt: skip
    create(bridge, name="chat", type="slack_webhook",
           url=f"https://hooks.example.test/services/T000/B000/{SLACK_CREDENTIAL}")  # fmt: skip
    with bridge.db():
        row = db.session.query(Endpoint).filter_by(name="chat").one()
        row.disabled, row.disabled_reason = True, "<img src=x onerror=alert(1)>"
        db.session.commit()
    bridge.register("a-1", targets=[{"endpoint": "cms"}])

    listing = page(client, "/endpoints")
    cms = page(client, "/endpoints/cms")
    chat = page(client, "/endpoints/chat")
    form = page(client, "/watches/new")
    for shown in (listing, cms, form):
        assert "<script>alert(1)" not in shown
    for shown in (listing, cms):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;{{7*7}}" in shown  # text, never markup
    for shown in (listing, chat):
        assert "<img src=x" not in shown
        assert "&lt;img src=x onerror=alert(1)&gt;" in shown
    for shown in (listing, chat, form):
        assert SLACK_CREDENTIAL not in shown
        assert "****" in shown
    assert re.search(r'data-endpoint="cms".*?data-field="watching">1<', listing, re.S)
    assert re.search(r'data-endpoint="chat".*?badge--failed">disabled<', listing, re.S)
    assert "2.5 per second" in cms
    by_id = page(client, f"/endpoints/{endpoint_row(bridge, 'cms').id}")
    assert "Endpoint <code>cms</code>" in by_id
    assert client.get("/endpoints/nope").status_code == 404


def test_every_action_needs_the_csrf_token(bridge, web):
    client, _ = web
    first = create(bridge, name="cms", type="webhook", url="https://hooks.example.test/in")
    for action in ("edit", "disable", "enable", "rotate-secret", "replay", "delete"):
        refused = client.post(f"/endpoints/cms/{action}", data={"description": "changed"})
        assert refused.status_code == 400, action
        assert "csrf" in refused.get_data(as_text=True).lower(), action
    row = endpoint_row(bridge, "cms")
    assert (row.secret, row.description, row.disabled) == (first["secret"], None, False)


def test_a_rotated_secret_is_shown_once_and_never_in_a_url(bridge, web):
    client, _ = web
    first = create(bridge, name="cms", type="webhook", url="https://hooks.example.test/in")
    response = post(web, "/endpoints/cms/rotate-secret")
    assert response.status_code == 303
    assert response.headers["Location"] == "/endpoints/cms"
    shown = page(client, "/endpoints/cms")
    (secret,) = NEW_SECRET.findall(shown)
    row = endpoint_row(bridge, "cms")
    assert secret == row.secret != first["secret"]
    assert row.previous_secret == first["secret"]
    [(kind, message)] = flashes(shown)
    assert kind == "success"
    assert "previous secret also signs" in message
    assert secret not in message
    again = page(client, "/endpoints/cms")
    assert secret not in again
    assert not NEW_SECRET.search(again)
    assert 'id="secret-shown-once"' in again
    assert secret not in page(client, "/endpoints")


def test_a_slack_endpoint_has_no_secret_to_rotate(bridge, web):
    client, _ = web
    create(bridge, name="chat", type="slack", channel="#media")
    assert 'id="rotate-secret"' not in page(client, "/endpoints/chat")
    post(web, "/endpoints/chat/rotate-secret")
    shown = page(client, "/endpoints/chat")
    assert flashes(shown) == [("error", "Not rotated: a slack endpoint has no signing secret.")]
    assert not NEW_SECRET.search(shown)


def test_replay_queues_dead_deliveries_which_go_out_again(bridge, web, receiver, deliver):
    client, _ = web
    create(bridge, name="cms", type="webhook", url=receiver.url + "/hook")
    receiver.default = Answer(500, body=b"boom")
    watch = completed_watch_of(bridge, "a-1", "cms")
    deliver()
    deliver(advance=1.2)  # the schedule's one retry: then it is dead
    [(delivery_id, state, attempts)] = deliveries(bridge)
    assert (state, attempts) == ("dead", 2)
    shown = page(client, "/endpoints/cms")
    assert re.search(r'data-field="dead">1<', shown)
    row = re.search(rf'<tr data-delivery-id="{delivery_id}">.*?</tr>', shown, re.S)
    assert row
    assert "analysis.completed" in row.group(0)
    assert "HTTP 500" in row.group(0)
    assert f'href="/watches/{watch["id"]}"' in row.group(0)

    receiver.default = Answer(200)
    response = post(web, "/endpoints/cms/replay", state="dead", since="", until="")
    assert response.status_code == 303
    [(kind, message)] = flashes(page(client, "/endpoints/cms"))
    assert kind == "success"
    assert message.startswith("1 delivery queued")
    assert deliveries(bridge) == [(delivery_id, "pending", 2)]
    assert deliver().sent == 1
    assert deliveries(bridge) == [(delivery_id, "succeeded", 3)]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len(receiver.requests) == 3

    post(web, "/endpoints/cms/replay", state="dead")
    assert flashes(page(client, "/endpoints/cms")) == [
        ("info", "Nothing to replay: no delivery of this endpoint matches.")
    ]
    future = post(web, "/endpoints/cms/replay", state="any", since="2999-01-01T00:00")
    assert future.status_code == 303
    assert deliveries(bridge) == [(delivery_id, "succeeded", 3)]


def test_a_refused_replay_shows_the_apis_messages_next_to_its_fields(bridge, web):
    create(bridge, name="cms", type="webhook", url="https://hooks.example.test/in")
    response = post(web, "/endpoints/cms/replay", state="everything", since="yesterday")
    assert response.status_code == 422
    errors = field_errors(response.get_data(as_text=True))
    assert set(errors) == {"state", "since"}
    assert 'value="yesterday"' in response.get_data(as_text=True)


def test_disable_holds_and_enable_releases_held_deliveries(bridge, web, receiver, deliver):
    client, _ = web
    create(bridge, name="cms", type="webhook", url=receiver.url + "/hook")
    post(web, "/endpoints/cms/disable")
    shown = page(client, "/endpoints/cms")
    assert flashes(shown)[0][0] == "success"
    assert "disabled by an operator" in shown
    completed_watch_of(bridge, "a-1", "cms")
    assert deliver(advance=5).claimed == 0
    [(delivery_id, state, _)] = deliveries(bridge)
    assert state == "pending"
    assert not receiver.requests
    assert re.search(r'data-field="held">1<', page(client, "/endpoints/cms"))
    assert re.search(r'data-field="held">1<', page(client, "/endpoints"))

    post(web, "/endpoints/cms/enable")
    shown = page(client, "/endpoints/cms")
    assert flashes(shown) == [("success", "Enabled: 1 held delivery goes out now, in order.")]
    assert re.search(r'data-field="held">0<', shown)
    assert deliver().sent == 1
    assert deliveries(bridge) == [(delivery_id, "succeeded", 1)]
    assert len(receiver.requests) == 1
    post(web, "/endpoints/cms/enable")
    assert flashes(page(client, "/endpoints/cms"))[0][0] == "info"


def test_edit_changes_fields_for_every_watch_and_shows_refusals(bridge, web):
    client, _ = web
    create(bridge, name="chat", type="slack_webhook",
           url=f"https://hooks.example.test/services/T000/B000/{SLACK_CREDENTIAL}")  # fmt: skip
    refused = post(web, "/endpoints/chat/edit", url="", description="x",
                   rate_limit_per_second="fast")  # fmt: skip
    assert refused.status_code == 422
    assert set(field_errors(refused.get_data(as_text=True))) == {"rate_limit_per_second"}
    saved = post(web, "/endpoints/chat/edit", url="", description="the newsroom",
                 rate_limit_per_second="4")  # fmt: skip
    assert saved.status_code == 303
    row = endpoint_row(bridge, "chat")
    assert (row.description, row.rate_limit_per_second) == ("the newsroom", 4.0)
    assert row.url is not None
    assert row.url.endswith(SLACK_CREDENTIAL)
    assert flashes(page(client, "/endpoints/chat"))[0][0] == "success"
    cleared = post(web, "/endpoints/chat/edit", url="", description="", rate_limit_per_second="")
    assert cleared.status_code == 303
    row = endpoint_row(bridge, "chat")
    assert (row.description, row.rate_limit_per_second) == (None, None)


def test_delete_is_refused_while_a_watching_watch_uses_it(bridge, web):
    client, _ = web
    create(bridge, name="cms", type="webhook", url="https://hooks.example.test/in")
    watch = bridge.register("a-1", targets=[{"endpoint": "cms"}])
    response = post(web, "/endpoints/cms/delete")
    assert response.headers["Location"] == "/endpoints/cms"
    [(kind, message)] = flashes(page(client, "/endpoints/cms"))
    assert kind == "error"
    assert message.startswith("Not deleted: 1 watching watch")
    post(web, f"/watches/{watch['id']}/stop")
    assert flashes(page(client, f"/watches/{watch['id']}"))[0][1].startswith("Stopped")
    deleted = post(web, "/endpoints/cms/delete")
    assert deleted.headers["Location"] == "/endpoints"
    [(kind, message)] = flashes(page(client, "/endpoints"))
    assert kind == "success"
    assert message.startswith("Deleted endpoint cms.")
    assert client.get("/endpoints/cms").status_code == 404


# --- watches and the registration form ------------------------------------------------------------


def registration(csrf: str, *endpoints: str, **fields: str) -> MultiDict:
    data = MultiDict({"csrf_token": csrf, "workspace": "ws", "project_id": "1", "asset_id": "a1",
                      "events": "analysis.completed", **fields})  # fmt: skip
    for name in endpoints:
        data.add("endpoints", name)
    return data


def test_the_registration_form_picks_endpoints_and_the_watch_links_them(bridge, web):
    client, csrf = web
    create(bridge, name="cms", type="webhook", url="https://hooks.example.test/in")
    create(bridge, name="chat", type="slack", channel="#media")
    form = page(client, "/watches/new")
    assert 'name="endpoints" value="cms"' in form
    assert 'name="endpoints" value="chat"' in form
    data = registration(csrf, "cms", "chat", webhook_url="https://hooks.example.test/own")
    response = client.post("/watches/new", data=data)
    assert response.status_code == 303, field_errors(response.get_data(as_text=True))
    watch_id = response.headers["Location"].split("/")[2]
    targets = bridge.watch(watch_id)["targets"]
    assert [(t["type"], t.get("endpoint")) for t in targets] == [
        ("webhook", None), ("webhook", "cms"), ("slack", "chat")]  # fmt: skip
    shown = page(client, f"/watches/{watch_id}")
    links = re.findall(r'<a href="(/endpoints/[^"]+)" data-field="endpoint-link">', shown)
    assert links == ["/endpoints/cms", "/endpoints/chat"]


def test_the_form_files_a_reference_to_no_endpoint_under_the_checkboxes(bridge, web):
    client, csrf = web
    create(bridge, name="cms", type="webhook", url="https://hooks.example.test/in")
    response = client.post("/watches/new", data=registration(csrf, "cms", "gone"))
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert field_errors(text) == {"endpoints": ["names no endpoint: 'gone'"]}
    assert re.search(r'value="cms"\s+checked', text)
    assert bridge.client.get("/api/v1/watches", headers=AUTH).json["items"] == []


def test_the_endpoint_page_lists_the_latest_deliveries_newest_first(bridge, web, monkeypatch):
    from app.dashboard import endpoint_queries

    client, _ = web
    create(bridge, name="cms", type="webhook", url="https://hooks.example.test/in")
    for asset_id in ("a-1", "a-2", "a-3"):
        completed_watch_of(bridge, asset_id, "cms")
    ids = [delivery_id for delivery_id, _state, _attempts in deliveries(bridge)]
    monkeypatch.setattr(endpoint_queries, "DELIVERIES_SHOWN", 2)
    shown = page(client, "/endpoints/cms")
    assert re.findall(r'<tr data-delivery-id="(dlv_\w+)">', shown) == ids[::-1][:2]
    assert "The latest 2 of 3." in shown
