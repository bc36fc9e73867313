"""Test databases: a migrated SQLite file per test, or a fresh PostgreSQL database per test.

PostgreSQL tests need ``MI_BRIDGE_TEST_POSTGRES_URL`` (scripts/test sets it when it can start the
machine's PostgreSQL); without it they fail, loudly, rather than skip.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

POSTGRES_ENV = "MI_BRIDGE_TEST_POSTGRES_URL"


def postgres_admin_url() -> str:
    """The configured PostgreSQL URL, or an AssertionError explaining how to provide one."""
    url = os.environ.get(POSTGRES_ENV)
    assert url, (
        f"{POSTGRES_ENV} is not set: run the tests with scripts/test (it starts PostgreSQL when it "
        "can), or point it at a database whose role may CREATE DATABASE"
    )
    return url


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def create_database(admin_url: str, template: str | None = None) -> str:
    """Create an empty (or ``template``-copied) database; returns its name."""
    name = f"mib_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        connection.execute(statement)
    return name


def drop_database(admin_url: str, name: str, timeout: float = 5.0) -> None:
    """Drop a test database, disconnecting whoever still uses it.

    ``WITH (FORCE)`` cannot end an autovacuum worker (a superuser's process) for our role, so a
    drop that meets one is tried again until the worker is done (within ``timeout`` seconds).
    """
    from tests.fixtures import wait_until

    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(admin_url, autocommit=True) as connection:

        def dropped() -> bool:
            try:
                connection.execute(statement)
            except psycopg.errors.InsufficientPrivilege:
                return False
            return True

        wait_until(dropped, timeout, f"DROP DATABASE {name} (an autovacuum worker holds it)")
