"""Writing a batch of quiet polls (the steady state: nothing changed) in as few round trips as can be.

``app.worker.apply`` decides what each quiet poll writes; this module only writes it, in the cheapest
form each database has. PostgreSQL gets one statement for the whole batch whatever its size: the new
values travel as arrays joined with ``unnest`` (an ``executemany`` would still execute one statement
per row), and the assets', the watches' and the bridge state's UPDATEs are chained as data-modifying
CTEs, so a batch costs one round trip. SQLite gets one statement per table: the batch's rows as one
JSON text joined with ``json_each`` (an ``executemany`` runs in C, but SQLAlchemy binds each row's
values in Python first, datetimes through two type processors: most of the worker's time applying a
batch). Values SQLite would refuse bound one by one are refused here too (``_json_rows``), so a poison
value still fails its batch, and then only itself (``app.worker.apply``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from app.health import bridge_state
from app.models import WATCHING_ONLY, Asset, BridgeState, Watch
from app.models.base import UTCDateTime
from app.vocabulary import AuthHealth


class QuietAsset(NamedTuple):
    """An asset's new values after a quiet poll (counters and lease are handled by the UPDATE)."""

    pk: int
    message: str | None
    index_id: int | None
    interval: float
    next_poll_at: datetime


class QuietWatch(NamedTuple):
    """A watching watch's new values after a quiet poll of its asset."""

    id: str
    message: str | None
    index_id: int | None


# A mapped class's table is a Table; the ORM types it as a FromClause, which ``update`` does not take.
_assets = cast(Table, Asset.__table__)
_watches = cast(Table, Watch.__table__)
_state = cast(Table, BridgeState.__table__)

#: Where a batch's new values come from: the columns of the ``unnest`` table (PostgreSQL) or bound
#: parameters by name (other databases).
_Source = Mapping[str, Any] | ReadOnlyColumnCollection[str, Any]


def _asset_values(source: _Source) -> dict:
    return {
        "lease_owner": None,
        "lease_expires_at": None,
        "poll_count": _assets.c.poll_count + 1,
        "last_polled_at": bindparam("now"),
        "updated_at": bindparam("now"),  # explicit: an onupdate default cannot run inside a CTE
        "message": source["message"],
        "index_id": source["index_id"],
        "consecutive_errors": 0,
        "last_error": None,
        "interval": source["interval"],
        "next_poll_at": source["next_poll_at"],
    }


def _watch_values(source: _Source) -> dict:
    return {
        "poll_count": _watches.c.poll_count + 1,
        "last_polled_at": bindparam("now"),
        "updated_at": bindparam("now"),  # explicit: an onupdate default cannot run inside a CTE
        "message": source["message"],
        # A quiet answer without an index id keeps the one a watch already has.
        "index_id": func.coalesce(source["index_id"], _watches.c.index_id),
    }


