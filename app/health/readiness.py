"""The one readiness rule: what ``/readyz``, the dashboard's health banner and ``/metrics`` report.

The bridge is ready when its database answers and a worker (embedded included) was seen within
``WORKER_STALE_AFTER``. Upstream and Slack credential health and a rate-limit pause are reported
beside it but do not make the bridge unready: polling and delivering go on and recover by
themselves. Upstream health is per NCP account (``accounts``, by fingerprint, never the key); the
bridge-wide ``upstream_auth`` and ``rate_limited_until`` are the single account's, or with several
accounts a summary: ``failing`` when any account fails, the latest end of any account's pause.

The database's own health is judged here too, for ``/readyz``, the worker and the web alike:
``database_trouble`` says whether an error means the database is unreachable or without its schema
(as opposed to a genuine error), ``check_database`` whether it answers and holds this code's schema.
"""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from app.db import MIGRATIONS_DIR
from app.health.bridge_state import ROW_ID
from app.models import BridgeState, UpstreamAccount, WorkerHeartbeat
from app.upstream.accounts import Accounts
from app.vocabulary import AuthHealth, DatabaseHealth, ReadinessStatus

#: A worker not seen for this long is gone (the contract's 30 s).
WORKER_STALE_AFTER = timedelta(seconds=30)


def worker_alive(last_seen: datetime | None, now: datetime) -> bool:
    """Whether a worker last seen at ``last_seen`` counts as running at ``now``."""
    return last_seen is not None and now - last_seen <= WORKER_STALE_AFTER


@dataclass(frozen=True)
class AccountHealth:
    """One NCP account's health, named by its fingerprint."""

    fingerprint: str
    auth: AuthHealth
    auth_detail: str | None
    auth_since: datetime | None
    #: The end of this account's rate-limit pause; None when its polling is not paused.
    rate_limited_until: datetime | None
    #: When that pause began (pauses that follow each other are one).
    rate_limited_since: datetime | None


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
    #: Each configured NCP account's health, by fingerprint (empty when ``read_health`` was not
    #: told the accounts, or none is configured).
    accounts: tuple[AccountHealth, ...] = ()

    @property
    def worker_ok(self) -> bool:
        return worker_alive(self.worker_last_seen, self.now)

    @property
    def status(self) -> ReadinessStatus:
        return ReadinessStatus.READY if self.worker_ok else ReadinessStatus.NO_WORKER


def read_health(session: Session, now: datetime, accounts: Accounts | None = None) -> BridgeHealth:
    """Read the heartbeats, the bridge state row and, given ``accounts``, each account's health
    (raises SQLAlchemyError if the database is down)."""
    last_seen = session.scalar(select(func.max(WorkerHeartbeat.last_seen_at)))
    state = session.get(BridgeState, ROW_ID)
    if state is None:
        shared = AccountHealth("", AuthHealth.UNKNOWN, None, None, None, None)
        slack: tuple[AuthHealth, str | None, datetime | None] = (AuthHealth.UNKNOWN, None, None)
    else:
        shared = _account_health("", state, now)
        slack = (AuthHealth(state.slack_auth), state.slack_auth_detail, state.slack_auth_changed_at)
    each = _accounts_health(session, shared, accounts, now) if accounts is not None else ()
    summary = shared if accounts is None or not accounts.several else _summary(each)
    return BridgeHealth(
        now=now,
        worker_last_seen=last_seen,
        upstream_auth=summary.auth,
        upstream_auth_detail=summary.auth_detail,
        upstream_auth_since=summary.auth_since,
        slack_auth=slack[0],
        slack_auth_detail=slack[1],
        slack_auth_since=slack[2],
        rate_limited_until=summary.rate_limited_until,
        accounts=each,
    )


def accounts_health(
    session: Session, now: datetime, accounts: Accounts
) -> tuple[AccountHealth, ...]:
    """Each configured account's health (see ``read_health``)."""
    shared = _account_health("", session.get(BridgeState, ROW_ID), now)
    return _accounts_health(session, shared, accounts, now)


def _account_health(
    fingerprint: str, row: BridgeState | UpstreamAccount | None, now: datetime
) -> AccountHealth:
    if row is None:
        return AccountHealth(fingerprint, AuthHealth.UNKNOWN, None, None, None, None)
    until = row.rate_limited_until
    paused = until is not None and until > now
    return AccountHealth(
        fingerprint,
        AuthHealth(row.upstream_auth),
        row.upstream_auth_detail,
        row.upstream_auth_changed_at,
        until if paused else None,
        row.rate_limited_since if paused else None,
    )


def _accounts_health(
    session: Session, shared: AccountHealth, accounts: Accounts, now: datetime
) -> tuple[AccountHealth, ...]:
    """Each configured account's health: the single account's is the bridge state row's (with
    fingerprint ``""`` when no key is configured at all: the bridge then signs with empty keys)."""
    configured = list(accounts)
    if not accounts.several:
        return tuple(replace(shared, fingerprint=acc.fingerprint) for acc in configured) or (
            shared,
        )
    rows = {
        row.fingerprint: row
        for row in session.scalars(
            select(UpstreamAccount).where(
                UpstreamAccount.fingerprint.in_([acc.fingerprint for acc in configured])
            )
        )
    }
    return tuple(
        _account_health(acc.fingerprint, rows.get(acc.fingerprint), now) for acc in configured
    )


def _summary(each: tuple[AccountHealth, ...]) -> AccountHealth:
    """Several accounts in one: the first failing one's auth (else unknown while any is, else ok),
    and the latest end of any pause."""
    failing = [acc for acc in each if acc.auth == AuthHealth.FAILING]
    if failing:
        first = failing[0]
        auth = AuthHealth.FAILING
        detail = f"account {first.fingerprint}: {first.auth_detail or 'HTTP 401'}"
        starts = [acc.auth_since for acc in failing if acc.auth_since is not None]
        since = min(starts) if starts else None
    else:
        unknown = not each or any(acc.auth == AuthHealth.UNKNOWN for acc in each)
        auth = AuthHealth.UNKNOWN if unknown else AuthHealth.OK
        detail, since = None, None
    ends = [acc.rate_limited_until for acc in each if acc.rate_limited_until is not None]
    return AccountHealth("", auth, detail, since, max(ends) if ends else None, None)


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
