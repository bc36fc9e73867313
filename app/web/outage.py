"""How the web answers while its database is unreachable or has no schema yet.

Every view that needs the database then fails the same way. Instead of a ``500`` and a traceback per
request, the answer is ``503`` with ``Retry-After``: problem+json titled "Database unavailable", or on
the dashboard a page that says so. The log gets one line when it starts and at most one a minute
while it lasts (a ``DatabaseGate`` per app, as the worker has). ``/readyz`` answers for itself.

Which errors count is ``app.health.readiness.database_trouble``'s rule: a refused or lost connection,
an exhausted pool, a SQLite file that cannot be opened or stays locked, a missing table. Any other
database error (a syntax error, a deadlock, a missing column) stays a ``500`` with its traceback.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, request
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.health.readiness import database_reason, database_trouble
from app.services import services
from app.vocabulary import DatabaseHealth
from app.web.problems import problem
from app.worker.database_gate import DatabaseGate

log = logging.getLogger(__name__)

TITLE = "Database unavailable"
SCHEMA_MISSING = "the database has no schema yet: run `mi-bridge db upgrade`, then try again"
PAGE = "dashboard/database_unavailable.html"
_GATE = "mi_bridge_database_gate"
#: How long a client should wait before asking again while the database is away.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE = "the database is unavailable: try again in a few seconds"
#: What SQLAlchemy raises for an outage: the database cannot serve at all (as opposed to refusing a
#: value), and ProgrammingError, PostgreSQL's missing table.
HANDLED = (OperationalError, InterfaceError, PoolTimeoutError, ProgrammingError)


def install(app: Flask) -> None:
    """Answer database outages of ``app`` with ``503``."""
    app.extensions[_GATE] = DatabaseGate(
        log, services(app).clock, meanwhile="answering 503 until it is back"
    )
    for error in HANDLED:
        app.register_error_handler(error, _database_unavailable)


def _database_unavailable(exc: Exception) -> Response:
    """``503`` for an outage; any other database error is raised again (``500``, logged in full)."""
    trouble = database_trouble(exc)
    if trouble is None:
        raise exc
    gate: DatabaseGate = current_app.extensions[_GATE]
    gate.down(trouble, database_reason(exc))
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    schema_missing = trouble == DatabaseHealth.SCHEMA_MISSING
    if request.blueprint == "dashboard":
        return _page(schema_missing, headers)
    detail = SCHEMA_MISSING if schema_missing else UNAVAILABLE
    return problem(503, detail, title=TITLE, headers=headers)


def _page(schema_missing: bool, headers: dict[str, str]) -> Response:
    # Rendered without the dashboard's context processors: its health banner reads the database.
    template = current_app.jinja_env.get_template(PAGE)
    body = template.render(
        signed_in=False, schema_missing=schema_missing, retry_after=RETRY_AFTER_SECONDS
    )
    return Response(body, status=503, mimetype="text/html", headers=headers)
