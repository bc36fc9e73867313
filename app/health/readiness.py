"""The one readiness rule: what ``/readyz``, the dashboard's health banner and ``/metrics`` report.

The bridge is ready when its database answers and a worker (embedded included) was seen within
``WORKER_STALE_AFTER``. Upstream and Slack credential health and a rate-limit pause are reported
beside it but do not make the bridge unready: polling and delivering go on and recover by
themselves.

The database's own health is judged here too, for ``/readyz``, the worker and the web alike:
``database_trouble`` says whether an error means the database is unreachable or without its schema
(as opposed to a genuine error), ``check_database`` whether it answers and holds this code's schema.
"""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from app.db import MIGRATIONS_DIR
from app.health.bridge_state import ROW_ID
from app.models import BridgeState, WorkerHeartbeat
from app.vocabulary import AuthHealth, DatabaseHealth, ReadinessStatus

#: A worker not seen for this long is gone (the contract's 30 s).
WORKER_STALE_AFTER = timedelta(seconds=30)


def worker_alive(last_seen: datetime | None, now: datetime) -> bool:
    """Whether a worker last seen at ``last_seen`` counts as running at ``now``."""
    return last_seen is not None and now - last_seen <= WORKER_STALE_AFTER


@dataclass(frozen=True)
class BridgeHealth:
    """What the database says of the bridge's health at ``now``."""

    now: datetime
    worker_last_seen: datetime | None
    upstream_auth: AuthHealth
    upstream_auth_detail: str | None
    upstream_auth_since: datetime | None
    slack_auth: AuthHealth
    slack_auth_detail: str | None
    slack_auth_since: datetime | None
    #: The end of the upstream's rate-limit pause; None when polling is not paused.
    rate_limited_until: datetime | None

    @property
    def worker_ok(self) -> bool:
        return worker_alive(self.worker_last_seen, self.now)

    @property
    def status(self) -> ReadinessStatus:
        return ReadinessStatus.READY if self.worker_ok else ReadinessStatus.NO_WORKER


def read_health(session: Session, now: datetime) -> BridgeHealth:
    """Read the heartbeats and the bridge state row (raises SQLAlchemyError if the database is down)."""
    last_seen = session.scalar(select(func.max(WorkerHeartbeat.last_seen_at)))
    state = session.get(BridgeState, ROW_ID)
    if state is None:
        return BridgeHealth(
            now, last_seen, AuthHealth.UNKNOWN, None, None, AuthHealth.UNKNOWN, None, None, None
        )
    until = state.rate_limited_until
    return BridgeHealth(
        now=now,
        worker_last_seen=last_seen,
        upstream_auth=AuthHealth(state.upstream_auth),
        upstream_auth_detail=state.upstream_auth_detail,
        upstream_auth_since=state.upstream_auth_changed_at,
        slack_auth=AuthHealth(state.slack_auth),
        slack_auth_detail=state.slack_auth_detail,
        slack_auth_since=state.slack_auth_changed_at,
        rate_limited_until=until if until is not None and until > now else None,
    )


# --- the database's own health ---------------------------------------------------------------------

# PostgreSQL SQLSTATEs (PostgreSQL manual, appendix A "PostgreSQL Error Codes"). Classes that mean
# the server cannot serve this client at all: 08 connection exception, 28 invalid authorization,
# 3D invalid catalog name (the database does not exist), 53 insufficient resources (disk full, too
# many connections).
_PG_UNREACHABLE_CLASSES = frozenset({"08", "28", "3D", "53"})
#: Class 57 codes of the same kind: admin or crash shutdown, cannot connect now (starting up),
#: database dropped, idle session timeout. (57014, a cancelled statement, is not one.)
_PG_UNREACHABLE_CODES = frozenset({"57P01", "57P02", "57P03", "57P04", "57P05"})
#: undefined_table: the schema is not there.
_PG_SCHEMA_MISSING = frozenset({"42P01"})
#: sqlite3 raises OperationalError for syntax errors too: only these messages mean an outage.
_SQLITE_UNREACHABLE = (
    "unable to open database file",
    "disk i/o error",
    "database is locked",
    "attempt to write a readonly database",
)
_SQLITE_SCHEMA_MISSING = ("no such table",)
#: How much of a driver's message a log line or a check keeps.
_REASON_CHARS = 200