# A successful poll says the credentials work: mark them so if they were not. (The row exists once
# any poll went through the ORM path of app.worker.apply, as every asset's first poll does.)
_UPSTREAM_AUTH_OK = (
    update(_state)
    .where(_state.c.id == bridge_state.ROW_ID, _state.c.upstream_auth != AuthHealth.OK)
    .values(
        upstream_auth=AuthHealth.OK,
        upstream_auth_detail=None,
        upstream_auth_changed_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
)

# PostgreSQL: UPDATE .. FROM unnest(:a_pk, :a_message, ..) AS quiet(pk, message, ..) WHERE pk = quiet.pk
# (bound names must differ from column names in an UPDATE; a_ for assets, w_ for watches).
_asset_arrays = (
    func.unnest(
        bindparam("a_pk", type_=ARRAY(BigInteger)),
        bindparam("a_message", type_=ARRAY(Text)),
        bindparam("a_index_id", type_=ARRAY(BigInteger)),
        bindparam("a_interval", type_=ARRAY(Float)),
        bindparam("a_next_poll_at", type_=ARRAY(UTCDateTime())),
    )
    .table_valued(*QuietAsset._fields)
    .render_derived(name="quiet")
)
_watch_arrays = (
    func.unnest(
        bindparam("w_id", type_=ARRAY(String)),
        bindparam("w_message", type_=ARRAY(Text)),
        bindparam("w_index_id", type_=ARRAY(BigInteger)),
    )
    .table_valued(*QuietWatch._fields)
    .render_derived(name="quiet")
)
_QUIET_ON_POSTGRES = (
    update(_watches)
    .where(_watches.c.id == _watch_arrays.c.id, WATCHING_ONLY)
    .values(_watch_values(_watch_arrays.c))
    .add_cte(
        update(_assets)
        .where(_assets.c.pk == _asset_arrays.c.pk)
        .values(_asset_values(_asset_arrays.c))
        .cte("quiet_assets"),
        _UPSTREAM_AUTH_OK.cte("upstream_auth_ok"),
    )
)

# Other databases: one executemany per table.
_ASSETS_BY_ROW = (
    update(_assets)
    .where(_assets.c.pk == bindparam("b_pk"))
    .values(_asset_values({name: bindparam(f"b_{name}") for name in QuietAsset._fields}))
)
_WATCHES_BY_ROW = (
    update(_watches)
    .where(_watches.c.id == bindparam("b_id"), WATCHING_ONLY)
    .values(
        _watch_values(
            {
                "message": bindparam("b_message"),
                "index_id": bindparam("b_index_id", type_=BigInteger),
            }
        )
    )
)


# SQLite: UPDATE .. FROM (SELECT json_extract(value, '$[0]') AS pk, .. FROM json_each(:rows)) AS quiet
# WHERE pk = quiet.pk; one JSON array per row, its fields in the NamedTuple's order.
#: UPDATE .. FROM came with SQLite 3.33; older libraries keep the ``executemany``.
_SQLITE_JSON_ROWS = sqlite3.sqlite_version_info >= (3, 33)


def _json_table(kind: type[NamedTuple], name: str, types: dict[str, Any]) -> Any:
    rows = func.json_each(bindparam("rows", type_=Text)).table_valued("value")
    fields = [
        func.json_extract(rows.c.value, literal(f"$[{i}]"), type_=types[field]).label(field)
        for i, field in enumerate(kind._fields)
    ]
    return select(*fields).select_from(rows).subquery(name)


_asset_json = _json_table(
    QuietAsset,
    "quiet",
    {"pk": Integer, "message": Text, "index_id": Integer, "interval": Float, "next_poll_at": Text},
)
_watch_json = _json_table(QuietWatch, "quiet", {"id": String, "message": Text, "index_id": Integer})
_ASSETS_FROM_JSON = (
    update(_assets).where(_assets.c.pk == _asset_json.c.pk).values(_asset_values(_asset_json.c))
)
_WATCHES_FROM_JSON = (
    update(_watches)
    .where(_watches.c.id == _watch_json.c.id, WATCHING_ONLY)
    .values(_watch_values(_watch_json.c))
)
#: The range of an SQLite INTEGER (what ``sqlite3`` refuses to bind beyond).
_INT64 = range(-(2**63), 2**63)


def write_quiet_polls(
    session: Session, assets: list[QuietAsset], watches: list[QuietWatch], now: datetime
) -> None:
    """Write every quiet poll of a batch: release the assets' leases and reschedule them, count the
    poll on the assets and their watching watches, and record that the upstream credentials work.
    Runs in the caller's transaction."""
    if not assets:
        return
    if session.get_bind().dialect.name == "postgresql":
        arrays = {**_columns(assets, QuietAsset, "a_"), **_columns(watches, QuietWatch, "w_")}
        session.execute(_QUIET_ON_POSTGRES, {"now": now, **arrays})
        return
    if session.get_bind().dialect.name == "sqlite" and _SQLITE_JSON_ROWS:
        rows = [
            (a.pk, a.message, a.index_id, a.interval, _sqlite_time(a.next_poll_at)) for a in assets
        ]
        session.execute(_ASSETS_FROM_JSON, {"now": now, "rows": _json_rows(rows)})
        if watches:
            session.execute(_WATCHES_FROM_JSON, {"now": now, "rows": _json_rows(watches)})
    else:
        session.execute(_ASSETS_BY_ROW, [_bound(row, now) for row in assets])
        if watches:
            session.execute(_WATCHES_BY_ROW, [_bound(row, now) for row in watches])
    session.execute(_UPSTREAM_AUTH_OK, {"now": now})


def _json_rows(rows: list) -> str:
    """``rows`` (tuples of ints, floats, texts and None) as one JSON text for ``json_each``.

    Refuses what binding the values one by one would: an integer beyond 64 bits (OverflowError; JSON
    would carry it as a float) and a string that is not valid Unicode (UnicodeEncodeError, raised
    when the text is bound: ``ensure_ascii=False`` keeps a lone surrogate as it is instead of an
    escape that SQLite would store)."""
    for row in rows:
        for value in row:
            if type(value) is int and value not in _INT64:
                raise OverflowError("Python int too large to convert to SQLite INTEGER")
    return json.dumps(rows, ensure_ascii=False, allow_nan=False)


def _sqlite_time(moment: datetime) -> str:
    """``moment`` as SQLAlchemy stores a ``UTCDateTime`` in SQLite: naive UTC, microseconds always."""
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    return text if len(text) > 19 else text + ".000000"


def _columns(rows: list, kind: type[NamedTuple], prefix: str) -> dict[str, list]:
    """The rows transposed into one list per field, bound as ``<prefix><field>``."""
    columns = zip(*rows, strict=True) if rows else ([] for _ in kind._fields)
    return {
        f"{prefix}{name}": list(values) for name, values in zip(kind._fields, columns, strict=True)
    }


def _bound(row: NamedTuple, now: datetime) -> dict:
    return {"now": now, **{f"b_{name}": value for name, value in row._asdict().items()}}
