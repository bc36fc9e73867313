"""``/api/v1/watches``: the 201 shape, secrets shown once, masking, defaults, listing and stopping."""

import base64
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.db import db
from app.models import Asset, Target, Watch
from tests.watchtools import (
    DEFAULT_EVENTS,
    PUBLIC_HOOK,
    assert_problem,
    parse_time,
    secret_of,
    watch_body,
)

WATCHES = "/api/v1/watches"
SLACK_HOOK = "https://hooks.slack.test/services/T000/B000/XXXXSECRETXXXX"
WATCH_KEYS = {
    "id",
    "state",
    "workspace",
    "project_id",
    "asset_id",
    "api",
    "status",
    "index_id",
    "message",
    "reason",
    "labels",
    "events",
    "targets",
    "created_at",
    "updated_at",
    "deadline_at",
    "finished_at",
    "last_polled_at",
    "next_poll_at",
    "poll_count",
    "last_error",
    "stage",
    "stalled_after_seconds",
    "workflow",
    "history",
    "deliveries",
}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def api(client, auth_headers, resolver):
    """Small client of the watches API with the test token."""
    resolver.table["hooks.slack.test"] = ["93.184.216.35"]
    return Api(client, auth_headers)


class Api:
    def __init__(self, client, headers):
        self.client, self.headers = client, headers

    def create(self, **fields):
        response = self.client.post(WATCHES, json=watch_body(**fields), headers=self.headers)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def get(self, watch_id):
        response = self.client.get(f"{WATCHES}/{watch_id}", headers=self.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def list(self, **query):
        response = self.client.get(WATCHES, query_string=query, headers=self.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def delete(self, watch_id):
        return self.client.delete(f"{WATCHES}/{watch_id}", headers=self.headers)


# --- the 201 answer -------------------------------------------------------------------------------


def test_201_has_the_watch_and_its_location(client, auth_headers, resolver):
    labels = {"cms_id": "abc-123"}
    response = client.post(WATCHES, json=watch_body(labels=labels), headers=auth_headers)
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    watch = response.get_json()
    assert set(watch) == WATCH_KEYS
    assert re.fullmatch(r"wch_[0-9A-HJKMNP-TV-Z]{26}", watch["id"])
    assert response.headers["Location"].endswith(f"/api/v1/watches/{watch['id']}")
    assert watch["state"] == "watching"
    assert (watch["workspace"], watch["project_id"], watch["asset_id"]) == (
        "my-workspace",
        "1234",
        "5678",
    )
    assert watch["labels"] == labels
    assert watch["status"] is None
    assert watch["reason"] is None
    assert watch["finished_at"] is None
    assert watch["poll_count"] == 0
    assert watch["history"] == []
    assert watch["deliveries"] == []
    for field in ("created_at", "updated_at", "deadline_at", "next_poll_at"):
        assert RFC3339_UTC.match(watch[field]), (field, watch[field])
    (target,) = watch["targets"]
    assert re.fullmatch(r"tgt_[0-9A-Z]{26}", target["id"])
    assert (target["type"], target["url"], target["disabled"]) == ("webhook", PUBLIC_HOOK, False)

    location = client.get(response.headers["Location"], headers=auth_headers)
    assert location.status_code == 200
    assert location.get_json()["id"] == watch["id"]


def test_the_first_poll_is_due_at_registration(clocked_app, clock, auth_headers):
    response = clocked_app.test_client().post(WATCHES, json=watch_body(), headers=auth_headers)
    watch = response.get_json()
    assert parse_time(watch["created_at"]) == clock.now
    assert parse_time(watch["next_poll_at"]) <= clock.now


def test_a_generated_secret_is_shown_once(api):
    watch = api.create()
    (target,) = watch["targets"]
    secret = target["secret"]
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    assert 24 <= len(key) <= 64

    assert "secret" not in api.get(watch["id"])["targets"][0]
    assert "secret" not in api.list()["items"][0]["targets"][0]
    assert secret not in json.dumps(api.list())
    assert secret not in api.delete(watch["id"]).get_data(as_text=True)


def test_generated_secrets_differ_per_target_and_watch(api):
    first = api.create(targets=[{"type": "webhook", "url": PUBLIC_HOOK}] * 2)
    second = api.create()
    secrets = [t["secret"] for t in first["targets"]] + [second["targets"][0]["secret"]]
    assert len(set(secrets)) == 3


def test_the_stored_secret_is_the_one_shown(app, api):
    watch = api.create()
    with app.app_context():
        stored = db.session.get(Target, watch["targets"][0]["id"]).secret
    assert stored == watch["targets"][0]["secret"]


def test_a_given_secret_is_never_echoed(app, api):
    secret = secret_of(32)
    watch = api.create(
        targets=[
            {"type": "webhook", "url": PUBLIC_HOOK, "secret": secret},
            {"type": "webhook", "url": PUBLIC_HOOK + "/2"},
        ]
    )
    given, generated = watch["targets"]
    assert "secret" not in given
    assert "secret" in generated
    for text in (
        json.dumps(watch),
        json.dumps(api.get(watch["id"])),
        json.dumps(api.list()),
        api.delete(watch["id"]).get_data(as_text=True),
    ):
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text
    with app.app_context():
        assert db.session.get(Target, given["id"]).secret == secret


def test_a_slack_webhook_url_is_masked_everywhere(api):
    watch = api.create(targets=[{"type": "slack_webhook", "url": SLACK_HOOK}])
    masked = "https://hooks.slack.test/services/T000/B000/****"
    fetched = api.get(watch["id"])
    listed = api.list()["items"][0]
    stopped = api.delete(watch["id"]).get_json()
    for shown in (watch, fetched, listed, stopped):
        (target,) = shown["targets"]
        assert target["url"] == masked
        assert "secret" not in target
        assert "XXXXSECRETXXXX" not in json.dumps(shown)


@pytest.mark.parametrize(
    "url",
    [
        SLACK_HOOK + "?token=XXXXSECRETXXXX#x",
        SLACK_HOOK + "/",  # a trailing slash
        "https://hooks.slack.test/XXXXSECRETXXXX",
        # Slack-compatible tools keep their key elsewhere in the path:
        "https://hooks.slack.test/hooks/XXXXSECRETXXXXabcdefghij",  # Mattermost-style
        "https://hooks.slack.test/api/webhooks/112233445566778899/XXXXSECRETXXXXabcdef/slack",
    ],
)
def test_no_form_of_slack_webhook_url_shows_its_credential(api, url):
    watch = api.create(targets=[{"type": "slack_webhook", "url": url}])
    shown = watch["targets"][0]["url"]
    assert shown.startswith("https://hooks.slack.test/")
    assert shown.endswith("****")
    for text in (json.dumps(watch), json.dumps(api.get(watch["id"])), json.dumps(api.list())):
        assert "XXXXSECRETXXXX" not in text
        assert "112233445566778899" not in text


def test_targets_keep_their_order_and_kinds(api):
    targets = [
        {"type": "slack", "channel": "C0123456789"},
        {"type": "webhook", "url": PUBLIC_HOOK},
        {"type": "slack_webhook", "url": SLACK_HOOK},
    ]
    watch = api.create(targets=targets)
    assert [t["type"] for t in watch["targets"]] == ["slack", "webhook", "slack_webhook"]
    assert watch["targets"][0]["channel"] == "C0123456789"
    assert [t["type"] for t in api.get(watch["id"])["targets"]] == [
        "slack",
        "webhook",
        "slack_webhook",
    ]


# --- defaults -------------------------------------------------------------------------------------


def test_defaults_events_api_and_deadline(api):
    watch = api.create()
    assert watch["events"] == DEFAULT_EVENTS
    assert watch["api"] == "video-assets"
    assert watch["labels"] == {}
    deadline = parse_time(watch["deadline_at"]) - parse_time(watch["created_at"])
    assert deadline == timedelta(hours=72)


def test_default_api_comes_from_mi_default_api(app_factory, auth_headers):
    client = app_factory(MI_DEFAULT_API="index").test_client()
    watch = client.post(WATCHES, json=watch_body(), headers=auth_headers).get_json()
    assert watch["api"] == "index"
    explicit = client.post(WATCHES, json=watch_body(api="assets"), headers=auth_headers)
    assert explicit.get_json()["api"] == "assets"


def test_default_deadline_comes_from_bridge_watch_timeout(app_factory, clock, auth_headers):
    app = app_factory(clock=clock, BRIDGE_WATCH_TIMEOUT="3600.5")
    client = app.test_client()
    watch = client.post(WATCHES, json=watch_body(), headers=auth_headers).get_json()
    assert parse_time(watch["deadline_at"]) == clock.now + timedelta(seconds=3600.5)
    given = client.post(WATCHES, json=watch_body(timeout_seconds=120), headers=auth_headers)
    assert parse_time(given.get_json()["deadline_at"]) == clock.now + timedelta(seconds=120)


def test_duplicate_events_are_kept_once(api):
    events = ["watch.error", "analysis.completed", "watch.error"]
    assert api.create(events=events)["events"] == ["watch.error", "analysis.completed"]


DEFAULT_TARGETS = [
    {"type": "webhook", "url": "https://hooks.example.test/default", "secret": secret_of(40)},
    {"type": "slack", "channel": "C0DEFAULT01"},
]


def test_default_targets_are_used_when_none_are_named(app_factory, auth_headers):
    app = app_factory(BRIDGE_DEFAULT_TARGETS=json.dumps(DEFAULT_TARGETS))
    client = app.test_client()
    response = client.post(WATCHES, json=watch_body(targets=None), headers=auth_headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    webhook, slack = response.get_json()["targets"]
    assert (webhook["type"], webhook["url"]) == ("webhook", "https://hooks.example.test/default")
    assert "secret" not in webhook  # the deployer's own secret, not a generated one
    assert (slack["type"], slack["channel"]) == ("slack", "C0DEFAULT01")
    with app.app_context():
        assert db.session.get(Target, webhook["id"]).secret == DEFAULT_TARGETS[0]["secret"]

    body = watch_body()
    del body["targets"]
    absent = client.post(WATCHES, json=body, headers=auth_headers).get_json()
    assert [t["type"] for t in absent["targets"]] == ["webhook", "slack"]

    named = client.post(WATCHES, json=watch_body(), headers=auth_headers).get_json()
    assert [t["url"] for t in named["targets"]] == [PUBLIC_HOOK]


def test_default_targets_still_refuse_an_empty_list(app_factory, auth_headers):
    client = app_factory(BRIDGE_DEFAULT_TARGETS=json.dumps(DEFAULT_TARGETS)).test_client()
    response = client.post(WATCHES, json=watch_body(targets=[]), headers=auth_headers)
    assert_problem(response, 422)


# --- listing --------------------------------------------------------------------------------------


def test_list_is_newest_first(api):
    ids = [api.create(asset_id=f"a{n}")["id"] for n in range(5)]
    page = api.list()
    assert [w["id"] for w in page["items"]] == ids[::-1]
    assert page["next_cursor"] is None


def test_list_items_have_the_watch_shape(api):
    api.create()
    (item,) = api.list()["items"]
    assert set(item) == WATCH_KEYS


def test_cursor_pagination_has_no_duplicates_or_gaps(api):
    ids = [api.create(asset_id=f"a{n}")["id"] for n in range(7)]
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 3} if cursor is None else {"limit": 3, "cursor": cursor}
        page = api.list(**query)
        pages += 1
        assert len(page["items"]) <= 3
        seen += [w["id"] for w in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == ids[::-1]


def test_a_page_that_ends_exactly_at_the_last_watch_has_no_next_cursor(api):
    for n in range(4):
        api.create(asset_id=f"a{n}")
    first = api.list(limit=2)
    assert first["next_cursor"] is not None
    second = api.list(limit=2, cursor=first["next_cursor"])
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None


def test_pagination_is_stable_while_watches_are_added(api):
    old = [api.create(asset_id=f"a{n}")["id"] for n in range(4)]
    first = api.list(limit=2)
    newer = api.create(asset_id="late")["id"]
    second = api.list(limit=2, cursor=first["next_cursor"])
    seen = [w["id"] for w in first["items"] + second["items"]]
    assert seen == old[::-1]
    assert newer not in seen


def test_list_filters_by_state_workspace_and_project(api):
    a = api.create(workspace="ws-a", project_id="1")["id"]
    b = api.create(workspace="ws-a", project_id="2")["id"]
    c = api.create(workspace="ws-b", project_id="1")["id"]
    assert api.delete(b).status_code == 200

    def ids(**query):
        return [w["id"] for w in api.list(**query)["items"]]

    assert ids(workspace="ws-a") == [b, a]
    assert ids(project_id="1") == [c, a]
    assert ids(workspace="ws-a", project_id="1") == [a]
    assert ids(state="stopped") == [b]
    assert ids(state="watching") == [c, a]
    assert ids(state="watching", workspace="ws-a") == [a]
    assert ids(state="completed") == []
    assert ids(workspace="nobody") == []


def test_filters_and_cursor_combine(api):
    mine = [api.create(workspace="mine", asset_id=f"m{n}")["id"] for n in range(3)]
    api.create(workspace="other")
    first = api.list(workspace="mine", limit=2)
    second = api.list(workspace="mine", limit=2, cursor=first["next_cursor"])
    assert [w["id"] for w in first["items"] + second["items"]] == mine[::-1]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"limit": ""},
        {"cursor": "garbage"},
        {"cursor": "wch_short"},
        {"cursor": "'; DROP TABLE watches; --"},
        {"state": "bogus"},
        {"state": "WATCHING"},
        {"state": ""},
    ],
    ids=repr,
)
def test_bad_list_parameters_are_400(client, auth_headers, query):
    assert_problem(client.get(WATCHES, query_string=query, headers=auth_headers), 400)


