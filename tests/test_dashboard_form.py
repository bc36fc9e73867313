"""Registering a watch through the dashboard's form: the API's body, the API's rules and messages."""

from __future__ import annotations

import re

import pytest
from werkzeug.datastructures import MultiDict

from app.dashboard.watch_form import field_for_pointer, read_form
from tests.dashboardtools import field_errors, sign_in

TOKEN = {"Authorization": "Bearer test-api-token"}
DEFAULT_EVENTS = [
    "analysis.completed", "analysis.failed", "analysis.cancelled", "watch.expired", "watch.error",
]  # fmt: skip


def form_data(csrf: str, **fields: object) -> MultiDict:
    data = MultiDict({"csrf_token": csrf, "workspace": "ws", "project_id": "1", "asset_id": "a1"})
    events = fields.pop("events", DEFAULT_EVENTS)
    for name, value in fields.items():
        data[name] = value
    for event in events:  # type: ignore[union-attr]
        data.add("events", event)
    return data


def test_the_form_makes_the_apis_body():
    submitted = MultiDict(
        {
            "workspace": " ws ", "project_id": "1234", "asset_id": "5678", "api": "index",
            "webhook_url": "https://hooks.example.test/mi", "webhook_secret": "",
            "slack_channel": "C0123456789", "slack_webhook_url": "https://hooks.example.test/s",
            "labels": "cms_id = abc-123\n\nteam=video\n", "timeout_seconds": "86400",
        }
    )  # fmt: skip
    form = read_form(submitted, ["analysis.completed", "analysis.status_changed"])
    assert form.body == {
        "workspace": "ws",
        "project_id": "1234",
        "asset_id": "5678",
        "api": "index",
        "targets": [
            {"type": "webhook", "url": "https://hooks.example.test/mi"},
            {"type": "slack", "channel": "C0123456789"},
            {"type": "slack_webhook", "url": "https://hooks.example.test/s"},
        ],
        "labels": {"cms_id": "abc-123", "team": "video"},
        "events": ["analysis.completed", "analysis.status_changed"],
        "timeout_seconds": 86400,
    }
    assert form.errors == {}


@pytest.mark.parametrize(
    ("pointer", "field"),
    [
        ("#/asset_id", "asset_id"),
        ("#/targets", "targets"),
        ("#/targets/0/url", "webhook_url"),
        ("#/targets/0/secret", "webhook_secret"),
        ("#/targets/1/channel", "slack_channel"),
        ("#/targets/2/url", "slack_webhook_url"),
        ("#/targets/2/type", "slack_webhook_url"),
        ("#/targets/7", "targets"),
        ("#/labels/a~1b", "labels"),
        ("#/events/0", "events"),
        ("#/timeout_seconds", "timeout_seconds"),
        ("#/surprise", "form"),
        ("#", "form"),
    ],
)
def test_pointers_map_to_fields(pointer, field):
    assert field_for_pointer(pointer, ["webhook", "slack", "slack_webhook"]) == field


def test_a_valid_form_registers_and_shows_the_generated_secret_once(client, csrf):
    data = form_data(csrf, webhook_url="https://hooks.example.test/mi", labels="cms_id=abc-123")
    response = client.post("/watches/new", data=data)
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    (secret,) = re.findall(r'value="(whsec_[A-Za-z0-9+/=]+)"', html)
    (watch_id,) = set(re.findall(r"/watches/(wch_[0-9A-Z]{26})", html))
    watch = client.get(f"/api/v1/watches/{watch_id}", headers=TOKEN).json
    assert (watch["workspace"], watch["asset_id"], watch["labels"]) == (
        "ws",
        "a1",
        {"cms_id": "abc-123"},
    )
    assert watch["events"] == DEFAULT_EVENTS
    assert "secret" not in watch["targets"][0]
    assert secret not in client.get(f"/watches/{watch_id}").get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"


def test_a_given_secret_is_kept_and_not_shown(client, csrf):
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" + "bbbbbbbbbbbb"
    data = form_data(csrf, webhook_url="https://hooks.example.test/mi", webhook_secret=secret)
    response = client.post("/watches/new", data=data)
    assert response.status_code == 303
    assert "whsec_" not in client.get(response.headers["Location"]).get_data(as_text=True)


