"""``POST /api/v1/watches`` validation: every rule answers 422 with an ``errors`` list of JSON pointers."""

import base64
import json
from datetime import timedelta

import pytest

from tests.watchtools import (
    OMIT,
    PUBLIC_HOOK,
    assert_problem,
    parse_time,
    pointers,
    secret_of,
    watch_body,
)

WATCHES = "/api/v1/watches"


@pytest.fixture
def post(client, auth_headers):
    """``post(body)``: POST a registration body with the test token."""

    def send(body):
        return client.post(WATCHES, json=body, headers=auth_headers)

    return send


def invalid(response):
    """The pointers of a 422 answer (asserting it is one)."""
    body = assert_problem(response, 422)
    assert body["errors"], body
    for error in body["errors"]:
        assert error["pointer"].startswith("#")
        assert isinstance(error["detail"], str)
        assert error["detail"]
    return pointers(response)


# --- ids ------------------------------------------------------------------------------------------


IDS = ("workspace", "project_id", "asset_id")


@pytest.mark.parametrize(
    ("given", "stored"),
    [(1234, "1234"), ("1234", "1234"), ("abc.DEF_-9", "abc.DEF_-9"), ("x" * 128, "x" * 128)],
)
def test_ids_may_be_strings_or_numbers_and_are_stored_as_strings(post, given, stored):
    response = post(watch_body(**dict.fromkeys(IDS, given)))
    assert response.status_code == 201, response.get_data(as_text=True)
    watch = response.get_json()
    assert [watch[field] for field in IDS] == [stored] * 3


@pytest.mark.parametrize(
    "value",
    ["", "x" * 129, "a b", "a/b", "ä", "abc\n", "a:b", True, 1.5, None, [], {}, 10**200],
    ids=repr,
)
def test_ids_outside_the_pattern_are_refused(post, value):
    assert invalid(post(watch_body(**dict.fromkeys(IDS, value)))) == ["#/" + f for f in IDS]


@pytest.mark.parametrize("field", IDS)
def test_one_bad_id_is_reported_alone(post, field):
    assert invalid(post(watch_body(**{field: "x" * 129}))) == [f"#/{field}"]


@pytest.mark.parametrize("field", IDS)
def test_ids_are_required(post, field):
    response = post(watch_body(**{field: OMIT}))
    assert invalid(response) == [f"#/{field}"]
    assert response.get_json()["errors"][0]["detail"] == "required"


# --- unknown fields and events --------------------------------------------------------------------


def test_unknown_fields_are_refused_at_every_level(post):
    body = watch_body(
        colour="blue",
        targets=[
            {"type": "webhook", "url": PUBLIC_HOOK, "verify": False},
            {"type": "slack", "channel": "C0123456789", "url": PUBLIC_HOOK},
        ],
    )
    response = post(body)
    assert sorted(invalid(response)) == ["#/colour", "#/targets/0/verify", "#/targets/1/url"]
    assert {error["detail"] for error in response.get_json()["errors"]} == {"unknown field"}


def test_unknown_event_names_are_refused_by_position(post):
    body = watch_body(events=["analysis.completed", "analysis.started", "bridge.test"])
    assert invalid(post(body)) == ["#/events/1", "#/events/2"]


def test_every_subscribable_event_is_accepted(post):
    events = [
        "analysis.completed",
        "analysis.failed",
        "analysis.cancelled",
        "analysis.status_changed",
        "watch.expired",
        "watch.error",
    ]
    response = post(watch_body(events=events))
    assert response.status_code == 201
    assert response.get_json()["events"] == events


@pytest.mark.parametrize("events", [[], "analysis.completed", None])
def test_events_must_be_a_non_empty_list(post, events):
    assert invalid(post(watch_body(events=events))) == ["#/events"]


# --- targets --------------------------------------------------------------------------------------


def webhooks(count):
    return [{"type": "webhook", "url": f"{PUBLIC_HOOK}/{n}"} for n in range(count)]


def test_one_and_ten_targets_are_accepted(post):
    assert post(watch_body(targets=webhooks(1))).status_code == 201
    response = post(watch_body(targets=webhooks(10)))
    assert response.status_code == 201
    assert len(response.get_json()["targets"]) == 10


@pytest.mark.parametrize("targets", [[], webhooks(11), {}, "https://x.test/"], ids=repr)
def test_targets_outside_one_to_ten_are_refused(post, targets):
    assert invalid(post(watch_body(targets=targets))) == ["#/targets"]


def test_targets_are_required_without_default_targets(post):
    response = post(watch_body(targets=OMIT))
    assert invalid(response) == ["#/targets"]
    assert response.get_json()["errors"][0]["detail"] == "required"


@pytest.mark.parametrize(
    ("target", "pointer"),
    [
        ({"type": "webhook"}, "#/targets/0/url"),
        ({"type": "slack"}, "#/targets/0/channel"),
        ({"type": "slack_webhook"}, "#/targets/0/url"),
        (
            {"type": "slack_webhook", "url": PUBLIC_HOOK, "secret": secret_of(32)},
            "#/targets/0/secret",
        ),
        ({"type": "slack", "channel": "two words"}, "#/targets/0/channel"),
        ({"type": "slack", "channel": "C" * 81}, "#/targets/0/channel"),
        ({"type": "email", "to": "a@b.test"}, "#/targets/0/type"),
        ({"url": PUBLIC_HOOK}, "#/targets/0/type"),
        ({"type": "webhook", "url": ""}, "#/targets/0/url"),
        ({"type": "webhook", "url": 42}, "#/targets/0/url"),
        ("webhook", "#/targets/0"),
    ],
    ids=repr,
)
def test_target_types_and_their_fields(post, target, pointer):
    body = watch_body(targets=[{"type": "slack", "channel": "C0123456789"}, target])
    assert invalid(post(body)) == [pointer.replace("/0", "/1", 1)]