@pytest.mark.parametrize(
    "state", ["watching", "completed", "failed", "cancelled", "expired", "stopped", "error"]
)
def test_every_contract_state_is_a_valid_filter(client, auth_headers, state):
    response = client.get(WATCHES, query_string={"state": state}, headers=auth_headers)
    assert response.status_code == 200


def test_limits_of_1_and_200_are_accepted(api):
    api.create()
    assert len(api.list(limit=1)["items"]) == 1
    assert len(api.list(limit=200)["items"]) == 1


# --- one watch and stopping -----------------------------------------------------------------------


def test_get_one_watch_matches_the_201_body(api):
    created = api.create(labels={"k": "v"})
    created["targets"][0].pop("secret")
    assert api.get(created["id"]) == created


def test_delete_stops_a_watch(clocked_app, clock, auth_headers):
    client = clocked_app.test_client()
    watch = client.post(WATCHES, json=watch_body(), headers=auth_headers).get_json()
    clock.advance(90)
    response = client.delete(f"{WATCHES}/{watch['id']}", headers=auth_headers)
    assert response.status_code == 200
    stopped = response.get_json()
    assert stopped["state"] == "stopped"
    assert stopped["reason"] == "stopped"
    assert parse_time(stopped["finished_at"]) == clock.now
    assert stopped["next_poll_at"] is None
    fetched = client.get(f"{WATCHES}/{watch['id']}", headers=auth_headers).get_json()
    assert fetched["state"] == "stopped"
    with clocked_app.app_context():
        asset = db.session.scalars(select(Asset)).one()
        assert asset.next_poll_at is None  # nobody watches it any more: no more polls


