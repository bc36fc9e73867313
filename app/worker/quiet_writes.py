"""Writing a batch of quiet polls (the steady state: nothing changed) in as few round trips as can be.

``app.worker.apply`` decides what each quiet poll writes; this module only writes it, in the cheapest
form each database has. PostgreSQL gets one statement for the whole batch whatever its size: the new
values travel as arrays joined with ``unnest`` (an ``executemany`` would still execute one statement
per row), and the assets', the watches' and the bridge state's UPDATEs are chained as data-modifying
CTEs, so a batch costs one round trip. SQLite's ``executemany`` runs in C inside the process, so it
keeps that.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import BigInteger, Float, String, Table, Text, bindparam, func, update
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
    session.execute(_ASSETS_BY_ROW, [_bound(row, now) for row in assets])
    if watches:
        session.execute(_WATCHES_BY_ROW, [_bound(row, now) for row in watches])
    session.execute(_UPSTREAM_AUTH_OK, {"now": now})


def _columns(rows: list, kind: type[NamedTuple], prefix: str) -> dict[str, list]:
    """The rows transposed into one list per field, bound as ``<prefix><field>``."""
    columns = zip(*rows, strict=True) if rows else ([] for _ in kind._fields)
    return {
        f"{prefix}{name}": list(values) for name, values in zip(kind._fields, columns, strict=True)
    }


def _bound(row: NamedTuple, now: datetime) -> dict:
    return {"now": now, **{f"b_{name}": value for name, value in row._asdict().items()}}
