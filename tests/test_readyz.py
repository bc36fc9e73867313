"""``/readyz``: 503 without a worker seen within 30 s or without the database; health reported."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest

from app.db import db
from app.models import BridgeState, WorkerHeartbeat
from tests import dbtools
from tests.fixtures import build_app, dispose
from tests.watchtools import parse_time

READY_KEYS = {"database", "worker_last_seen", "upstream_auth", "slack_auth", "rate_limited_until"}


@pytest.fixture
def app(app_factory, clock):
    """Like the conftest ``app`` (migrated SQLite, test token), with the test's ``clock``."""
    return app_factory(clock=clock)


def beat(app, worker_id, last_seen_at):
    with app.app_context():
        row = db.session.get(WorkerHeartbeat, worker_id)
        if row is None:
            row = WorkerHeartbeat(worker_id=worker_id, hostname="test-host", pid=1234)
            row.started_at = last_seen_at
            db.session.add(row)
        row.last_seen_at = last_seen_at
        db.session.commit()


def set_bridge_state(app, **fields):
    with app.app_context():
        row = db.session.get(BridgeState, 1) or BridgeState(id=1)
        for name, value in fields.items():
            setattr(row, name, value)
        db.session.add(row)
        db.session.commit()


def readyz(app):
    response = app.test_client().get("/readyz")
    assert response.is_json
    body = response.get_json()
    assert set(body) >= READY_KEYS
    return response.status_code, body


def test_no_worker_ever_seen_is_503(app):
    status, body = readyz(app)
    assert status == 503
    assert body["database"] == "ok"
    assert body["worker_last_seen"] is None
    assert body["upstream_auth"] == "unknown"
    assert body["slack_auth"] == "unknown"
    assert body["rate_limited_until"] is None


def test_a_fresh_heartbeat_is_200(app, clock):
    beat(app, "worker-1", clock.now - timedelta(seconds=5))
    status, body = readyz(app)
    assert status == 200
    assert body["database"] == "ok"
    assert parse_time(body["worker_last_seen"]) == clock.now - timedelta(seconds=5)


def test_a_heartbeat_older_than_30_seconds_is_503(app, clock):
    beat(app, "worker-1", clock.now - timedelta(seconds=29))
    assert readyz(app)[0] == 200
    clock.advance(2)  # now 31 s since the worker was seen
    status, body = readyz(app)
    assert status == 503
    assert body["database"] == "ok"
    assert parse_time(body["worker_last_seen"]) == clock.now - timedelta(seconds=31)


def test_the_latest_of_several_workers_counts(app, clock):
    beat(app, "dead-worker", clock.now - timedelta(hours=2))
    assert readyz(app)[0] == 503
    beat(app, "embedded-scheduler", clock.now - timedelta(seconds=1))
    status, body = readyz(app)
    assert status == 200
    assert parse_time(body["worker_last_seen"]) == clock.now - timedelta(seconds=1)


def test_bridge_state_is_reported_without_making_the_bridge_unready(app, clock):
    beat(app, "worker-1", clock.now)
    until = clock.now + timedelta(seconds=90)
    set_bridge_state(app, upstream_auth="failing", slack_auth="ok", rate_limited_until=until)
    status, body = readyz(app)
    assert status == 200
    assert body["upstream_auth"] == "failing"
    assert body["slack_auth"] == "ok"
    assert parse_time(body["rate_limited_until"]) == until


def test_slack_failing_and_upstream_ok_are_reported_as_such(app, clock):
    beat(app, "worker-1", clock.now)
    set_bridge_state(app, upstream_auth="ok", slack_auth="failing")
    status, body = readyz(app)
    assert status == 200
    assert (body["upstream_auth"], body["slack_auth"]) == ("ok", "failing")


def test_a_rate_limit_pause_that_has_passed_is_not_reported(app, clock):
    set_bridge_state(app, rate_limited_until=clock.now + timedelta(seconds=10))
    assert readyz(app)[1]["rate_limited_until"] is not None
    clock.advance(11)
    assert readyz(app)[1]["rate_limited_until"] is None


def test_readyz_needs_no_token_and_ignores_a_bad_one(app, clock):
    beat(app, "worker-1", clock.now)
    response = app.test_client().get("/readyz", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200
    assert "WWW-Authenticate" not in response.headers


def test_an_unusable_sqlite_path_is_503_database_unreachable(tmp_path, resolver, clock):
    folder = tmp_path / "data"
    app = build_app(f"sqlite:///{folder}/bridge.db", resolver=resolver, clock=clock)
    beat(app, "worker-1", clock.now)
    assert readyz(app)[0] == 200

    dispose(app)  # as a restarted process would, open the path afresh
    folder.rename(tmp_path / "moved-away")
    folder.write_text("a file where the database folder was")

    status, body = readyz(app)
    assert status == 503
    assert body["database"] == "unreachable"
    assert body["worker_last_seen"] is None


@pytest.mark.postgres
def test_a_dropped_postgres_database_is_503_database_unreachable(postgres_url, resolver, clock):
    app = build_app(postgres_url, resolver=resolver, clock=clock)
    try:
        beat(app, "worker-1", clock.now)
        assert readyz(app)[0] == 200

        name = urlsplit(postgres_url).path.lstrip("/")
        dbtools.drop_database(dbtools.postgres_admin_url(), name)

        status, body = readyz(app)
        assert status == 503
        assert body["database"] == "unreachable"
        assert body["worker_last_seen"] is None
        assert readyz(app)[0] == 503  # and it stays answerable, without a stuck session
    finally:
        dispose(app)


@pytest.mark.postgres
def test_readyz_on_postgres(postgres_url, resolver, clock):
    app = build_app(postgres_url, resolver=resolver, clock=clock)
    try:
        assert readyz(app)[0] == 503
        beat(app, "worker-1", clock.now - timedelta(seconds=3))
        set_bridge_state(app, upstream_auth="ok", slack_auth="unknown")
        status, body = readyz(app)
        assert status == 200
        assert body["upstream_auth"] == "ok"
        assert parse_time(body["worker_last_seen"]) == clock.now - timedelta(seconds=3)
    finally:
        dispose(app)
