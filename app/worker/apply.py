"""Applying a batch of polls to the database: history, events, watch ends, and the next poll times.

Runs inside the tick's apply transaction; only the holder of the claim's lease token applies, so a
result that arrives after its lease was retaken by another worker changes nothing. A batch is loaded
in one query (its locked assets joined with their watching watches), not per asset: in the steady state
(a poll that sees no change) applying is one UPDATE per table for the whole batch
(``app.worker.quiet_writes``).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Row, and_, select
from sqlalchemy.orm import Session

from app.models import WATCHING_ONLY, Asset, StatusChange, Watch
from app.outbox.emit import emit_event
from app.outbox.envelopes import Analysis
from app.upstream.outcomes import PollOutcome, PollResult
from app.watches import states
from app.watches.assets import get_or_create_asset
from app.watches.backoff import PollPacing, error_interval, jittered, next_interval
from app.watches.observations import observe
from app.worker import bridge_state
from app.worker.claims import ClaimedAsset, lock_held
from app.worker.quiet_writes import QuietAsset, QuietWatch, write_quiet_polls

log = logging.getLogger(__name__)
MAX_RATE_LIMIT_PAUSE = timedelta(hours=1)
DEFAULT_RATE_LIMIT_PAUSE = timedelta(seconds=30)


@dataclass(frozen=True)
class PollChain:
    """Every request made for one claimed asset in one tick: the last one is the answer.

    More than one request means the generations before the last answered 404/410.
    """

    requests: tuple[tuple[str, PollResult], ...]

    @property
    def generation(self) -> str:
        return self.requests[-1][0]

    @property
    def result(self) -> PollResult:
        return self.requests[-1][1]


@dataclass(frozen=True)
class ApplyContext:
    """What applying needs besides the rows: the claim, the clock, pacing and randomness.

    ``emitted`` collects the types of the events written, so the caller can wake the deliveries.
    """

    token: str
    claimed_at: datetime
    now: datetime
    pacing: PollPacing
    rng: random.Random
    emitted: list[str] = field(default_factory=list)


def apply_batch(
    session: Session, polled: list[tuple[ClaimedAsset, PollChain]], ctx: ApplyContext
) -> int:
    """Apply each claim's chain to its asset; returns how many were applied (the rest lost the lease).

    Quiet polls (see ``_is_quiet``) take a fast path of one UPDATE per table
    (``app.worker.quiet_writes``); the others go through the ORM with every rule of history, events
    and watch ends.
    """
    held, watching = _lock_held_rows(session, ctx.token, [claim.pk for claim, _ in polled])
    quiet: list[tuple[Row, PollResult]] = []
    eventful: list[tuple[ClaimedAsset, PollChain]] = []
    for claim, chain in polled:
        row = held.get(claim.pk)
        if row is None:
            continue
        if _is_quiet(row, watching.get(claim.pk, []), chain, ctx):
            quiet.append((row, chain.result))
        else:
            eventful.append((claim, chain))
    if quiet:
        _apply_quiet(session, quiet, watching, ctx)
    if eventful:
        _apply_eventful(session, eventful, ctx)
    return len(quiet) + len(eventful)


def _lock_held_rows(
    session: Session, token: str, pks: list[int]
) -> tuple[dict[int, Row], dict[int, list[Row]]]:
    """Lock the batch's rows still leased to ``token``, and read their watching watches, in one
    query (plain rows: no ORM objects to build). Returns (assets by pk, watching watches by asset pk).
    """
    held: dict[int, Row] = {}
    watching: dict[int, list[Row]] = {}
    if not pks:
        return held, watching
    assets, watches = Asset.__table__, Watch.__table__
    statement = (
        select(
            assets.c.pk, assets.c.api, assets.c.status, assets.c.interval,
            watches.c.id.label("watch_id"), watches.c.status.label("watch_status"),
            watches.c.created_at.label("watch_created_at"),
        )
        .select_from(
            assets.outerjoin(watches, and_(watches.c.asset_pk == assets.c.pk, WATCHING_ONLY))
        )
        .where(assets.c.pk.in_(pks), assets.c.lease_owner == token)
        .order_by(assets.c.pk)
        .with_for_update(of=assets)  # the assets only: the watches are read, not written here
    )  # fmt: skip
    for row in session.execute(statement):
        held[row.pk] = row
        if row.watch_id is not None:
            watching.setdefault(row.pk, []).append(row)
    return held, watching


def _is_quiet(asset: Row, watches: list[Row], chain: PollChain, ctx: ApplyContext) -> bool:
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
            w.watch_status == result.status and w.watch_created_at <= ctx.claimed_at
            for w in watches
        )
    )


def _apply_quiet(
    session: Session,
    polled: list[tuple[Row, PollResult]],
    watching: dict[int, list[Row]],
    ctx: ApplyContext,
) -> None:
    """What ``_apply_poll`` does for quiet polls, written as one UPDATE per table for the batch."""
    assets, watches = [], []
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
    session: Session, polled: list[tuple[ClaimedAsset, PollChain]], ctx: ApplyContext
) -> None:
    """The ORM path: every rule of ``_apply_poll``, for polls that are not quiet."""
    assets = lock_held(session, ctx.token, [claim.pk for claim, _ in polled])
    watches = _active_watches(session, list(assets))
    # Held for the whole batch: the identity map keeps unmodified rows only weakly, and without
    # this reference every asset's record_upstream_auth would autoflush and SELECT the row again.
    state = bridge_state.bridge_state(session)
    for claim, chain in polled:
        asset = assets.get(claim.pk)
        if asset is not None:
            _apply_poll(session, asset, watches, chain, ctx)
    del state


def _apply_poll(
    session: Session,
    asset: Asset,
    watches_by_asset: dict[int, list[Watch]],
    chain: PollChain,
    ctx: ApplyContext,
) -> None:
    """Apply ``chain`` to ``asset`` (locked and leased to ``ctx.token``) and its watching watches."""
    asset.lease_owner = asset.lease_expires_at = None
    previous_poll = asset.last_polled_at
    asset.poll_count += len(chain.requests)
    asset.last_polled_at = ctx.now
    watches = watches_by_asset.get(asset.pk, [])
    polled = [w for w in watches if w.created_at <= ctx.claimed_at]
    for watch in polled:
        watch.poll_count += len(chain.requests)
        watch.last_polled_at = ctx.now
    answered = asset
    if chain.generation != asset.api:
        answered = _move_to_generation(session, asset, polled, chain.generation, ctx.now)
    result = chain.result
    if result.outcome is PollOutcome.STATUS:
        _apply_status(
            session, answered, polled, result, moved=answered is not asset, ctx=ctx,
            previous_poll=previous_poll,
        )  # fmt: skip
    elif result.outcome in (PollOutcome.NOT_FOUND, PollOutcome.PERMANENT):
        _end_in_error(session, polled, result, ctx)
        answered.last_error = result.detail
    else:
        _apply_trouble(session, answered, result, ctx)
    _schedule(
        asset, [w for w in watches if w.state == states.WATCHING and w.asset_pk == asset.pk], ctx
    )
    if answered is not asset:
        session.flush()
        moved_to = _active_watches(session, [answered.pk]).get(answered.pk, [])
        if answered.pk in watches_by_asset:  # the successor is in this batch too: apply sees them
            watches_by_asset[answered.pk] = moved_to
        _schedule(answered, moved_to, ctx)


def _active_watches(session: Session, asset_pks: list[int]) -> dict[int, list[Watch]]:
    """The watching watches of these assets, by asset, each list in id order.

    Targets are not loaded here: they are needed only when an event is written, which is rare.
    """
    by_asset: dict[int, list[Watch]] = {pk: [] for pk in asset_pks}
    if asset_pks:
        statement = (
            select(Watch)
            .where(Watch.asset_pk.in_(asset_pks), WATCHING_ONLY)
            .order_by(Watch.asset_pk, Watch.id)
        )
        for watch in session.scalars(statement):
            by_asset[watch.asset_pk].append(watch)
    return by_asset


def _move_to_generation(
    session: Session, asset: Asset, watches: list[Watch], generation: str, now: datetime
) -> Asset:
    """Move ``watches`` to their asset's row in ``generation`` (its predecessors answered 404/410)."""
    successor = get_or_create_asset(
        session, asset.workspace, asset.project_id, asset.asset_id, generation, now
    )
    for watch in watches:
        watch.api = generation
        watch.asset_pk = successor.pk
        watch.reason = states.REASON_GENERATION_GONE
        watch.updated_at = now
    session.flush()
    return successor


