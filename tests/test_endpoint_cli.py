"""``mi-bridge endpoint ...`` and ``mi-bridge watch add --endpoint``: in process through click's
runner against a test app, refusals compared with the API's own; ``--help`` as a real process."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.cli.endpoint import endpoint_group
from app.cli.watch import watch_group
from app.db import db
from app.models import Delivery, Endpoint, Event, Target, Watch
from tests.fixtures import FakeClock
from tests.processes import BIN
from tests.watchtools import PUBLIC_HOOK, secret_of

SLACK_HOOK = "https://hooks.example.test/services/T000/B000/XXXX"


def run(app, group, *args: str):
    """``mi-bridge <group> ARGS`` in process against ``app``; stdout and stderr stay apart."""
    return app.test_cli_runner().invoke(group, list(args))


def endpoint(app, *args: str):
    return run(app, endpoint_group, *args)


def added(app, name: str, *options: str) -> dict:
    """``endpoint add NAME OPTIONS --json``, which must succeed; the new endpoint's JSON."""
    result = endpoint(app, "add", name, *options, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def row(app, name: str) -> Endpoint:
    with app.app_context():
        found = db.session.scalars(select(Endpoint).where(Endpoint.name == name)).one()
        db.session.expunge_all()
        return found


def watch_with(app, *names: str) -> dict:
    """A watching watch whose targets are the endpoints ``names``."""
    options = [item for name in names for item in ("--endpoint", name)]
    result = run(app, watch_group, "add", "ws", "1", "a", *options, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ended_delivery(app, watch: dict, state: str, at) -> str:
    """A delivery of a new event (created ``at``) to the watch's first target, ended in ``state``,
    as a worker leaves one; its id."""
    from app.models import new_id

    with app.app_context():
        target = db.session.get(Target, watch["targets"][0]["id"])
        event = Event(id=new_id("evt"), watch_id=watch["id"], type="watch.expired", body="{}")
        event.dedupe_key, event.created_at = event.id, at
        delivery = Delivery(event_id=event.id, target_id=target.id, watch_id=watch["id"])
        delivery.lane, delivery.state, delivery.attempt_count = target.endpoint_id, state, 3
        db.session.add_all([event, delivery])
        db.session.commit()
        return delivery.id


def delivery(app, delivery_id: str) -> Delivery:
    with app.app_context():
        found = db.session.scalars(select(Delivery).where(Delivery.id == delivery_id)).one()
        db.session.expunge_all()
        return found


# --- add, list, show -----------------------------------------------------------------------------


def test_add_prints_the_generated_secret_once_and_stores_it(app):
    result = endpoint(app, "add", "cms", "--url", PUBLIC_HOOK, "--description", "the CMS")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Created endpoint cms (ept_")
    assert lines[0].endswith(f"webhook {PUBLIC_HOOK}")
    (secret_line,) = [line for line in lines if "whsec_" in line]
    stored = row(app, "cms")
    assert secret_line.endswith(f"(shown only this once): {stored.secret}")
    assert '{"endpoint": "cms"}' in lines[-1]
    assert stored.description == "the CMS"
    for shown in (endpoint(app, "show", "cms"), endpoint(app, "show", stored.id, "--json")):
        assert shown.exit_code == 0
        assert "whsec_" not in shown.stdout


def test_add_json_is_the_api_shape_and_a_given_secret_is_not_echoed(app):
    given = secret_of(32)
    body = added(app, "cms", "--url", PUBLIC_HOOK, "--secret", given, "--rate-limit", "2.5")
    assert (body["name"], body["type"], body["url"]) == ("cms", "webhook", PUBLIC_HOOK)
    assert body["rate_limit_per_second"] == 2.5
    assert "secret" not in body
    assert row(app, "cms").secret == given
    slack = added(app, "chat", "--type", "slack_webhook", "--url", SLACK_HOOK)
    assert slack["url"] == "https://hooks.example.test/services/T000/B000/****"
    channel = added(app, "news", "--type", "slack", "--channel", "#newsroom")
    assert (channel["channel"], channel["url"]) == ("#newsroom", None)


def test_invalid_input_exits_2_with_the_api_422_messages(app, client, auth_headers):
    body = {"name": "Bad Name", "type": "webhook", "url": "ftp://hooks.example.test/x"}
    body |= {"channel": "C1", "secret": "nope", "rate_limit_per_second": 0.0}
    api = client.post("/api/v1/endpoints", json=body, headers=auth_headers)
    assert api.status_code == 422
    expected = sorted(f"{e['pointer']}: {e['detail']}" for e in api.get_json()["errors"])
    assert len(expected) == 5

    result = endpoint(
        app, "add", "Bad Name", "--url", "ftp://hooks.example.test/x", "--channel", "C1",
        "--secret", "nope", "--rate-limit", "0",
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout == ""
    assert sorted(result.stderr.splitlines()) == expected
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Endpoint)) == 0


def test_a_taken_name_exits_1_and_changes_nothing(app):
    first = added(app, "cms", "--url", PUBLIC_HOOK)
    again = endpoint(app, "add", "cms", "--type", "slack", "--channel", "C1")
    assert again.exit_code == 1
    assert "an endpoint named 'cms' exists already" in again.stderr
    assert row(app, "cms").id == first["id"]


def test_list_shows_every_endpoint_by_name(app):
    assert "No endpoints yet" in endpoint(app, "list").stdout
    added(app, "zeta", "--url", PUBLIC_HOOK)
    added(app, "alpha", "--type", "slack", "--channel", "C0123456789")
    watch_with(app, "zeta")
    table = endpoint(app, "list").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "TYPE",
        "DESTINATION",
        "STATE",
        "PENDING",
        "DEAD",
        "WATCHING",
    ]
    assert [line.split() for line in table[1:]] == [
        ["alpha", "slack", "C0123456789", "enabled", "0", "0", "0"],
        ["zeta", "webhook", PUBLIC_HOOK, "enabled", "0", "0", "1"],
    ]
    listed = json.loads(endpoint(app, "list", "--json").stdout)["items"]
    assert [(item["name"], item["watching_watches"]) for item in listed] == [
        ("alpha", 0),
        ("zeta", 1),
    ]


def test_show_of_an_unknown_endpoint_exits_1(app):
    result = endpoint(app, "show", "nobody")
    assert result.exit_code == 1
    assert "no endpoint has the name or id 'nobody'" in result.stderr


# --- change, disable, enable, delete -------------------------------------------------------------


def test_change_applies_only_the_options_given(app):
    added(app, "cms", "--url", PUBLIC_HOOK, "--description", "old", "--rate-limit", "5")
    changed = endpoint(app, "change", "cms", "--url", f"{PUBLIC_HOOK}/v2", "--json")
    assert changed.exit_code == 0, changed.output
    body = json.loads(changed.stdout)
    assert (body["url"], body["description"], body["rate_limit_per_second"]) == (
        f"{PUBLIC_HOOK}/v2", "old", 5.0
    )  # fmt: skip
    assert endpoint(app, "change", "cms", "--description", "", "--no-rate-limit").exit_code == 0
    stored = row(app, "cms")
    assert (stored.description, stored.rate_limit_per_second) == (None, None)
    assert "sends to" in endpoint(app, "change", "cms", "--rate-limit", "1").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--channel", "C1"], "#/channel: a webhook endpoint has no channel"),
        (["--rate-limit", "2000"], "#/rate_limit_per_second: must be a number above 0"),
        ([], "nothing to change"),
        (["--rate-limit", "1", "--no-rate-limit"], "exclude each other"),
    ],
)
def test_change_refuses_what_does_not_fit(app, args, message):
    added(app, "cms", "--url", PUBLIC_HOOK)
    result = endpoint(app, "change", "cms", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert row(app, "cms").rate_limit_per_second is None


def test_disable_holds_deliveries_and_enable_makes_them_due_now(app_factory):
    clock = FakeClock()
    app = app_factory(clock=clock)
    added(app, "cms", "--url", PUBLIC_HOOK)
    watch = watch_with(app, "cms")
    disabled = endpoint(app, "disable", "cms")
    assert disabled.exit_code == 0
    assert "held until it is enabled" in disabled.stdout
    assert row(app, "cms").disabled_reason == "disabled by an operator"
    assert "disabled already" in endpoint(app, "disable", "cms").stdout
    held = ended_delivery(app, watch, "pending", clock.now)
    clock.advance(60)
    enabled = endpoint(app, "enable", "cms")
    assert enabled.stdout.strip() == "Enabled cms; 1 held delivery is due now."
    assert row(app, "cms").disabled is False
    assert delivery(app, held).next_attempt_at == clock.now
    assert "enabled already; nothing changed" in endpoint(app, "enable", "cms").stdout


def test_delete_is_refused_while_a_watching_watch_uses_it(app):
    added(app, "cms", "--url", PUBLIC_HOOK)
    watch = watch_with(app, "cms")
    refused = endpoint(app, "delete", "cms")
    assert refused.exit_code == 1
    assert "1 watching watch uses this endpoint" in refused.stderr
    assert run(app, watch_group, "stop", watch["id"]).exit_code == 0
    deleted = endpoint(app, "delete", "cms")
    assert (deleted.exit_code, deleted.stdout) == (0, "Deleted endpoint cms.\n")
    assert endpoint(app, "show", "cms").exit_code == 1
    with app.app_context():
        (target,) = db.session.get(Watch, watch["id"]).targets
        assert (target.endpoint_id, target.url, target.disabled) == (None, PUBLIC_HOOK, True)


# --- rotate, replay ------------------------------------------------------------------------------


def test_rotate_prints_the_new_secret_once_and_keeps_the_old_one_for_the_overlap(app_factory):
    clock = FakeClock()
    app = app_factory(clock=clock, BRIDGE_SECRET_OVERLAP="600")
    added(app, "cms", "--url", PUBLIC_HOOK)
    old = row(app, "cms").secret
    result = endpoint(app, "rotate", "cms")
    assert result.exit_code == 0, result.output
    stored = row(app, "cms")
    assert stored.secret != old
    assert result.stdout.splitlines()[0].endswith(f"(shown only this once): {stored.secret}")
    assert (stored.previous_secret, stored.previous_secret_until) == (
        old, clock.now + timedelta(seconds=600)
    )  # fmt: skip
    assert "two signatures" in result.stdout
    body = json.loads(endpoint(app, "rotate", "cms", "--overlap", "0", "--json").stdout)
    assert body["secret"] == row(app, "cms").secret
    assert body["previous_secret_until"] is None
    assert row(app, "cms").previous_secret is None


def test_rotate_refuses_a_bad_overlap_and_an_endpoint_without_a_secret(app):
    added(app, "cms", "--url", PUBLIC_HOOK)
    added(app, "chat", "--type", "slack", "--channel", "C1")
    secret = row(app, "cms").secret
    bad = endpoint(app, "rotate", "cms", "--overlap", "-1")
    assert (bad.exit_code, bad.stderr) == (
        2, "#/overlap_seconds: must be a number of seconds from 0 to 2592000 (30 days)\n"
    )  # fmt: skip
    assert row(app, "cms").secret == secret
    slack = endpoint(app, "rotate", "chat")
    assert slack.exit_code == 1
    assert "a slack endpoint has no signing secret" in slack.stderr


def test_replay_queues_the_chosen_ended_deliveries_again(app_factory):
    clock = FakeClock()
    app = app_factory(clock=clock)
    added(app, "cms", "--url", PUBLIC_HOOK)
    watch = watch_with(app, "cms")
    day = timedelta(days=1)
    old_dead = ended_delivery(app, watch, "dead", clock.now - 2 * day)
    new_dead = ended_delivery(app, watch, "dead", clock.now)
    failed = ended_delivery(app, watch, "failed", clock.now)
    since = (clock.now - day).isoformat()
    result = endpoint(app, "replay", "cms", "--since", since)
    assert (result.exit_code, result.stdout) == (0, "Queued 1 delivery to cms again.\n")
    assert [delivery(app, d).state for d in (old_dead, new_dead, failed)] == [
        "dead", "pending", "failed"
    ]  # fmt: skip
    assert delivery(app, new_dead).next_attempt_at == clock.now
    until = (clock.now - day).isoformat()
    any_state = endpoint(app, "replay", "cms", "--state", "any", "--until", until, "--json")
    assert json.loads(any_state.stdout) == {"queued": 1}
    assert delivery(app, old_dead).state == "pending"
    assert delivery(app, failed).state == "failed"


def test_replay_refuses_a_time_without_an_offset(app):
    added(app, "cms", "--url", PUBLIC_HOOK)
    result = endpoint(app, "replay", "cms", "--since", "2026-11-25 12:00")
    assert result.exit_code == 2
    assert result.stderr.startswith("#/since: must be an RFC 3339 time with an offset")


# --- watch add --endpoint ------------------------------------------------------------------------


def test_watch_add_refers_to_endpoints_after_the_other_targets(app):
    added(app, "cms", "--url", PUBLIC_HOOK)
    refused = run(app, watch_group, "add", "ws", "1", "a", "--slack", "C1",
                  "--endpoint", "cms", "--endpoint", "nobody")  # fmt: skip
    assert refused.exit_code == 2
    assert refused.stderr.startswith("#/targets/2/endpoint: ")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Watch)) == 0
    result = run(app, watch_group, "add", "ws", "1", "a", "--slack", "C1", "--endpoint", "cms")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[2].endswith(f"webhook  {PUBLIC_HOOK}  (endpoint cms)")
    assert "whsec_" not in result.stdout  # the endpoint's secret is never a watch's to show


