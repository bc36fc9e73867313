"""Applying polls to the database: one item's failure never undoes the others.

Runs inside the tick's apply transaction; only the holder of the claim's lease token applies, so a
result that arrives after its lease was retaken by another worker changes nothing. A batch is loaded
in one query (its locked assets joined with their watching watches), not per asset: in the steady state
(a poll that sees no change) applying is one UPDATE per table for the whole batch
(``app.worker.quiet_writes``); the other polls go through the ORM rules of ``app.worker.poll_rules``.

Containment: the quiet writes run in one savepoint, and the other polls together in another. A poll
whose writes fail (a value the database refuses, or any other exception) fails its group's savepoint;
the group is then applied again one poll at a time, each in a savepoint of its own, so that only the
culprit is undone and recorded as a failed poll of its asset (``record_unstorable``). Batch first:
a savepoint per poll is two more round trips and a flush of its own for every poll that changes
something (0.30-0.37x the polls/s without them when every poll did, ``bench/cost_of_02.py``), paid
now only when something fails.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import cast

from sqlalchemy import Row, Table, and_, case, exists, func, literal, select, update
from sqlalchemy.orm import Session

from app.health import bridge_state
from app.models import WATCHING_ONLY, Asset, Watch
from app.models.base import UTCDateTime
from app.upstream.outcomes import PollOutcome, PollResult, storable_text
from app.vocabulary import PollFailureKind
from app.worker.asset_claims import ClaimedAsset, lock_held
from app.worker.pacing import error_interval, jittered, next_interval
from app.worker.poll_rules import ApplyContext, PollChain, active_watches, apply_poll
from app.worker.quiet_writes import QuietAsset, QuietWatch, write_quiet_polls

__all__ = ["ApplyContext", "PollChain", "apply_batch", "record_unstorable"]

log = logging.getLogger(__name__)
#: ``assets.last_error`` of a poll whose answer could not be stored.
UNSTORABLE = "answer could not be stored ({kind})"
#: The assets table for Core statements (a mapped class's table is a Table; the ORM types it as a
#: FromClause, which ``update`` does not take).
_ASSETS = cast(Table, Asset.__table__)


def apply_batch(
    session: Session, polled: list[tuple[ClaimedAsset, PollChain]], ctx: ApplyContext
) -> int:
    """Apply each claim's chain to its asset; returns how many were applied, failed ones included
    (the rest lost the lease). Claims of several batches may be mixed. Polls that could not be
    stored are in ``ctx.failed``.

    Quiet polls (see ``_is_quiet``) take a fast path of one UPDATE per table
    (``app.worker.quiet_writes``); the others go through the ORM with every rule of history, events
    and watch ends. Raises only when the database itself fails (a savepoint cannot be rolled back,
    or a failure cannot be recorded).
    """
    held, watching = _lock_held_rows(session, [claim for claim, _ in polled])
    quiet: list[tuple[ClaimedAsset, PollChain]] = []
    eventful: list[tuple[ClaimedAsset, PollChain]] = []
    for claim, chain in polled:
        row = held.get(claim.pk)
        if row is None:
            continue
        if _is_quiet(row, watching.get(claim.pk, []), chain, claim):
            quiet.append((claim, chain))
        else:
            eventful.append((claim, chain))
    if quiet:
        rows = [(held[claim.pk], chain.result) for claim, chain in quiet]
        failure = _in_savepoint(
            session, functools.partial(_apply_quiet, session, rows, watching, ctx)
        )
        if failure is not None:
            log.warning("quiet writes of %d polls failed (%s): one by one", len(quiet), failure)
            _apply_eventful(session, quiet + eventful, ctx, batch_first=False)
            return len(quiet) + len(eventful)
    if eventful:
        _apply_eventful(session, eventful, ctx, batch_first=len(eventful) > 1)
    return len(quiet) + len(eventful)


def _in_savepoint(session: Session, write: Callable[[], None]) -> str | None:
    """Run ``write`` in a savepoint: kept, or undone alone. Returns None, or what it raised (short).

    Raises when the savepoint itself cannot be taken or rolled back: the transaction is lost then.
    """
    try:
        with session.begin_nested():
            write()
    except Exception as exc:  # whatever one write raises, it must not fail the rest
        return _describe(exc)
    return None


def _lock_held_rows(
    session: Session, claims: list[ClaimedAsset]
) -> tuple[dict[int, Row], dict[int, list[Row]]]:
    """Lock the claimed rows still leased to their claim's token, and read their watching watches,
    in one query (plain rows: no ORM objects to build). Returns (assets by pk, watching watches by
    asset pk).
    """
    held: dict[int, Row] = {}
    watching: dict[int, list[Row]] = {}
    if not claims:
        return held, watching
    tokens = {claim.pk: claim.token for claim in claims}
    assets, watches = Asset.__table__, Watch.__table__
    statement = (
        select(
            assets.c.pk, assets.c.lease_owner, assets.c.api, assets.c.status, assets.c.interval,
            watches.c.id.label("watch_id"), watches.c.status.label("watch_status"),
            # When its asset's polls started to count for the watch (``counts_from``).
            func.coalesce(watches.c.polls_from, watches.c.created_at).label("watch_created_at"),
        )
        .select_from(
            assets.outerjoin(watches, and_(watches.c.asset_pk == assets.c.pk, WATCHING_ONLY))
        )
        .where(assets.c.pk.in_(list(tokens)), assets.c.lease_owner.in_(set(tokens.values())))
        .order_by(assets.c.pk)
        .with_for_update(of=assets)  # the assets only: the watches are read, not written here
    )  # fmt: skip
    for row in session.execute(statement):
        if row.lease_owner != tokens[row.pk]:
            continue  # leased to another of the claims' tokens: not this claim's to apply
        held[row.pk] = row
        if row.watch_id is not None:
            watching.setdefault(row.pk, []).append(row)
    return held, watching


def _is_quiet(asset: Row, watches: list[Row], chain: PollChain, claim: ClaimedAsset) -> bool:
    """A poll that changes nothing but counters, message and schedule: the steady state.

    One request, answered by the asset's own generation with the status every watch of the asset
    has already observed; no watch joined during the poll. For such a poll the ORM path records no
    history, writes no event and ends no watch, so the fast path may skip it.
    """
    result = chain.result
    return (
        len(chain.requests) == 1
        and chain.generation == asset.api
        and result.outcome is PollOutcome.STATUS
        and result.status is not None
        and result.status == asset.status
        and asset.interval > 0
        and bool(watches)
        and all(
            w.watch_status == result.status and w.watch_created_at <= claim.claimed_at
            for w in watches
        )
    )


def _apply_quiet(
    session: Session,
    polled: list[tuple[Row, PollResult]],
    watching: dict[int, list[Row]],
    ctx: ApplyContext,
) -> None:
    """What ``apply_poll`` does for quiet polls, written as one UPDATE per table for the batch."""
    assets: list[QuietAsset] = []
    watches: list[QuietWatch] = []
    for asset, result in polled:
        interval = next_interval(asset.interval, ctx.pacing, changed=False)
        next_poll_at = ctx.now + timedelta(seconds=jittered(interval, ctx.rng))
        assets.append(QuietAsset(asset.pk, result.message, result.index_id, interval, next_poll_at))
        watches.extend(
            QuietWatch(watch.watch_id, result.message, result.index_id)
            for watch in watching[asset.pk]
        )
    write_quiet_polls(session, assets, watches, ctx.now)


def _apply_eventful(
    session: Session,
    polled: list[tuple[ClaimedAsset, PollChain]],
    ctx: ApplyContext,
    *,
    batch_first: bool,
) -> None:
    """The ORM path, every rule of ``apply_poll``, for polls not quiet: with ``batch_first``, all of
    them in one savepoint; if that fails (or without ``batch_first``), one savepoint per poll."""
    assets = lock_held(session, [claim for claim, _ in polled])
    watches = active_watches(session, list(assets))
    # Held for the whole batch: the identity map keeps unmodified rows only weakly, and without
    # this reference every asset's record_upstream_auth would autoflush and SELECT the row again.
    state = bridge_state.bridge_state(session)
    if batch_first:
        emitted = len(ctx.emitted)
        failure = _in_savepoint(
            session, functools.partial(_apply_all, session, polled, assets, watches, ctx)
        )
        if failure is None:
            return
        log.warning("%d polls failed together (%s): one by one", len(polled), failure)
        # Undone: the events they wrote, and the watches they may have moved to a successor.
        del ctx.emitted[emitted:]
        watches = active_watches(session, list(assets))
    for claim, chain in polled:
        asset = assets.get(claim.pk)
        if asset is None:
            continue
        emitted = len(ctx.emitted)
        failure = _in_savepoint(
            session, functools.partial(apply_poll, session, claim, asset, watches, chain, ctx)
        )
        if failure is not None:
            del ctx.emitted[emitted:]
            record_unstorable(session, claim, chain, ctx, failure)
            # The undone poll may have moved watches to a successor in this batch: read them anew.
            watches.update(active_watches(session, list(watches)))
    del state


def _apply_all(
    session: Session,
    polled: list[tuple[ClaimedAsset, PollChain]],
    assets: dict[int, Asset],
    watches: dict[int, list[Watch]],
    ctx: ApplyContext,
) -> None:
    """``apply_poll`` for every claim whose asset is held; raises at the first failure."""
    for claim, chain in polled:
        asset = assets.get(claim.pk)
        if asset is not None:
            apply_poll(session, claim, asset, watches, chain, ctx)


def record_unstorable(
    session: Session, claim: ClaimedAsset, chain: PollChain, ctx: ApplyContext, failure: str
) -> None:
    """Record a poll whose answer could not be stored as a failed poll of its asset, if ``claim.token``
    still holds it: lease released, ``last_error`` set, one more consecutive error, next poll after
    the error back-off (none if no watch is watching any more). One Core UPDATE."""
    log.warning(
        "poll of asset %s (%s): answer could not be stored: %s",
        claim.asset_id, chain.generation, failure,
    )  # fmt: skip
    assets = _ASSETS
    interval = error_interval(claim.interval, ctx.pacing)
    next_poll_at = ctx.now + timedelta(seconds=jittered(interval, ctx.rng))
    watched = exists().where(Watch.__table__.c.asset_pk == assets.c.pk, WATCHING_ONLY)
    session.execute(
        update(assets)
        .where(assets.c.pk == claim.pk, assets.c.lease_owner == claim.token)
        .values(
            lease_owner=None,
            lease_expires_at=None,
            poll_count=assets.c.poll_count + len(chain.requests),
            last_polled_at=ctx.now,
            updated_at=ctx.now,
            consecutive_errors=assets.c.consecutive_errors + 1,
            last_error=UNSTORABLE.format(kind=failure.split(":", 1)[0]),
            last_error_kind=PollFailureKind.TRANSIENT,
            last_error_status=None,
            last_error_request_id=None,
            failing_since=case(
                (assets.c.last_error.is_(None), literal(ctx.now, UTCDateTime())),
                else_=func.coalesce(assets.c.failing_since, literal(ctx.now, UTCDateTime())),
            ),
            interval=interval,
            next_poll_at=case((watched, literal(next_poll_at, UTCDateTime())), else_=None),
        )
    )
    ctx.failed.append(claim.pk)


def _describe(exc: Exception) -> str:
    """``Type: first line`` of an exception, short and storable; for a database error, of the
    driver's own error (SQLAlchemy's wrapper quotes the SQL, or says only that it autoflushed)."""
    cause = getattr(exc, "orig", None) or exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return storable_text(f"{type(cause).__name__}: {first}", 200)