def _apply_status(
    session: Session,
    asset: Asset,
    watches: list[Watch],
    result: PollResult,
    *,
    moved: bool,
    ctx: ApplyContext,
    previous_poll: datetime | None,
) -> None:
    now = ctx.now
    status = result.status or ""
    changed = asset.status != status or asset.interval <= 0
    asset.status, asset.message, asset.index_id = status, result.message, result.index_id
    asset.consecutive_errors = 0
    asset.last_error = None
    bridge_state.record_upstream_auth(session, bridge_state.OK, None, now)
    for watch in watches:
        first = watch.status is None  # every observation sets it: None means never observed
        decision = observe(watch.status, first, status, frozenset(watch.events))
        changed = changed or decision.record
        if decision.record or moved:
            session.add(
                StatusChange(
                    watch_id=watch.id,
                    status=status,
                    api=watch.api,
                    index_id=result.index_id,
                    message=result.message,
                    observed_at=now,
                )
            )
        previous = watch.status
        watch.status, watch.message = status, result.message
        if result.index_id is not None:
            watch.index_id = result.index_id
        if decision.record:
            watch.updated_at = now
        if decision.end_state:
            _finish(watch, decision.end_state, None, now)
            seen_before = max(filter(None, (previous_poll, watch.created_at)))
            watch.detection_lag_seconds = max(0.0, (now - seen_before).total_seconds())
        analysis = Analysis(status, previous, watch.index_id, result.message)
        for event_type in decision.events:
            emit_event(
                session, watch, event_type, f"p{watch.poll_count}:{event_type}", analysis, now
            )
            ctx.emitted.append(event_type)
    asset.interval = next_interval(asset.interval, ctx.pacing, changed=changed)


