"""The one-statement registration (``app.watches.register_statement``, PostgreSQL) writes the rows
the ORM path writes and answers with the body the ORM path answers, byte for byte; what it does not
cover (a reference to no endpoint, an endpoint named twice, a used Idempotency-Key) is answered as
before, with nothing written. Every test runs on SQLite (the ORM path) and on PostgreSQL (the fast
path, checked to have been taken)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from app.db import db
from app.resources.watches import watch_resource
from app.watches import register_statement
from app.watches.queries import find_watch
from tests.fixtures import AUTH, dispose
from tests.watchtools import PUBLIC_HOOK, secret_of, watch_body

WATCHES = "/api/v1/watches"
GIVEN_SECRET = secret_of(32)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def setup(request, app_factory, clock) -> Iterator[tuple[Any, list[str]]]:
    """(app with a stopped clock, the fast path's outcomes: "written" or "not covered")."""
    config: dict[str, Any] = {"clock": clock}
    if request.param == "postgres":
        config["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    app = app_factory(**config)
    outcomes: list[str] = []
    original = register_statement.register

    def spy(*args: Any, **kwargs: Any) -> register_statement.NewWatch:
        try:
            watch = original(*args, **kwargs)
        except register_statement.NotCovered:
            outcomes.append("not covered")
            raise
        outcomes.append("written")
        return watch

    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(register_statement, "register", spy)
    yield app, outcomes
    dispose(app)


def is_postgres(app) -> bool:
    with app.app_context():
        return db.engine.dialect.name == "postgresql"


def make_endpoint(client, **fields: Any) -> dict[str, Any]:
    body = {"name": "cms", "type": "webhook", "url": PUBLIC_HOOK, **fields}
    body = {name: value for name, value in body.items() if value is not None}
    answer = client.post("/api/v1/endpoints", json=body, headers=AUTH)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def rows_of(app, watch_id: str) -> dict[str, Any]:
    """The watch's rows (watch, targets in order, asset) without their ids."""
    with app.app_context():
        connection = db.session.connection()

        def select(sql: str, **params: Any) -> list[dict[str, Any]]:
            return [dict(r._mapping) for r in connection.execute(text(sql), params)]

        watch = select("SELECT * FROM watches WHERE id = :id", id=watch_id)[0]
        targets = select(
            "SELECT * FROM targets WHERE watch_id = :id ORDER BY position", id=watch_id
        )
        asset = select("SELECT * FROM assets WHERE pk = :pk", pk=watch["asset_pk"])[0]
        db.session.rollback()
    for name in ("id", "asset_id", "asset_pk"):
        watch.pop(name)
    for target in targets:
        target.pop("id"), target.pop("watch_id")
        if target["secret"] is not None and target["secret"] != GIVEN_SECRET:
            assert target["secret"].startswith("whsec_")
            target["secret"] = "generated"
    for name in ("pk", "asset_id"):
        asset.pop(name)
    return {"watch": watch, "targets": targets, "asset": asset}


def orm_body(app, answer) -> str:
    """The 201 body the ORM path's ``watch_resource`` gives for the watch just registered."""
    created = answer.get_json()
    secrets = {t["id"]: t["secret"] for t in created["targets"] if "secret" in t}
    with app.app_context():
        watch = find_watch(db.session(), created["id"])
        assert watch is not None
        body = json.dumps(watch_resource(watch, generated_secrets=secrets).as_json())
        db.session.rollback()
    return body


def register_both_ways(app, outcomes, body: dict[str, Any], monkeypatch) -> tuple[Any, Any]:
    """The same registration by the app as it is and by the ORM path (another asset id)."""
    client = app.test_client()
    fast = client.post(WATCHES, json=body, headers=AUTH)
    assert fast.status_code == 201, fast.get_json()
    assert outcomes == (["written"] if is_postgres(app) else []), outcomes
    with monkeypatch.context() as patch:
        patch.setattr(register_statement, "covers", lambda *_args: False)
        orm = client.post(
            WATCHES, json={**body, "asset_id": body["asset_id"] + "-orm"}, headers=AUTH
        )
    assert orm.status_code == 201, orm.get_json()
    assert outcomes == (["written"] if is_postgres(app) else []), "the ORM path took it"
    return fast, orm


def anonymous(body: dict[str, Any]) -> dict[str, Any]:
    """A 201 body without its ids and generated secrets."""
    body = json.loads(json.dumps(body))
    body.pop("id"), body.pop("asset_id")
    for target in body["targets"]:
        target.pop("id")
        if "secret" in target:
            assert target["secret"].startswith("whsec_")
            target["secret"] = "generated"
    return body


TARGETS = {
    "webhook, secret generated": [{"type": "webhook", "url": PUBLIC_HOOK}],
    "webhook with its secret": [{"type": "webhook", "url": PUBLIC_HOOK, "secret": GIVEN_SECRET}],
    "slack with template and language": [
        {"type": "slack", "channel": "#media", "template": "{{ watch.id }} done", "language": "ko"}
    ],
    "slack webhook": [
        {"type": "slack_webhook", "url": "https://hooks.example.test/services/T1/B2/sEcReT"}
    ],
    "http with headers": [
        {
            "type": "http",
            "url": PUBLIC_HOOK,
            "method": "PUT",
            "language": "ja",
            "headers": {"Authorization": "Bearer {{ watch.id }}"},
            "body": '{"id": "{{ watch.id }}"}',
        }
    ],
    "http, secret given": [
        {"type": "http", "url": PUBLIC_HOOK, "body": "{}", "secret": GIVEN_SECRET}
    ],
    "endpoint by name": [{"endpoint": "cms"}],
    "two webhooks and an endpoint": [
        {"type": "webhook", "url": PUBLIC_HOOK},
        {"endpoint": "cms"},
        {"type": "webhook", "url": PUBLIC_HOOK + "/2", "secret": GIVEN_SECRET},
    ],
}


@pytest.mark.parametrize("targets", TARGETS.values(), ids=TARGETS.keys())
def test_the_statement_writes_the_orm_paths_rows_and_body(setup, targets, monkeypatch):
    app, outcomes = setup
    make_endpoint(app.test_client())
    body = watch_body(asset_id="a-1", targets=targets, labels={"team": "media"})
    fast, orm = register_both_ways(app, outcomes, body, monkeypatch)
    assert fast.get_data(as_text=True) == orm_body(app, fast)
    assert orm.get_data(as_text=True) == orm_body(app, orm)
    assert anonymous(fast.get_json()) == anonymous(orm.get_json())
    assert rows_of(app, fast.get_json()["id"]) == rows_of(app, orm.get_json()["id"])
    assert fast.headers["Location"] == f"{WATCHES}/{fast.get_json()['id']}"


def test_options_of_the_watch_are_written_alike(setup, monkeypatch):
    app, outcomes = setup
    body = watch_body(
        asset_id="a-2", api="assets", timeout_seconds=600, stalled_after_seconds=90,
        events=["analysis.completed", "analysis.stalled"], labels={"a": "1", "b": "2"},
    )  # fmt: skip
    fast, orm = register_both_ways(app, outcomes, body, monkeypatch)
    assert fast.get_json()["stalled_after_seconds"] == 90.0
    assert fast.get_data(as_text=True) == orm_body(app, fast)
    assert anonymous(fast.get_json()) == anonymous(orm.get_json())
    assert rows_of(app, fast.get_json()["id"]) == rows_of(app, orm.get_json()["id"])


def test_an_endpoint_by_id_shows_its_name_and_destination(setup):
    app, outcomes = setup
    client = app.test_client()
    endpoint = make_endpoint(client, name="by-id", type="slack", channel="#x", url=None)
    answer = client.post(
        WATCHES, json=watch_body(targets=[{"endpoint": endpoint["id"]}]), headers=AUTH
    )
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_data(as_text=True) == orm_body(app, answer)
    (target,) = answer.get_json()["targets"]
    assert (target["type"], target["channel"], target["endpoint"]) == ("slack", "#x", "by-id")
    with app.app_context():
        row = db.session.execute(text("SELECT endpoint_id, type, channel FROM targets")).one()
    assert tuple(row) == (endpoint["id"], "slack", None)
    assert outcomes == (["written"] if is_postgres(app) else [])


def count_rows(app) -> dict[str, int]:
    with app.app_context():
        return {
            table: db.session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608
            for table in ("watches", "targets", "assets", "idempotency_keys")
        }


@pytest.mark.parametrize(
    "targets",
    [
        [{"endpoint": "nowhere"}],
        [{"type": "webhook", "url": PUBLIC_HOOK}, {"endpoint": "nowhere"}],
        [{"endpoint": "cms"}, {"endpoint": "ID-OF-CMS"}],  # one endpoint named twice
    ],
    ids=["missing", "missing after an inline target", "named twice"],
)
@pytest.mark.parametrize("with_key", [False, True], ids=["plain", "idempotent"])
def test_a_reference_that_fails_is_the_same_422_and_writes_nothing(setup, targets, with_key):
    app, outcomes = setup
    client = app.test_client()
    endpoint = make_endpoint(client)
    targets = [
        {"endpoint": endpoint["id"]} if t.get("endpoint") == "ID-OF-CMS" else t for t in targets
    ]
    before = count_rows(app)
    headers = {**AUTH, "Idempotency-Key": "k-422"} if with_key else AUTH
    answer = client.post(WATCHES, json=watch_body(targets=targets), headers=headers)
    assert answer.status_code == 422
    problem = answer.get_json()
    position = len(targets) - 1
    assert problem["errors"][0]["pointer"] == f"#/targets/{position}/endpoint"
    assert count_rows(app) == before
    assert outcomes == (["not covered"] if is_postgres(app) else [])
    # nothing is kept for the key either: the same key registers once the body is right
    fixed = client.post(WATCHES, json=watch_body(), headers=headers)
    assert fixed.status_code == 201


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_body(setup):
    app, outcomes = setup
    client = app.test_client()
    headers = {**AUTH, "Idempotency-Key": "key-1"}
    first = client.post(WATCHES, json=watch_body(), headers=headers)
    assert first.status_code == 201
    assert "secret" in first.get_json()["targets"][0]
    assert first.get_data(as_text=True) == orm_body(app, first)
    again = client.post(WATCHES, json=watch_body(), headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data(as_text=True) == first.get_data(as_text=True)  # the secret too
    assert again.headers["Location"] == first.headers["Location"]
    other = client.post(WATCHES, json=watch_body(asset_id="other"), headers=headers)
    assert other.status_code == 409
    assert count_rows(app) == {"watches": 1, "targets": 1, "assets": 1, "idempotency_keys": 1}
    with app.app_context():
        stored = db.session.execute(
            text("SELECT status_code, body, location, answer_parts FROM idempotency_keys")
        ).one()
    assert tuple(stored[:3]) == (
        201,
        # The statement stores what the answer is rendered from; the ORM path stores the text.
        "" if is_postgres(app) else first.get_data(as_text=True),
        first.headers["Location"],
    )
    assert (stored[3] is not None) == is_postgres(app)
    # the first went through the statement; the replay and the 409 did not write
    assert outcomes == (["written", "not covered", "not covered"] if is_postgres(app) else [])


def fail_a_poll(app, clock, message: str, later: float) -> None:
    """The asset's latest poll failed with ``message``; it is due ``later`` s from now."""
    with app.app_context():
        db.session.execute(
            text(
                "UPDATE assets SET last_error = :message, last_error_kind = 'transient',"
                " last_error_status = 503, consecutive_errors = consecutive_errors + 1,"
                " last_polled_at = :polled, last_error_request_id = 'req-1', next_poll_at = :later"
            ),
            {
                "message": message,
                "polled": clock.now.replace(tzinfo=None),
                "later": (clock.now + timedelta(seconds=later)).replace(tzinfo=None),
            },
        )
        db.session.commit()


@pytest.mark.parametrize("targets", TARGETS.values(), ids=TARGETS.keys())
def test_a_replay_is_the_first_answer_to_the_byte_whatever_changed_since(setup, targets, clock):
    app, outcomes = setup
    client = app.test_client()
    make_endpoint(client)
    # The asset is known and has failed a poll: the first answer shows that error.
    assert client.post(WATCHES, json=watch_body(), headers=AUTH).status_code == 201
    fail_a_poll(app, clock, "upstream 503", later=30.5)
    clock.advance(1.25)
    headers = {**AUTH, "Idempotency-Key": "parts"}
    body = watch_body(targets=targets, labels={"team": "media", "tier": "한국"})
    first = client.post(WATCHES, json=body, headers=headers)
    assert first.status_code == 201
    assert first.get_json()["last_error"]["message"] == "upstream 503"
    assert first.get_data(as_text=True) == orm_body(app, first)
    # Then the asset fails again and the endpoint moves: a replay still answers as the first did.
    fail_a_poll(app, clock, "upstream 500", later=90)
    moved = client.patch(
        "/api/v1/endpoints/cms", json={"url": PUBLIC_HOOK + "/moved"}, headers=AUTH
    )
    assert moved.status_code == 200, moved.get_json()
    clock.advance(7)
    again = client.post(WATCHES, json=body, headers=headers)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data(as_text=True) == first.get_data(as_text=True)
    assert again.headers["Location"] == first.headers["Location"]
    if is_postgres(app):  # the first went through the statement, the replay did not write
        assert outcomes[-2:] == ["written", "not covered"]


def test_an_expired_key_registers_anew(setup, clock):
    app, _outcomes = setup
    client = app.test_client()
    headers = {**AUTH, "Idempotency-Key": "old"}
    first = client.post(WATCHES, json=watch_body(), headers=headers)
    clock.advance(timedelta(hours=25).total_seconds())
    second = client.post(WATCHES, json=watch_body(), headers=headers)
    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert second.get_json()["id"] != first.get_json()["id"]
    assert count_rows(app)["idempotency_keys"] == 1


def test_watches_of_one_asset_share_its_row_and_show_its_state(setup, clock):
    app, _outcomes = setup
    client = app.test_client()
    first = client.post(WATCHES, json=watch_body(), headers=AUTH)
    assert first.status_code == 201
    due = first.get_json()["next_poll_at"]
    with app.app_context():  # the asset has failed a poll and is due later
        db.session.execute(
            text(
                "UPDATE assets SET last_error = 'upstream 503', last_error_kind = 'transient',"
                " last_error_status = 503, consecutive_errors = 2, last_polled_at = :polled,"
                " last_error_request_id = 'req-1', next_poll_at = :later"
            ),
            {
                "polled": clock.now.replace(tzinfo=None),
                "later": (clock.now + timedelta(seconds=60)).replace(tzinfo=None),
            },
        )
        db.session.commit()
    clock.advance(5)
    second = client.post(WATCHES, json=watch_body(), headers=AUTH)
    assert second.status_code == 201
    assert second.get_data(as_text=True) == orm_body(app, second)
    created = second.get_json()
    assert created["last_error"]["message"] == "upstream 503"
    assert created["last_error"]["consecutive"] == 2
    assert created["next_poll_at"] > due  # due now: the later poll was brought forward
    assert count_rows(app)["assets"] == 1
    with app.app_context():
        pks = db.session.execute(text("SELECT DISTINCT asset_pk FROM watches")).all()
    assert len(pks) == 1
