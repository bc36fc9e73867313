"""The front door of the API and the dashboard: what is refused before any view runs.

- A path parameter is always an id: one that is not 1 to 128 letters, digits, ``.``, ``_`` or ``-``
  names nothing, so it is ``404`` without a query (PostgreSQL refuses NUL in text, and no id holds
  any other character).
- A query argument holding NUL is ``400``: no column can hold it, so it can only fail a query.

While the database is unreachable or has no schema, ``app.web.outage`` answers ``503``.

Under ``/api/`` every one of these is problem+json: the refusals are HTTP errors that the API's
error handler formats after checking the token, so a caller without one still gets ``401``.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest, NotFound

#: Blueprints whose path parameters are ids and whose query arguments reach the database.
#: The largest request body any view accepts (Flask answers 413 beyond it).
MAX_BODY_BYTES = 64 * 1024
GUARDED_BLUEPRINTS = frozenset({"api", "dashboard"})
_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
#: What ``<watch_id>``, ``<delivery_id>`` and ``<ref>`` name, for the 404's detail.
_NOUNS = {"watch_id": "watch", "delivery_id": "delivery", "ref": "endpoint"}


def install(app: Flask) -> None:
    """Check every request's path parameters and query arguments (database outages are
    ``app.web.outage``'s)."""
    app.url_value_preprocessor(_refuse_what_no_row_holds)


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