@pytest.mark.parametrize("channel", ["C0123456789", "#general", "ops-alerts.eu_1"])
def test_slack_channels_by_id_or_name(post, channel):
    response = post(watch_body(targets=[{"type": "slack", "channel": channel}]))
    assert response.status_code == 201
    assert response.get_json()["targets"][0]["channel"] == channel


# --- webhook secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [24, 32, 64])
def test_secrets_of_24_to_64_bytes_are_accepted(post, length):
    target = {"type": "webhook", "url": PUBLIC_HOOK, "secret": secret_of(length)}
    assert post(watch_body(targets=[target])).status_code == 201


@pytest.mark.parametrize(
    "secret",
    [
        secret_of(23),
        secret_of(65),
        secret_of(32).removeprefix("whsec_"),
        "WHSEC_" + secret_of(32).removeprefix("whsec_"),
        "whsec_not base64 at all!",
        "whsec_" + "A" * 31,  # bad padding
        "whsec_" + base64.urlsafe_b64encode(b"\xfb\xff\xbf" * 10).decode(),  # URL-safe alphabet
        "whsec_",
        32,
    ],
    ids=repr,
)
def test_malformed_secrets_are_refused(post, secret):
    target = {"type": "webhook", "url": PUBLIC_HOOK, "secret": secret}
    assert invalid(post(watch_body(targets=[target]))) == ["#/targets/0/secret"]


# --- labels ---------------------------------------------------------------------------------------


def test_label_limits_are_inclusive(post):
    labels = {f"k{n:02d}": "v" for n in range(19)}
    labels["k" * 64] = "v" * 256
    response = post(watch_body(labels=labels))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["labels"] == labels


def test_more_than_twenty_labels_are_refused(post):
    labels = {f"k{n:02d}": "v" for n in range(21)}
    assert invalid(post(watch_body(labels=labels))) == ["#/labels"]


def test_a_long_label_key_or_value_points_at_its_label(post):
    labels = {"k" * 65: "v", "ok": "v" * 257, "fine": "v"}
    assert sorted(invalid(post(watch_body(labels=labels)))) == [
        "#/labels/" + "k" * 65,
        "#/labels/ok",
    ]


def test_label_pointers_escape_slash_and_tilde(post):
    assert invalid(post(watch_body(labels={"a/b~c": "v" * 257}))) == ["#/labels/a~1b~0c"]


@pytest.mark.parametrize("value", [1, None, ["v"], {"v": 1}], ids=repr)
def test_label_values_are_strings(post, value):
    assert invalid(post(watch_body(labels={"cms": value}))) == ["#/labels/cms"]


@pytest.mark.parametrize("labels", [["cms", "v"], "cms=v", None], ids=repr)
def test_labels_are_an_object(post, labels):
    assert invalid(post(watch_body(labels=labels))) == ["#/labels"]


# --- timeout and api ------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [60, 60.5, 86400, 30 * 24 * 3600])
def test_timeouts_from_60_seconds_to_30_days_are_accepted(post, seconds):
    assert post(watch_body(timeout_seconds=seconds)).status_code == 201


@pytest.mark.parametrize("seconds", [59.9, 0, -60, 30 * 24 * 3600 + 1, "soon", [60]], ids=repr)
def test_timeouts_outside_the_range_are_refused(post, seconds):
    assert invalid(post(watch_body(timeout_seconds=seconds))) == ["#/timeout_seconds"]


def test_null_optional_fields_mean_their_defaults(post):
    response = post(watch_body(api=None, timeout_seconds=None))
    assert response.status_code == 201
    watch = response.get_json()
    assert watch["api"] == "video-assets"
    assert parse_time(watch["deadline_at"]) - parse_time(watch["created_at"]) == timedelta(hours=72)


@pytest.mark.parametrize("api", ["video-assets", "assets", "index"])
def test_each_api_generation_is_accepted(post, api):
    response = post(watch_body(api=api))
    assert response.status_code == 201
    assert response.get_json()["api"] == api


@pytest.mark.parametrize("api", ["v2", "VIDEO-ASSETS", "", 1], ids=repr)
def test_other_api_values_are_refused(post, api):
    assert invalid(post(watch_body(api=api))) == ["#/api"]


# --- the body as a whole --------------------------------------------------------------------------


def test_every_problem_is_reported_at_once(post):
    body = {
        "workspace": "has space",
        "asset_id": "x" * 129,
        "api": "v9",
        "targets": [
            {"type": "webhook", "url": "ftp://files.test/x", "secret": "whsec_short"},
            {"type": "slack"},
        ],
        "events": ["analysis.completed", "nope"],
        "labels": {"k": "v" * 257},
        "timeout_seconds": 10,
        "extra": True,
    }
    assert sorted(invalid(post(body))) == sorted(
        [
            "#/workspace",
            "#/project_id",
            "#/asset_id",
            "#/api",
            "#/targets/0/url",
            "#/targets/0/secret",
            "#/targets/1/channel",
            "#/events/1",
            "#/labels/k",
            "#/timeout_seconds",
            "#/extra",
        ]
    )


@pytest.mark.parametrize("document", [[], [watch_body()], "watch", 42, None, True], ids=repr)
def test_a_body_that_is_not_an_object_is_refused(client, auth_headers, document):
    response = client.post(
        WATCHES, data=json.dumps(document), content_type="application/json", headers=auth_headers
    )
    assert invalid(response) == ["#"]


def test_nothing_is_stored_for_an_invalid_body(client, auth_headers, post):
    invalid(post(watch_body(asset_id="")))
    assert client.get(WATCHES, headers=auth_headers).get_json()["items"] == []
