"""The rules of applying one poll through the ORM: history, events, watch ends, generation moves and
the next poll time. ``app.worker.apply`` runs them for the polls that are not quiet, one savepoint each.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from app.health import upstream_accounts
from app.models import WATCHING_ONLY, Asset, BridgeState, StatusChange, Watch
from app.outbox.emit import emit_event
from app.outbox.envelopes import Analysis
from app.services import services
from app.upstream.accounts import accounts_of
from app.upstream.outcomes import PollOutcome, PollResult
from app.vocabulary import AuthHealth, WatchReason, WatchState
from app.watches.assets import get_or_create_asset
from app.watches.observations import observe
from app.worker.asset_claims import ClaimedAsset
from app.worker.pacing import PollPacing, error_interval, jittered, next_interval
from app.worker.workflows import start_summary, wants_summary, workflow_of

log = logging.getLogger(__name__)
MAX_RATE_LIMIT_PAUSE = timedelta(hours=1)
DEFAULT_RATE_LIMIT_PAUSE = timedelta(seconds=30)
_LAST_ERROR = Asset.__table__.c.last_error
_AUTH_DETAIL = BridgeState.__table__.c.upstream_auth_detail


@dataclass(frozen=True)
class PollChain:
    """Every request made for one claimed asset in one tick: the last one is the answer.

    More than one request means the generations before the last answered 404/410.
    """

    requests: tuple[tuple[str, PollResult], ...]
    #: Seconds before the asset's due time its first request went out, on the clock of the process
    #: that sent it (0 or less: on time; more is a bug, counted in ``poll_earliness``).
    sent_early: float = 0.0

    @property
    def generation(self) -> str:
        return self.requests[-1][0]

    @property
    def result(self) -> PollResult:
        return self.requests[-1][1]


@dataclass(frozen=True)
class ApplyContext:
    """What applying needs besides the claims and rows: the clock, pacing and randomness.

    ``emitted`` collects the types of the events written, so the caller can wake the deliveries;
    ``failed`` the assets whose answer could not be stored (recorded as failed polls instead).
    """

    now: datetime
    pacing: PollPacing
    rng: random.Random
    emitted: list[str] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def fit(text: str | None, column: ColumnElement[Any]) -> str | None:
    """``text`` cut to ``column``'s length: what a VARCHAR column of PostgreSQL would refuse."""
    length = getattr(column.type, "length", None)
    return text if text is None or length is None else text[:length]


def apply_poll(
    session: Session,
    claim: ClaimedAsset,
    asset: Asset,
    watches_by_asset: dict[int, list[Watch]],
    chain: PollChain,
    ctx: ApplyContext,
) -> None:
    """Apply ``chain`` to ``asset`` (locked and leased to ``claim.token``) and its watching watches.

    ``watches_by_asset`` holds the watching watches of the assets being applied (``active_watches``);
    it is updated when the watches move to a successor generation that is among them. Raises
    whatever the session raises: the caller decides what a failure undoes.
    """
    asset.lease_owner = asset.lease_expires_at = None
    previous_poll = asset.last_polled_at
    asset.poll_count += len(chain.requests)
    asset.last_polled_at = ctx.now
    watches = watches_by_asset.get(asset.pk, [])
    polled = [w for w in watches if counts_from(w) <= claim.claimed_at]
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
        record_failure(answered, result, ctx.now)
    else:
        _apply_trouble(session, answered, result, ctx)
    waiting = [w for w in watches if w.state == WatchState.WATCHING and w.asset_pk == asset.pk]
    _schedule(asset, waiting, claim.claimed_at, ctx)
    if answered is not asset:
        session.flush()
        moved_to = active_watches(session, [answered.pk]).get(answered.pk, [])
        if answered.pk in watches_by_asset:  # the successor is in this batch too: apply sees them
            watches_by_asset[answered.pk] = moved_to
        _schedule(answered, moved_to, claim.claimed_at, ctx)