def _end_in_error(
    session: Session, watches: list[Watch], result: PollResult, ctx: ApplyContext
) -> None:
    """Permanent trouble of these watches: 404 from the last generation, or another 4xx."""
    now = ctx.now
    not_found = result.outcome is PollOutcome.NOT_FOUND
    reason = states.REASON_ASSET_NOT_FOUND if not_found else states.REASON_UPSTREAM_REJECTED
    message = result.message or result.detail
    for watch in watches:
        _finish(watch, states.ERROR, reason, now)
        watch.message = message
        if "watch.error" in watch.events:
            analysis = Analysis(watch.status, watch.status, watch.index_id, message)
            emit_event(session, watch, "watch.error", "error", analysis, now)
            ctx.emitted.append("watch.error")


def _apply_trouble(session: Session, asset: Asset, result: PollResult, ctx: ApplyContext) -> None:
    """Transient errors, 429 and 401: watches keep watching; the bridge slows down."""
    asset.last_error = result.detail
    if result.outcome is PollOutcome.RATE_LIMITED:
        pause = DEFAULT_RATE_LIMIT_PAUSE
        if result.retry_after is not None:
            pause = min(MAX_RATE_LIMIT_PAUSE, timedelta(seconds=result.retry_after))
        log.warning("upstream rate limit (429): polling paused for %.0f s", pause.total_seconds())
        bridge_state.pause_polling_until(session, ctx.now + pause)
        asset.interval = max(asset.interval, ctx.pacing.base, pause.total_seconds())
    elif result.outcome is PollOutcome.AUTH:
        detail = result.message or result.detail
        log.warning("upstream authentication failed (%s): check NCP keys and the clock", detail)
        bridge_state.record_upstream_auth(session, bridge_state.FAILING, detail, ctx.now)
        asset.interval = ctx.pacing.cap  # retry slowly: a credentials problem needs a human
    else:
        asset.consecutive_errors += 1
        asset.interval = error_interval(asset.interval, ctx.pacing)
        log.info("poll of asset %s (%s) failed: %s", asset.asset_id, asset.api, result.detail)


def _finish(watch: Watch, state: str, reason: str | None, now: datetime) -> None:
    watch.state = state
    if reason is not None:
        watch.reason = reason
    watch.finished_at = now
    watch.updated_at = now


def _schedule(asset: Asset, waiting: list[Watch], ctx: ApplyContext) -> None:
    """Next poll: now for a watch that joined during the poll, else after the interval, or never.

    ``waiting`` are the watches of ``asset`` still watching after this poll was applied.
    """
    if not waiting:
        asset.next_poll_at = None
    elif any(w.created_at > ctx.claimed_at for w in waiting):
        asset.next_poll_at = ctx.now
    else:
        asset.next_poll_at = ctx.now + timedelta(seconds=jittered(asset.interval, ctx.rng))
