"""Writing a batch of quiet polls (the steady state: nothing changed) as one UPDATE per table.

``app.worker.apply`` decides what each quiet poll writes; this module only writes it, in the cheapest
form each database has. PostgreSQL gets one statement per table whatever the batch size: the new
values travel as arrays and are joined with ``unnest`` (an ``executemany`` would still execute, and
make SQLAlchemy and psycopg prepare, one statement per row). SQLite's ``executemany`` runs in C
inside one transaction already, so it keeps that.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import BigInteger, Float, String, Text, bindparam, func, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.models import WATCHING_ONLY, Asset, Watch
from app.models.base import UTCDateTime


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


_assets, _watches = Asset.__table__, Watch.__table__


def _asset_values(source: dict) -> dict:
    return {
        "lease_owner": None,
        "lease_expires_at": None,
        "poll_count": _assets.c.poll_count + 1,
        "last_polled_at": bindparam("now"),
        "message": source["message"],
        "index_id": source["index_id"],
        "consecutive_errors": 0,
        "last_error": None,
        "interval": source["interval"],
        "next_poll_at": source["next_poll_at"],
    }


def _watch_values(source: dict) -> dict:
    return {
        "poll_count": _watches.c.poll_count + 1,
        "last_polled_at": bindparam("now"),
        "message": source["message"],
        # A quiet answer without an index id keeps the one a watch already has.
        "index_id": func.coalesce(source["index_id"], _watches.c.index_id),
    }


# PostgreSQL: UPDATE .. FROM unnest(:a_pk, :a_message, ..) AS quiet(pk, message, ..) WHERE pk = quiet.pk
# (bound names must differ from column names in an UPDATE).
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
_ASSETS_FROM_ARRAYS = (
    update(_assets).where(_assets.c.pk == _asset_arrays.c.pk).values(_asset_values(_asset_arrays.c))
)
_watch_arrays = (
    func.unnest(
        bindparam("a_id", type_=ARRAY(String)),
        bindparam("a_message", type_=ARRAY(Text)),
        bindparam("a_index_id", type_=ARRAY(BigInteger)),
    )
    .table_valued(*QuietWatch._fields)
    .render_derived(name="quiet")
)
_WATCHES_FROM_ARRAYS = (
    update(_watches)
    .where(_watches.c.id == _watch_arrays.c.id, WATCHING_ONLY)
    .values(_watch_values(_watch_arrays.c))
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


def write_quiet_polls(
    session: Session, assets: list[QuietAsset], watches: list[QuietWatch], now: datetime
) -> None:
    """Write every quiet poll of a batch: release the assets' leases and reschedule them, count the
    poll on the assets and their watching watches. Runs in the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        if assets:
            session.execute(_ASSETS_FROM_ARRAYS, {"now": now, **_columns(assets, QuietAsset)})
        if watches:
            session.execute(_WATCHES_FROM_ARRAYS, {"now": now, **_columns(watches, QuietWatch)})
        return
    if assets:
        session.execute(_ASSETS_BY_ROW, [_bound(row, now) for row in assets])
    if watches:
        session.execute(_WATCHES_BY_ROW, [_bound(row, now) for row in watches])


def _columns(rows: list, kind: type[NamedTuple]) -> dict[str, list]:
    """The rows transposed into one array per field, bound as ``a_<field>``."""
    columns = zip(*rows, strict=True)
    return {f"a_{name}": list(values) for name, values in zip(kind._fields, columns, strict=True)}


def _bound(row: NamedTuple, now: datetime) -> dict:
    return {"now": now, **{f"b_{name}": value for name, value in row._asdict().items()}}