def active_watches(session: Session, asset_pks: list[int]) -> dict[int, list[Watch]]:
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
            if watch.asset_pk is None:
                raise AssertionError("selected by asset_pk IN (...): asset_pk cannot be null")
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
        watch.reason = WatchReason.GENERATION_GONE
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
    account = accounts_of(services().settings).account_for(asset.workspace)
    upstream_accounts.record_answered(session, [account], now)
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
            if watch.stalled_after_seconds is not None:
                watch.stalled_due_at = now + timedelta(seconds=watch.stalled_after_seconds)
        if decision.end_state:
            workflow = workflow_of(session, watch)
            if decision.end_state == WatchState.COMPLETED and wants_summary(workflow):
                start_summary(workflow, watch, now)  # it stays watching, for the summary
            else:
                _finish(watch, decision.end_state, None, now)
            watch.stalled_due_at = None
            seen_before = max(filter(None, (previous_poll, counts_from(watch))))
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
    reason = WatchReason.ASSET_NOT_FOUND if not_found else WatchReason.UPSTREAM_REJECTED
    message = result.message or result.detail
    for watch in watches:
        _finish(watch, WatchState.ERROR, reason, now)
        watch.message = message
        if "watch.error" in watch.events:
            analysis = Analysis(watch.status, watch.status, watch.index_id, message)
            emit_event(session, watch, "watch.error", "error", analysis, now)
            ctx.emitted.append("watch.error")


def _apply_trouble(session: Session, asset: Asset, result: PollResult, ctx: ApplyContext) -> None:
    """Transient errors, 429 and 401: watches keep watching; the asset's account slows down."""
    record_failure(asset, result, ctx.now)
    account = accounts_of(services().settings).account_for(asset.workspace)
    if result.outcome is PollOutcome.RATE_LIMITED:
        pause = DEFAULT_RATE_LIMIT_PAUSE
        if result.retry_after is not None:
            pause = min(MAX_RATE_LIMIT_PAUSE, timedelta(seconds=result.retry_after))
        log.warning(
            "upstream rate limit (429) for account %s: its polling paused for %.0f s",
            account.fingerprint, pause.total_seconds(),
        )  # fmt: skip
        upstream_accounts.pause_until(session, account, ctx.now + pause, ctx.now)
        asset.interval = max(asset.interval, ctx.pacing.base, pause.total_seconds())
    elif result.outcome is PollOutcome.AUTH:
        detail = fit(result.message or result.detail, _AUTH_DETAIL)
        log.warning(
            "upstream authentication failed for account %s (%s): check its NCP keys and the clock",
            account.fingerprint, detail,
        )  # fmt: skip
        upstream_accounts.record_auth(session, account, AuthHealth.FAILING, detail, ctx.now)
        asset.interval = ctx.pacing.cap  # retry slowly: a credentials problem needs a human
    else:
        asset.interval = error_interval(asset.interval, ctx.pacing)
        log.info("poll of asset %s (%s) failed: %s", asset.asset_id, asset.api, result.detail)


def record_failure(asset: Asset, result: PollResult, now: datetime) -> None:
    """Record ``result``, a failed poll, as ``asset``'s latest error (the watch JSON's ``last_error``)."""
    if asset.last_error is None or asset.failing_since is None:
        asset.failing_since = now
    asset.consecutive_errors += 1
    asset.last_error = fit(result.failure_message, _LAST_ERROR)
    asset.last_error_kind = result.failure_kind
    asset.last_error_status = result.http_status
    asset.last_error_request_id = result.request_id


def counts_from(watch: Watch) -> datetime:
    """When polls of its asset started to count for ``watch`` (``polls_from``, else registration)."""
    return watch.polls_from or watch.created_at


def _finish(watch: Watch, state: str, reason: str | None, now: datetime) -> None:
    watch.state = state
    if reason is not None:
        watch.reason = reason
    watch.finished_at = now
    watch.updated_at = now


def _schedule(asset: Asset, waiting: list[Watch], claimed_at: datetime, ctx: ApplyContext) -> None:
    """Next poll: now for a watch that joined during the poll, else after the interval, or never.

    ``waiting`` are the watches of ``asset`` still watching after this poll was applied.
    """
    if not waiting:
        asset.next_poll_at = None
    elif any(counts_from(w) > claimed_at for w in waiting):
        asset.next_poll_at = ctx.now
    else:
        asset.next_poll_at = ctx.now + timedelta(seconds=jittered(asset.interval, ctx.rng))
