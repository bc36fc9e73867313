"""The front door of the API and the dashboard: what is refused before any view runs, and how the
bridge answers while its database cannot be reached.

- A path parameter is always an id: one that is not 1 to 128 letters, digits, ``.``, ``_`` or ``-``
  names nothing, so it is ``404`` without a query (PostgreSQL refuses NUL in text, and no id holds
  any other character).
- A query argument holding NUL is ``400``: no column can hold it, so it can only fail a query.
- While the database is unreachable (connection refused or lost, pool exhausted, SQLite unable to
  open or lock its file), views answer ``503`` with ``Retry-After`` instead of ``500``. ``/readyz``
  answers for itself (its own ``503`` body says which part is missing).

Under ``/api/`` every one of these is problem+json: the refusals are HTTP errors that the API's
error handler formats after checking the token, so a caller without one still gets ``401``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response, request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import BadRequest, NotFound

from app.web.problems import problem

log = logging.getLogger(__name__)

#: Blueprints whose path parameters are ids and whose query arguments reach the database.
#: The largest request body any view accepts (Flask answers 413 beyond it).
MAX_BODY_BYTES = 64 * 1024
GUARDED_BLUEPRINTS = frozenset({"api", "dashboard"})
_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: What ``<watch_id>`` and ``<delivery_id>`` name, for the 404's detail.
_NOUNS = {"watch_id": "watch", "delivery_id": "delivery"}
#: How long a client should wait before asking again while the database is away.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE = "the database is unavailable: try again in a few seconds"
#: What SQLAlchemy raises when the database cannot serve at all, as opposed to refusing a value.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError)


def install(app: Flask) -> None:
    """Check every request's path parameters and query arguments, and answer database outages."""
    app.url_value_preprocessor(_refuse_what_no_row_holds)
    for error in DATABASE_UNAVAILABLE:
        app.register_error_handler(error, _database_unavailable)


def _refuse_what_no_row_holds(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Raise ``NotFound`` for a path parameter that cannot be an id, ``BadRequest`` for a NUL in a
    query argument; other blueprints (the demo's stand-ins, health) are left alone."""
    if request.blueprint not in GUARDED_BLUEPRINTS:
        return
    for name, value in (values or {}).items():
        if isinstance(value, str) and not _ID.fullmatch(value):
            raise NotFound(f"no {_NOUNS.get(name, name)} {value[:40]!a}")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            raise BadRequest(f"the query parameter {name[:40]!a} holds a NUL character")


def _database_unavailable(exc: Exception) -> Response:
    """``503`` with ``Retry-After``: problem+json, or a line of text on the dashboard's pages."""
    log.warning("database unavailable (%s): %s", type(exc).__name__, _first_line(exc))
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.blueprint == "dashboard":
        text = f"The database is unavailable. Try again in {RETRY_AFTER_SECONDS} seconds.\n"
        return Response(text, status=503, mimetype="text/plain", headers=headers)
    return problem(503, UNAVAILABLE, headers=headers)


def _first_line(exc: Exception) -> str:
    # SQLAlchemy appends the statement and its parameters: the log needs only the cause.
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