def database_trouble(exc: BaseException) -> DatabaseHealth | None:
    """``UNREACHABLE`` when ``exc`` says the database cannot serve at all (connection refused or
    lost, server shutting down or starting, no such database, pool exhausted, SQLite file that
    cannot be opened or stays locked), ``SCHEMA_MISSING`` when it answers but a table is missing,
    ``None`` for any other error: a genuine one, which callers must not hide."""
    if isinstance(exc, PoolTimeoutError):
        return DatabaseHealth.UNREACHABLE
    if not isinstance(exc, DBAPIError):
        return None
    if exc.connection_invalidated:  # SQLAlchemy's dialect recognised a lost connection
        return DatabaseHealth.UNREACHABLE
    if isinstance(exc.orig, sqlite3.Error):
        message = str(exc.orig).lower()
        if message.startswith(_SQLITE_SCHEMA_MISSING):
            return DatabaseHealth.SCHEMA_MISSING
        return DatabaseHealth.UNREACHABLE if message.startswith(_SQLITE_UNREACHABLE) else None
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _PG_SCHEMA_MISSING:
        return DatabaseHealth.SCHEMA_MISSING
    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    # psycopg gives no SQLSTATE to what fails on the client's side: a refused, failed or lost
    # connection (a server's own errors always carry one).
    if sqlstate is None or sqlstate[:2] in _PG_UNREACHABLE_CLASSES:
        return DatabaseHealth.UNREACHABLE
    return DatabaseHealth.UNREACHABLE if sqlstate in _PG_UNREACHABLE_CODES else None


def database_reason(exc: BaseException) -> str:
    """The first line of the driver's message (SQLAlchemy's own text adds the statement)."""
    message = str(getattr(exc, "orig", None) or exc).strip()
    first = message.splitlines()[0].strip() if message else type(exc).__name__
    return first[:_REASON_CHARS]


@dataclass(frozen=True)
class DatabaseCheck:
    """What ``check_database`` found: the health, and a short reason when it is not ``OK``."""

    health: DatabaseHealth
    reason: str = ""


@functools.cache
def _migrations() -> tuple[frozenset[str], frozenset[str]]:
    """(the head revisions of ``app/migrations``, every revision it knows)."""
    scripts = ScriptDirectory(MIGRATIONS_DIR)
    known = frozenset(script.revision for script in scripts.walk_revisions())
    return frozenset(scripts.get_heads()), known


def check_database(engine: Engine) -> DatabaseCheck:
    """Connect and read the schema's Alembic revision: ``OK`` at this code's head (or at a revision
    it does not know, i.e. newer code migrated it), ``SCHEMA_MISSING`` without it or at an older
    one, ``UNREACHABLE`` when it does not answer. Never raises a database error."""
    try:
        with engine.connect() as connection:
            # Asked of the catalog first: a query of a missing table would make PostgreSQL log an
            # error each time the worker checks.
            if not inspect(connection).has_table("alembic_version"):
                return DatabaseCheck(DatabaseHealth.SCHEMA_MISSING, "no alembic_version table")
            rows = connection.execute(text("SELECT version_num FROM alembic_version"))
            current = frozenset(str(version) for version in rows.scalars())
    except SQLAlchemyError as exc:
        trouble = database_trouble(exc) or DatabaseHealth.UNREACHABLE
        return DatabaseCheck(trouble, database_reason(exc))
    heads, known = _migrations()
    if current == heads or not current <= known:
        return DatabaseCheck(DatabaseHealth.OK)
    found = ", ".join(sorted(current)) or "none"
    return DatabaseCheck(
        DatabaseHealth.SCHEMA_MISSING,
        f"it is at revision {found}, this code needs {', '.join(sorted(heads))}",
    )


def failed_read_health(exc: BaseException, engine: Engine) -> DatabaseHealth:
    """What a failed read of the database says of it, for ``/readyz``: ``SCHEMA_MISSING`` when it
    answers without this code's schema, else ``UNREACHABLE`` (asked again only when ``exc`` does not
    already say so: a database that drops packets costs one connect timeout, not two)."""
    if database_trouble(exc) == DatabaseHealth.UNREACHABLE:
        return DatabaseHealth.UNREACHABLE
    if check_database(engine).health == DatabaseHealth.SCHEMA_MISSING:
        return DatabaseHealth.SCHEMA_MISSING
    return DatabaseHealth.UNREACHABLE