def test_delete_of_an_ended_watch_is_200_and_changes_nothing(clocked_app, clock, auth_headers):
    client = clocked_app.test_client()
    watch = client.post(WATCHES, json=watch_body(), headers=auth_headers).get_json()
    first = client.delete(f"{WATCHES}/{watch['id']}", headers=auth_headers).get_json()
    clock.advance(600)
    again = client.delete(f"{WATCHES}/{watch['id']}", headers=auth_headers)
    assert again.status_code == 200
    assert again.get_json() == first


def test_delete_of_a_completed_watch_keeps_it_completed(app, api):
    watch = api.create()
    with app.app_context():
        db.session.execute(
            update(Watch)
            .where(Watch.id == watch["id"])
            .values(state="completed", status="ANALYZE_COMPLETED", finished_at=Watch.created_at)
        )
        db.session.commit()
    response = api.delete(watch["id"])
    assert response.status_code == 200
    ended = response.get_json()
    assert (ended["state"], ended["status"], ended["reason"]) == (
        "completed",
        "ANALYZE_COMPLETED",
        None,
    )
    assert api.get(watch["id"])["state"] == "completed"


def test_stopping_one_of_two_watches_keeps_the_asset_polled(app, api):
    first = api.create()
    second = api.create()
    api.delete(first["id"])
    with app.app_context():
        assert db.session.scalars(select(Asset)).one().next_poll_at is not None
    assert api.get(second["id"])["next_poll_at"] is not None


# --- shared assets --------------------------------------------------------------------------------


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_two_watches_of_one_asset_and_generation_share_one_asset_row(app, api):
    first = api.create(api="assets")
    second = api.create(api="assets", project_id=1234)  # the number and the string are one asset
    third = api.create(api="index")
    fourth = api.create(api="assets", asset_id="other")
    with app.app_context():
        assert count(Watch) == 4
        assert count(Asset) == 3
        pks = {
            w.id: w.asset_pk
            for w in db.session.scalars(
                select(Watch).where(
                    Watch.id.in_([first["id"], second["id"], third["id"], fourth["id"]])
                )
            )
        }
        assert pks[first["id"]] == pks[second["id"]]
        assert len({pks[first["id"]], pks[third["id"]], pks[fourth["id"]]}) == 3
        shared = db.session.get(Asset, pks[first["id"]])
        assert (shared.workspace, shared.project_id, shared.asset_id, shared.api) == (
            "my-workspace",
            "1234",
            "5678",
            "assets",
        )