def test_endpoint_help_needs_no_configuration_and_lists_every_command(tmp_path):
    config = ("BRIDGE_", "MI_", "NCP_", "SLACK_", "DATABASE_URL", "SECRET_KEY", "FLASK_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(config)}
    result = subprocess.run(
        [str(BIN / "mi-bridge"), "endpoint", "--help"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line}
    expected = {"add", "list", "show", "change", "enable", "disable", "delete", "rotate", "replay"}
    assert listed == expected


def test_add_an_http_endpoint_with_a_body_template_and_headers(app, tmp_path):
    body = tmp_path / "body.json"
    body.write_text('{"content": "{{ asset.asset_id }}: {{ analysis.status }}"}', encoding="utf-8")
    shown = added(app, "chat", "--type", "http", "--url", PUBLIC_HOOK, "--body", str(body),
                  "--header", "X-Team: media", "--method", "PUT")  # fmt: skip
    assert (shown["type"], shown["method"], shown["headers"]) == ("http", "PUT", {"X-Team": "****"})
    assert shown["body"] == body.read_text(encoding="utf-8")
    broken = tmp_path / "broken.json"
    broken.write_text('{"content": {{ asset.asset_id }}', encoding="utf-8")
    refused = endpoint(app, "add", "chat2", "--type", "http", "--url", PUBLIC_HOOK,
                       "--body", str(broken))  # fmt: skip
    assert refused.exit_code == 2
    assert refused.stderr.startswith("#/body: ")
    bad_header = endpoint(app, "add", "chat3", "--type", "http", "--url", PUBLIC_HOOK,
                          "--body", str(body), "--header", "x")  # fmt: skip
    assert bad_header.exit_code == 2
    assert "is not NAME:VALUE" in bad_header.output


def test_template_and_language_are_set_changed_and_removed(app, tmp_path):
    template = tmp_path / "text.md"
    template.write_text("*{{ asset.asset_id }}* {{ analysis.status }}", encoding="utf-8")
    shown = added(app, "room", "--type", "slack", "--channel", "C0123456789",
                  "--template", str(template), "--language", "ko")  # fmt: skip
    assert (shown["template"], shown["language"]) == (template.read_text(encoding="utf-8"), "ko")
    changed = endpoint(app, "change", "room", "--language", "ja", "--no-template", "--json")
    assert changed.exit_code == 0, changed.output
    after = json.loads(changed.stdout)
    assert (after.get("template"), after["language"]) == (None, "ja")
    stored = row(app, "room")
    assert (stored.template, stored.language) == (None, "ja")
    template.write_text("{% if %}", encoding="utf-8")
    refused = endpoint(app, "change", "room", "--template", str(template))
    assert refused.exit_code == 2
    assert refused.stderr.startswith("#/template: ")
    both = endpoint(app, "change", "room", "--template", str(template), "--no-template")
    assert both.exit_code == 2
    assert "exclude each other" in both.output


def test_change_replaces_an_http_endpoints_body_headers_and_method(app, tmp_path):
    body = tmp_path / "body.json"
    body.write_text('{"text": "{{ asset.asset_id }}"}', encoding="utf-8")
    added(app, "chat", "--type", "http", "--url", PUBLIC_HOOK, "--body", str(body),
          "--header", "X-Team: media", "--header", "X-Other: 1")  # fmt: skip
    body.write_text('{"content": "{{ analysis.status }}"}', encoding="utf-8")
    changed = endpoint(app, "change", "chat", "--body", str(body), "--header", "X-Team: news",
                       "--method", "PUT", "--json")  # fmt: skip
    assert changed.exit_code == 0, changed.output
    shown = json.loads(changed.stdout)
    assert (shown["method"], shown["headers"]) == ("PUT", {"X-Team": "****"})
    stored = row(app, "chat")
    assert stored.body == '{"content": "{{ analysis.status }}"}'
    assert (stored.headers, stored.method) == ({"X-Team": "news"}, "PUT")
