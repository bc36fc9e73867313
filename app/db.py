"""The database handle: Flask-SQLAlchemy over our declarative ``Base``, Alembic through Flask-Migrate.

SQLite (the single-machine default) is tuned for several processes sharing one file: WAL journal, a
busy timeout, foreign keys on, and ``BEGIN IMMEDIATE`` so that a transaction takes the write lock when
it starts instead of failing to upgrade a read lock later ("database is locked").

PostgreSQL's pooled connections are checked on checkout without a round trip (no ``pool_pre_ping``,
whose empty query cost every request one): an idle pooled connection has nothing to read, so a
socket that is readable (the server's "terminating connection" message after a restart, or the
end of a reset or closed connection) is discarded and replaced before the request uses it, as the
pre-ping did. A connection cut silently (no RST, no FIN) is caught by neither: its first statement
fails and the request answers ``503`` (``app.web.outage``), the pool reconnecting after it.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError

from app.models import Base

MIGRATIONS_DIR = str(Path(__file__).resolve().parent / "migrations")
SQLITE_BUSY_TIMEOUT_SECONDS = 30
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5

db = SQLAlchemy(model_class=Base)
migrate = Migrate(directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)


def init_db(app: Flask, url: str) -> None:
    """Bind ``db`` and migrations to ``app`` for the database at ``url``."""
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        if url.startswith("sqlite"):
            _tune_sqlite(db.engine)
        else:
            event.listen(db.engine, "checkout", discard_if_dead)


@contextmanager
def autocommit_connection(engine: Engine) -> Iterator[Connection]:
    """A pooled connection of ``engine`` outside any transaction: each statement commits by itself
    (no ``BEGIN`` and ``COMMIT`` round trips around a statement that is atomic alone)."""
    with engine.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
        }
    # connect_timeout: a database host that drops packets must fail a request fast (503), not hang it.
    return {
        "pool_pre_ping": False, "pool_size": 10, "max_overflow": 10,
        "connect_args": {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
    }  # fmt: skip


def discard_if_dead(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool ``checkout`` hook: a pooled PostgreSQL connection whose socket has something to read
    (it should have nothing while idle) or is gone is discarded (``DisconnectionError``: the pool
    connects afresh and checks again). A ``select`` on the socket, no round trip."""
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None:  # not psycopg 3: nothing to look at
        return
    try:
        poller = select.poll()  # not select.select: a descriptor may exceed FD_SETSIZE
        poller.register(pgconn.socket, select.POLLIN)
        events = poller.poll(0)
    except Exception as exc:  # a closed connection has no socket
        raise DisconnectionError("the pooled connection is closed") from exc
    if events:
        raise DisconnectionError("the server closed the pooled connection (or wrote to it)")


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see "begin").
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