BAD_FORM = {
    "asset_id": "a b",
    "webhook_url": "ftp://hooks.example.test/x",
    "webhook_secret": "not-a-secret",
    "slack_channel": "no spaces allowed",
    "slack_webhook_url": "http://10.1.2.3/hook",
    "labels": "k" * 65 + "=v\nlong=" + "v" * 257,
    "timeout_seconds": "59",
}
BAD_BODY = {
    "workspace": "ws",
    "project_id": "1",
    "asset_id": "a b",
    "targets": [
        {"type": "webhook", "url": "ftp://hooks.example.test/x", "secret": "not-a-secret"},
        {"type": "slack", "channel": "no spaces allowed"},
        {"type": "slack_webhook", "url": "http://10.1.2.3/hook"},
    ],
    "labels": {"k" * 65: "v", "long": "v" * 257},
    "events": DEFAULT_EVENTS,
    "timeout_seconds": 59,
}


def test_the_form_shows_the_apis_messages_field_by_field(client, csrf):
    response = client.post("/watches/new", data=form_data(csrf, **BAD_FORM))
    assert response.status_code == 422
    shown = field_errors(response.get_data(as_text=True))
    api = client.post("/api/v1/watches", json=BAD_BODY, headers=TOKEN)
    assert api.status_code == 422
    expected: dict[str, list[str]] = {}
    for error in api.json["errors"]:
        field = field_for_pointer(error["pointer"], ["webhook", "slack", "slack_webhook"])
        detail = error["detail"]
        if field == "labels":
            detail = f"{error['pointer'].split('/')[2]}: {detail}"
        expected.setdefault(field, []).append(detail)
    assert shown == expected
    assert set(shown) == {
        "asset_id", "webhook_url", "webhook_secret", "slack_channel", "slack_webhook_url",
        "labels", "timeout_seconds",
    }  # fmt: skip
    assert shown["slack_webhook_url"] == ["resolves to a private address: 10.1.2.3"]


def test_the_form_shows_the_refused_private_url_message(client, csrf):
    data = form_data(csrf, webhook_url="http://127.0.0.1:8080/hook")
    html = client.post("/watches/new", data=data).get_data(as_text=True)
    assert field_errors(html) == {"webhook_url": ["resolves to a loopback address: 127.0.0.1"]}
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="webhook_url-error-1"' in html
    assert 'value="http://127.0.0.1:8080/hook"' in html  # kept for correction


def test_missing_fields_and_targets_say_required(client, csrf):
    data = MultiDict({"csrf_token": csrf, "events": "analysis.completed"})
    html = client.post("/watches/new", data=data).get_data(as_text=True)
    assert field_errors(html) == {
        "workspace": ["required"], "project_id": ["required"], "asset_id": ["required"],
        "targets": ["required"],
    }  # fmt: skip


def test_form_only_problems_are_shown_with_the_apis(client, csrf):
    data = form_data(
        csrf,
        webhook_url="https://hooks.example.test/mi",
        labels="no equals sign\na=1\na=2",
        timeout_seconds="soon",
        events=[],
    )
    shown = field_errors(client.post("/watches/new", data=data).get_data(as_text=True))
    assert shown["labels"] == [
        "line 1: write each label as key=value",
        "line 3: a is given twice",
    ]
    assert shown["timeout_seconds"] == ["must be a number of seconds from 60 to 2592000 (30 days)"]
    assert shown["events"] == ["must name at least one event"]


def test_a_secret_without_a_url_asks_for_the_url(client, csrf):
    data = form_data(csrf, webhook_secret="whsec_" + "A" * 44)
    shown = field_errors(client.post("/watches/new", data=data).get_data(as_text=True))
    assert shown == {"webhook_url": ["required"]}


def test_default_targets_make_targets_optional(app_factory):
    defaults = '[{"type": "slack", "channel": "C0123456789"}]'
    client = app_factory(BRIDGE_DEFAULT_TARGETS=defaults).test_client()
    csrf = sign_in(client)
    page = client.get("/watches/new").get_data(as_text=True)
    assert "or none to use the bridge's default targets" in page
    response = client.post("/watches/new", data=form_data(csrf))
    assert response.status_code == 303
