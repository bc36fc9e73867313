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

# Each test runs several ``mi-bridge db`` processes in turn (10-30 s a test).
pytestmark = pytest.mark.slow

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


# --- 64-bit keys for the growing tables (issue 17) --------------------------------------------------

BEFORE_64_BIT_KEYS = "3b9d2c7e41a0"
#: Keys of the tables that grow with use, and the columns referring to them.
GROWING_KEYS = {
    ("assets", "pk"),
    ("watches", "asset_pk"),
    ("status_history", "pk"),
    ("events", "seq"),
    ("deliveries", "seq"),
    ("delivery_attempts", "pk"),
    ("delivery_attempts", "delivery_seq"),
}
ASSET_ROW = {
    "workspace": "ws",
    "project_id": "1",
    "api": "index",
    "interval": 0,
    "poll_count": 0,
    "consecutive_errors": 0,
    "created_at": "2026-12-01",
    "updated_at": "2026-12-01",
}


def insert_asset(connection, placeholder, **values):
    """Insert an assets row (``placeholder``: ``%s`` for psycopg, ``?`` for sqlite3)."""
    row = {**ASSET_ROW, **values}
    names, marks = ", ".join(row), ", ".join([placeholder] * len(row))
    statement = f"INSERT INTO assets ({names}) VALUES ({marks})"  # noqa: S608 - our own names
    connection.execute(statement, tuple(row.values()))


def postgres_key_types(url):
    with psycopg.connect(url) as connection:
        columns = {
            (table, column): data_type
            for table, column, data_type in connection.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'public'"
            )
        }
        sequences = dict(connection.execute("SELECT sequencename, data_type FROM pg_sequences"))
    return {key: columns[key] for key in GROWING_KEYS}, sequences


@pytest.mark.postgres
def test_growing_tables_get_64_bit_keys_on_postgres_and_keep_their_rows(
    tmp_path, empty_postgres_url
):
    url = empty_postgres_url
    assert_ok(mi_bridge("db", "upgrade", BEFORE_64_BIT_KEYS, database_url=url, cwd=tmp_path))
    with psycopg.connect(url) as connection:
        insert_asset(connection, "%s", asset_id="before")
    assert set(postgres_key_types(url)[0].values()) == {"integer"}

    assert_ok(mi_bridge("db", "upgrade", database_url=url, cwd=tmp_path))
    columns, sequences = postgres_key_types(url)
    assert set(columns.values()) == {"bigint"}
    assert sequences.pop("bridge_state_id_seq") == "integer"  # one row, ever
    assert set(sequences.values()) == {"bigint"}

    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT pk, asset_id FROM assets").fetchall() == [(1, "before")]
        connection.execute("SELECT setval(pg_get_serial_sequence('assets', 'pk'), %s)", (2**40,))
        insert_asset(connection, "%s", asset_id="after")
        pks = connection.execute("SELECT pk FROM assets ORDER BY pk").fetchall()
    assert pks == [(1,), (2**40 + 1,)]


@pytest.mark.postgres
def test_the_64_bit_keys_migration_goes_down_and_up_again(tmp_path, empty_postgres_url):
    url = empty_postgres_url
    assert_ok(mi_bridge("db", "upgrade", database_url=url, cwd=tmp_path))
    assert_ok(mi_bridge("db", "downgrade", BEFORE_64_BIT_KEYS, database_url=url, cwd=tmp_path))
    columns, sequences = postgres_key_types(url)
    assert set(columns.values()) == set(sequences.values()) == {"integer"}
    assert_ok(mi_bridge("db", "upgrade", database_url=url, cwd=tmp_path))
    assert set(postgres_key_types(url)[0].values()) == {"bigint"}


def test_sqlite_keys_stay_64_bit_rowids(tmp_path):
    path = tmp_path / "release.db"
    assert_ok(mi_bridge("db", "upgrade", database_url=f"sqlite:///{path}", cwd=tmp_path))
    with sqlite3.connect(path) as connection:
        for table in ("assets", "status_history", "events", "deliveries", "delivery_attempts"):
            keys = [row for row in connection.execute(f"PRAGMA table_info({table})") if row[5]]
            # exactly "INTEGER PRIMARY KEY": the rowid itself, 64-bit and assigned by SQLite
            assert [(name, kind) for _, name, kind, *_ in keys] in (
                [("pk", "INTEGER")],
                [("seq", "INTEGER")],
            )
        insert_asset(connection, "?", pk=2**62, asset_id="far")
        insert_asset(connection, "?", asset_id="next")
        pks = [row[0] for row in connection.execute("SELECT pk FROM assets ORDER BY pk")]
    connection.close()
    assert pks == [2**62, 2**62 + 1]
