"""Retention: delete watches that ended ``BRIDGE_RETENTION_DAYS`` ago, with every row that hangs off
them, and the heartbeat rows of workers gone for a day.

Every batch is one short transaction that deletes child tables first (attempts, deliveries, events,
status history, targets, then the watches and the asset rows nobody needs any more) and commits, so
no lock is held for long and a pass can stop between any two batches. Rows are deleted by key
(``IN`` lists of one batch's watch ids), never by a scan that could lock a table. Concurrent workers
take disjoint batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers).

Each batch adds what it deleted to ``bridge_state.pruned_rows`` in the same transaction: the
counts behind ``mi_bridge_pruned_rows_total`` are exactly the rows that went.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Delete, and_, delete, exists, or_, select, tuple_
from sqlalchemy.orm import Session

from app.health.bridge_state import locked_bridge_state
from app.models import (
    ALERTS_WATCH_ID,
    Asset,
    Base,
    BridgeState,
    Delivery,
    DeliveryAttempt,
    Event,
    IdempotencyKey,
    StatusChange,
    Target,
    Watch,
    WorkerHeartbeat,
    Workflow,
)
from app.vocabulary import DeliveryState, WatchState
from app.worker.counters import merge_snapshots

#: A heartbeat row this old belongs to a process that is gone (the liveness window is 30 s).
HEARTBEAT_RETENTION = timedelta(days=1)
#: Watches deleted per transaction: each brings its history, events, deliveries and attempts
#: (a few dozen rows for a typical watch), so a batch stays well under a second.
WATCH_BATCH = 100


def _table(model: type[Base]) -> str:
    return str(model.__tablename__)


#: Tables housekeeping deletes from: the labels of ``mi_bridge_pruned_rows_total``.
PRUNED_TABLES = tuple(
    _table(model)
    for model in (
        DeliveryAttempt,
        Delivery,
        Event,
        StatusChange,
        Target,
        Workflow,
        Watch,
        Asset,
        WorkerHeartbeat,
        IdempotencyKey,
    )
)


def prune_watch_batch(
    session: Session, now: datetime, cutoff: datetime, limit: int
) -> Counter[str]:
    """Delete up to ``limit`` watches that ended before ``cutoff``, with their dependents and the
    asset rows left unwatched, and count them in ``bridge_state``; the caller commits.

    Returns rows deleted by table (empty when no watch is due). Fewer than ``limit`` watches means
    none is left, or some wait for a later pass: watches with a delivery being sent right now (a
    live lease) stay, so that the send can record its attempt.
    """
    in_flight = exists().where(Delivery.watch_id == Watch.id, Delivery.lease_expires_at > now)
    candidates = session.execute(
        select(Watch.id, Watch.workspace, Watch.project_id, Watch.asset_id)
        .where(Watch.finished_at < cutoff, Watch.state != WatchState.WATCHING, ~in_flight)
        .order_by(Watch.finished_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Watch)
    ).all()
    ids = _without_sends_in_flight(session, [row.id for row in candidates], now)
    removed: Counter[str] = Counter()
    if not ids:
        return removed
    deliveries = select(Delivery.seq).where(Delivery.watch_id.in_(ids)).scalar_subquery()
    coordinates = {(r.workspace, r.project_id, r.asset_id) for r in candidates if r.id in ids}
    # Children before parents: the foreign keys have no ON DELETE rules.
    steps: list[tuple[type[Base], Delete]] = [
        (DeliveryAttempt, delete(DeliveryAttempt).where(DeliveryAttempt.delivery_seq.in_(deliveries))),
        (Delivery, delete(Delivery).where(Delivery.watch_id.in_(ids))),
        (Event, delete(Event).where(Event.watch_id.in_(ids))),
        (StatusChange, delete(StatusChange).where(StatusChange.watch_id.in_(ids))),
        (Target, delete(Target).where(Target.watch_id.in_(ids))),
        (Workflow, delete(Workflow).where(Workflow.watch_id.in_(ids))),
        (Watch, delete(Watch).where(Watch.id.in_(ids))),
        (Asset, _unneeded_assets(coordinates, now)),
    ]  # fmt: skip
    for model, statement in steps:
        removed[_table(model)] = _rowcount(session, statement)
    count_pruned(session, removed)
    return removed


def _without_sends_in_flight(session: Session, ids: list[str], now: datetime) -> list[str]:
    """``ids`` less the watches a delivery of which is being sent or claimed right now.

    The batch's deliveries are locked without waiting (PostgreSQL; ``SKIP LOCKED``): one that is
    leased, or locked by a claim or a send's record still in progress, keeps its watch for a later
    batch. The locks taken keep claims (which skip locked rows) away until this batch commits, and
    housekeeping never waits on a worker, so it cannot deadlock with one.
    """
    if not ids:
        return []
    of_batch = Delivery.watch_id.in_(ids)
    every = session.execute(select(Delivery.seq, Delivery.watch_id).where(of_batch)).all()
    locked = select(Delivery.seq, Delivery.lease_expires_at).where(of_batch)
    leases = dict(session.execute(locked.with_for_update(skip_locked=True)).all())
    busy = {watch_id for seq, watch_id in every if seq not in leases or _live(leases[seq], now)}
    return [watch_id for watch_id in ids if watch_id not in busy]


def _live(lease_expires_at: datetime | None, now: datetime) -> bool:
    return lease_expires_at is not None and lease_expires_at > now


def _unneeded_assets(coordinates: Collection[tuple[str, str, str]], now: datetime) -> Delete:
    """The asset rows, in any endpoint generation, of these coordinates that no watch refers to and
    nobody polls: not scheduled and not leased. A registration or a generation move that takes one
    concurrently sets ``next_poll_at`` (so the row no longer matches) or refers to it (the foreign
    key then fails the later of the two transactions, never leaving a dangling watch)."""
    referenced = exists().where(Watch.asset_pk == Asset.pk)
    lease_free = or_(Asset.lease_expires_at.is_(None), Asset.lease_expires_at < now)
    return delete(Asset).where(
        tuple_(Asset.workspace, Asset.project_id, Asset.asset_id).in_(list(coordinates)),
        and_(Asset.next_poll_at.is_(None), lease_free, ~referenced),
    )


def prune_heartbeats(session: Session, now: datetime) -> int:
    """Delete heartbeat rows not seen for ``HEARTBEAT_RETENTION``, folding their counters into
    ``bridge_state.retired_counters``; returns how many. The caller commits.

    ``RETURNING`` hands back exactly the rows deleted (a worker beating meanwhile keeps its row and
    its counters). A process silent for a day that then beats again starts a new row with its
    cumulative counters: its totals before the pause then count twice, an accepted oddity.
    """
    deleted = session.scalars(
        delete(WorkerHeartbeat)
        .where(WorkerHeartbeat.last_seen_at < now - HEARTBEAT_RETENTION)
        .returning(WorkerHeartbeat.counters)
        .execution_options(synchronize_session=False)
    ).all()
    if deleted:
        state = locked_bridge_state(session)
        retired: dict[str, Any] = dict(state.retired_counters or {})
        for counters in deleted:
            retired = merge_snapshots(retired, counters or {})
        state.retired_counters = retired
        _add_pruned(state, {"worker_heartbeats": len(deleted)})
    return len(deleted)


#: Alert events removed per transaction.
ALERT_EVENT_BATCH = 500


def prune_alert_events(session: Session, cutoff: datetime) -> Counter[str]:
    """Delete up to ``ALERT_EVENT_BATCH`` ``bridge.alert`` events created before ``cutoff`` whose
    deliveries have all ended, with those deliveries and their attempts (the alerts' watch never
    ends, so watch retention never reaches them). Returns rows by table; the caller commits."""
    pending = exists().where(Delivery.event_id == Event.id, Delivery.state == DeliveryState.PENDING)
    event_ids = list(
        session.scalars(
            select(Event.id)
            .where(Event.watch_id == ALERTS_WATCH_ID, Event.created_at < cutoff, ~pending)
            .order_by(Event.seq)
            .limit(ALERT_EVENT_BATCH)
        )
    )
    removed: Counter[str] = Counter()
    if not event_ids:
        return removed
    seqs = select(Delivery.seq).where(Delivery.event_id.in_(event_ids)).scalar_subquery()
    removed["delivery_attempts"] = _rowcount(
        session, delete(DeliveryAttempt).where(DeliveryAttempt.delivery_seq.in_(seqs))
    )
    removed["deliveries"] = _rowcount(
        session, delete(Delivery).where(Delivery.event_id.in_(event_ids))
    )
    removed["events"] = _rowcount(session, delete(Event).where(Event.id.in_(event_ids)))
    count_pruned(session, removed)
    return removed


def purge_expired_keys(session: Session, now: datetime) -> int:
    """Delete idempotency keys past their lifetime (set when the API stored them) and count them in
    ``bridge_state``; returns how many. The caller commits."""
    removed = _rowcount(session, delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now))
    if removed:
        count_pruned(session, {"idempotency_keys": removed})
    return removed


def count_pruned(session: Session, removed: dict[str, int]) -> None:
    """Add ``removed`` (rows by table) to the cumulative counts in ``bridge_state``."""
    if any(removed.values()):
        _add_pruned(locked_bridge_state(session), removed)


def _add_pruned(state: BridgeState, removed: dict[str, int]) -> None:
    totals = Counter({table: int(value) for table, value in (state.pruned_rows or {}).items()})
    totals.update({table: value for table, value in removed.items() if value})
    state.pruned_rows = dict(totals)  # a new object: the ORM does not see changes inside a JSON


def _rowcount(session: Session, statement: Delete) -> int:
    # Bulk deletes by key: nothing in the identity map needs synchronising.
    options = {"synchronize_session": False}
    # A DELETE's result is a CursorResult (it has the rowcount); Session.execute promises a Result.
    result = cast(CursorResult[Any], session.execute(statement, execution_options=options))
    return result.rowcount or 0


def pruned_totals(pruned_rows: dict[str, Any] | None) -> Sequence[tuple[str, int]]:
    """Every pruned table with its cumulative count (0 for tables never pruned), in a fixed order."""
    rows = pruned_rows or {}
    return [(table, int(rows.get(table, 0))) for table in PRUNED_TABLES]
