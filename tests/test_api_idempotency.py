"""``Idempotency-Key``: replays, conflicts, per-token keys, expiry, and concurrent duplicates."""

import json
import threading

import pytest
from sqlalchemy import func, select

from app.db import db
from app.models import IdempotencyKey, Watch
from tests.watchtools import assert_problem, watch_body

WATCHES = "/api/v1/watches"


def post(client, body, key, token="test-api-token"):
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(WATCHES, json=body, headers=headers)


def watch_count(app):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Watch))


def test_a_retry_replays_status_body_and_location(app, client):
    body = watch_body(labels={"cms_id": "abc-123"})
    first = post(client, body, "key-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = post(client, body, "key-1")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert again.get_data() == first.get_data()
    assert again.mimetype == "application/json"
    assert watch_count(app) == 1


def test_the_replay_carries_the_generated_secret_once_shown(client, auth_headers):
    first = post(client, watch_body(), "key-secret")
    secret = first.get_json()["targets"][0]["secret"]
    assert post(client, watch_body(), "key-secret").get_json()["targets"][0]["secret"] == secret
    watch_id = first.get_json()["id"]
    fetched = client.get(f"{WATCHES}/{watch_id}", headers=auth_headers).get_json()
    assert "secret" not in fetched["targets"][0]


def test_key_order_and_whitespace_do_not_make_another_request(app, client):
    body = watch_body()
    first = post(client, body, "key-order")
    reordered = dict(reversed(list(body.items())))
    again = client.post(
        WATCHES,
        data="  " + json.dumps(reordered, indent=4),
        content_type="application/json",
        headers={"Authorization": "Bearer test-api-token", "Idempotency-Key": "key-order"},
    )
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_data() == first.get_data()
    assert watch_count(app) == 1


def test_the_same_key_with_another_body_is_409(app, client):
    assert post(client, watch_body(asset_id="one"), "key-2").status_code == 201
    conflict = post(client, watch_body(asset_id="two"), "key-2")
    assert_problem(conflict, 409)
    assert "Idempotent-Replayed" not in conflict.headers
    assert watch_count(app) == 1
    # the original answer is still there for a true retry
    assert (
        post(client, watch_body(asset_id="one"), "key-2").headers["Idempotent-Replayed"] == "true"
    )


def test_requests_without_a_key_are_never_deduplicated(app, client):
    assert post(client, watch_body(), None).status_code == 201
    assert post(client, watch_body(), None).status_code == 201
    assert watch_count(app) == 2


def test_different_keys_make_different_watches(app, client):
    first = post(client, watch_body(), "key-a").get_json()
    second = post(client, watch_body(), "key-b").get_json()
    assert first["id"] != second["id"]
    assert watch_count(app) == 2


def test_keys_are_kept_per_token(app_factory):
    app = app_factory(BRIDGE_API_TOKENS="token-a,token-b")
    client = app.test_client()
    a = post(client, watch_body(), "shared-key", token="token-a")
    b = post(client, watch_body(), "shared-key", token="token-b")
    assert (a.status_code, b.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in b.headers
    assert a.get_json()["id"] != b.get_json()["id"]
    # another body under the other token is no conflict either
    c = post(client, watch_body(asset_id="x"), "other-key", token="token-a")
    d = post(client, watch_body(asset_id="y"), "other-key", token="token-b")
    assert (c.status_code, d.status_code) == (201, 201)
    # and each token replays its own answer
    replay = post(client, watch_body(), "shared-key", token="token-b")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json()["id"] == b.get_json()["id"]
    assert watch_count(app) == 4


def test_an_invalid_body_is_not_remembered(app, client):
    assert_problem(post(client, watch_body(asset_id=""), "key-fix"), 422)
    fixed = post(client, watch_body(), "key-fix")
    assert fixed.status_code == 201
    assert "Idempotent-Replayed" not in fixed.headers


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "tab\there", "new\x7fline"], ids=repr)
def test_malformed_keys_are_400(app, client, key):
    assert_problem(post(client, watch_body(), key), 400)
    assert watch_count(app) == 0


