"""The database handle: Flask-SQLAlchemy over our declarative ``Base``, Alembic through Flask-Migrate.

SQLite (the single-machine default) is tuned for several processes sharing one file: WAL journal, a
busy timeout, foreign keys on, and ``BEGIN IMMEDIATE`` so that a transaction takes the write lock when
it starts instead of failing to upgrade a read lock later ("database is locked").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

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
    if url.startswith("sqlite"):
        with app.app_context():
            _tune_sqlite(db.engine)


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {
            "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False}
        }
    # connect_timeout: a database host that drops packets must fail a request fast (503), not hang it.
    return {
        "pool_pre_ping": True, "pool_size": 10, "max_overflow": 10,
        "connect_args": {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
    }  # fmt: skip


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
