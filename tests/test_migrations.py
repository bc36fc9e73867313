"""``mi-bridge db upgrade`` (the release phase) and ``mi-bridge db check``, via the console script."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory

from app.db import MIGRATIONS_DIR
from tests import dbtools

MI_BRIDGE = str(Path(sys.executable).with_name("mi-bridge"))
TABLES = {
    "alembic_version",
    "assets",
    "bridge_state",
    "deliveries",
    "delivery_attempts",
    "events",
    "idempotency_keys",
    "status_history",
    "targets",
    "watches",
    "worker_heartbeats",
}


def mi_bridge(*args, database_url, cwd):
    env = {**os.environ, "DATABASE_URL": database_url, "BRIDGE_ENV": "development"}
    return subprocess.run(
        [MI_BRIDGE, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def head_revision():
    return ScriptDirectory(MIGRATIONS_DIR).get_current_head()


def assert_ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def sqlite_state(path):
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        versions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
    connection.close()
    return tables, versions


def postgres_state(url):
    with psycopg.connect(url) as connection:
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
        versions = (
            [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
            if "alembic_version" in tables
            else []
        )
    return tables, versions


def test_upgrade_on_an_empty_sqlite_database_twice_then_check(tmp_path):
    path = tmp_path / "release.db"
    url = f"sqlite:///{path}"

    before = mi_bridge("db", "check", database_url=url, cwd=tmp_path)
    assert before.returncode != 0  # an unmigrated database is drift: the check can fail

    assert_ok(mi_bridge("db", "upgrade", database_url=url, cwd=tmp_path))
    tables, versions = sqlite_state(path)
    assert tables >= TABLES
    assert versions == [head_revision()]

    assert_ok(mi_bridge("db", "upgrade", database_url=url, cwd=tmp_path))
    assert sqlite_state(path) == (tables, versions)

    check = mi_bridge("db", "check", database_url=url, cwd=tmp_path)
    assert_ok(check)
    assert "No new upgrade operations detected" in check.stdout + check.stderr


@pytest.fixture
def empty_postgres_url():
    """A PostgreSQL database with nothing in it (not copied from the migrated template)."""
    admin_url = dbtools.postgres_admin_url()
    name = dbtools.create_database(admin_url)
    try:
        yield dbtools.with_database(admin_url, name)
    finally:
        dbtools.drop_database(admin_url, name)


@pytest.mark.postgres
def test_upgrade_on_an_empty_postgres_database_twice_then_check(tmp_path, empty_postgres_url):
    url = empty_postgres_url
    assert postgres_state(url) == (set(), [])

    assert_ok(mi_bridge("db", "upgrade", database_url=url, cwd=tmp_path))
    tables, versions = postgres_state(url)
    assert tables >= TABLES
    assert versions == [head_revision()]

    assert_ok(mi_bridge("db", "upgrade", database_url=url, cwd=tmp_path))
    assert postgres_state(url) == (tables, versions)

    check = mi_bridge("db", "check", database_url=url, cwd=tmp_path)
    assert_ok(check)
    assert "No new upgrade operations detected" in check.stdout + check.stderr