def test_a_key_of_255_printable_characters_is_accepted(client):
    key = ("k~ !" * 64)[:255]
    assert post(client, watch_body(), key).status_code == 201
    assert post(client, watch_body(), key).headers["Idempotent-Replayed"] == "true"


def test_a_key_is_replayed_for_24_hours(clocked_app, clock):
    client = clocked_app.test_client()
    first = post(client, watch_body(), "day-key")
    clock.advance(24 * 3600 - 1)
    again = post(client, watch_body(), "day-key")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()


def test_an_expired_key_is_not_replayed(clocked_app, clock):
    client = clocked_app.test_client()
    first = post(client, watch_body(), "old-key")
    clock.advance(24 * 3600 + 1)
    fresh = post(client, watch_body(), "old-key")
    assert fresh.status_code == 201
    assert "Idempotent-Replayed" not in fresh.headers
    assert fresh.get_json()["id"] != first.get_json()["id"]
    assert watch_count(clocked_app) == 2
    # the key now guards the new watch, for another 24 hours
    replay = post(client, watch_body(), "old-key")
    assert replay.get_json()["id"] == fresh.get_json()["id"]
    with clocked_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


def test_an_expired_key_may_carry_another_body(clocked_app, clock):
    client = clocked_app.test_client()
    post(client, watch_body(asset_id="one"), "reuse-key")
    clock.advance(25 * 3600)
    assert post(client, watch_body(asset_id="two"), "reuse-key").status_code == 201


# --- concurrent duplicates ------------------------------------------------------------------------

THREADS = 8


def race(app, bodies, key):
    """POST each body with one key from its own thread and test client, lined up on a barrier."""
    barrier = threading.Barrier(len(bodies))
    responses = [None] * len(bodies)
    failures = []

    def run(position, body):
        client = app.test_client()
        try:
            barrier.wait(timeout=10)
            responses[position] = post(client, body, key)
        except Exception as exc:  # reported below: a thread's exception must fail the test
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(n, b)) for n, b in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures
    assert all(response is not None for response in responses)
    return responses


def assert_one_watch_from_a_race(app, rounds=3):
    for round_number in range(rounds):
        key = f"race-{round_number}"
        before = watch_count(app)
        body = watch_body(asset_id=f"race{round_number}")
        responses = race(app, [body] * THREADS, key)
        codes = [r.status_code for r in responses]
        assert codes == [201] * THREADS, [r.get_data(as_text=True) for r in responses]
        originals = [r for r in responses if "Idempotent-Replayed" not in r.headers]
        assert len(originals) == 1
        assert {r.headers.get("Idempotent-Replayed") for r in responses} == {None, "true"}
        assert {r.get_data() for r in responses} == {originals[0].get_data()}
        assert {r.headers["Location"] for r in responses} == {originals[0].headers["Location"]}
        assert watch_count(app) == before + 1


def assert_conflicting_race_is_one_watch_and_409s(app):
    for round_number in range(3):
        key = f"conflict-{round_number}"
        before = watch_count(app)
        bodies = [watch_body(asset_id=f"c{round_number}-{n}") for n in range(THREADS)]
        responses = race(app, bodies, key)
        codes = sorted(r.status_code for r in responses)
        assert codes == [201] + [409] * (THREADS - 1), [r.get_data(as_text=True) for r in responses]
        assert watch_count(app) == before + 1


def test_concurrent_requests_with_one_key_make_one_watch_on_sqlite(app):
    assert_one_watch_from_a_race(app)


def test_concurrent_requests_with_one_key_and_other_bodies_on_sqlite(app):
    assert_conflicting_race_is_one_watch_and_409s(app)


@pytest.mark.postgres
def test_concurrent_requests_with_one_key_make_one_watch_on_postgres(pg_app):
    assert_one_watch_from_a_race(pg_app)


@pytest.mark.postgres
def test_concurrent_requests_with_one_key_and_other_bodies_on_postgres(pg_app):
    assert_conflicting_race_is_one_watch_and_409s(pg_app)
