"""Leases on due deliveries: the database decides which worker sends what (the asset claims are in
``asset_claims``).

Order within a lane (an endpoint, or an inline target): a delivery is claimable only when every
earlier pending delivery of its lane has been attempted at least once (``first_attempted_at``);
dead and failed ones never block. A disabled endpoint's deliveries are held: never claimed.

An endpoint's ``rate_limit_per_second`` holds across every worker: each claimed delivery to it takes
the next free send slot from the endpoint row (``next_send_at`` moves on by ``1 / rate``), and waits
for it before sending; an endpoint whose slots are booked further than ``SLOT_HORIZON`` ahead is not
claimed from until they come nearer, so no send slot sits leased for long.

Chains: the order rule lets one claim take one unattempted delivery per lane (its head), so a burst
to one endpoint drained at one delivery per claim, and a claim walks every blocked delivery of the
lane (tens of milliseconds with thousands queued). A claim therefore also leases up to
``followers`` unattempted deliveries that come next in each claimed head's lane (contiguous: it stops
at the first one not due or leased), and the worker sends a chain one after another, each after the
previous attempt ended (``sending.send_chain``): the order holds within the chain as it does between
claims, and the next claim finds the lane's head after the chain.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    CompoundSelect,
    Integer,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    exists,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.models import Delivery, Endpoint, Target
from app.notify.registry import NOTIFIERS
from app.outbox.bound_lists import member_of
from app.outbox.sending import Chain, ClaimedDelivery, load_claims, release_leases
from app.vocabulary import DeliveryState

#: ``state = 'pending'`` written as a literal, so the planner can always use the partial indexes on
#: pending deliveries (``ix_deliveries_pending_order``, ``ix_deliveries_lane_unattempted``): a bound
#: parameter in a prepared, generic plan would hide that the predicate holds.
_PENDING: ColumnElement[str] = literal_column(f"'{DeliveryState.PENDING.value}'")
#: How far ahead rate-limited send slots may be booked by one claim.
SLOT_HORIZON = timedelta(seconds=1)


_DELIVERIES = cast(Table, Delivery.__table__)


def _lease_free() -> ColumnElement[bool]:
    """A delivery nobody holds: never leased, or its lease ran out before ``now`` (parameter)."""
    leased_until = _DELIVERIES.c.lease_expires_at
    return or_(leased_until.is_(None), leased_until < bindparam("now", type_=leased_until.type))


def _leasing(statement: Update) -> Update:
    """``statement`` writing the claimer's lease: parameters ``token`` and ``expires``."""
    return statement.values(
        lease_owner=bindparam("token"),
        lease_expires_at=bindparam("expires", type_=_DELIVERIES.c.lease_expires_at.type),
    )


def _claim_statement() -> Update:
    """The claim, built once (a burst claims hundreds of times a second; building the statement
    and its cache key each time cost more than running it). Parameters: ``now``, ``horizon``
    (``now + SLOT_HORIZON``), ``limit``, ``token``, ``expires``."""
    deliveries, targets, endpoints = (
        cast(Table, Delivery.__table__),
        cast(Table, Target.__table__),
        cast(Table, Endpoint.__table__),
    )
    earlier = deliveries.alias("earlier")
    now = bindparam("now", type_=deliveries.c.next_attempt_at.type)
    blocked = exists().where(
        earlier.c.lane == deliveries.c.lane,
        earlier.c.seq < deliveries.c.seq,
        earlier.c.state == _PENDING,
        earlier.c.first_attempted_at.is_(None),
    )
    lease_free = _lease_free()
    endpoint_open = or_(
        targets.c.endpoint_id.is_(None),
        and_(
            endpoints.c.disabled.is_(False),
            or_(
                endpoints.c.next_send_at.is_(None),
                endpoints.c.next_send_at
                <= bindparam("horizon", type_=endpoints.c.next_send_at.type),
            ),
        ),
    )
    due = (
        select(deliveries.c.seq)
        .select_from(
            deliveries.join(targets, targets.c.id == deliveries.c.target_id).outerjoin(
                endpoints, endpoints.c.id == targets.c.endpoint_id
            )
        )
        .where(
            deliveries.c.state == _PENDING,
            deliveries.c.next_attempt_at <= now,
            lease_free,
            targets.c.type.in_(list(NOTIFIERS)),
            endpoint_open,
            ~blocked,
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.seq)
        # Written into the SQL at execution (a handful of values): a LIMIT known to the planner.
        .limit(bindparam("limit", type_=Integer, literal_execute=True))
        .with_for_update(skip_locked=True, of=deliveries)
    )
    return _leasing(
        update(deliveries).where(deliveries.c.seq.in_(due.scalar_subquery()), lease_free)
    ).returning(deliveries.c.seq, deliveries.c.lane, deliveries.c.first_attempted_at)


_CLAIM = _claim_statement()


@functools.cache
def _next_in_lanes(lanes: int) -> Select[tuple[int, str, datetime, datetime]] | CompoundSelect:
    """The next unattempted pending deliveries after each of ``lanes`` heads, in seq order, with
    what decides whether they can be claimed. Parameters: ``lane_<i>``, ``head_<i>`` (its seq),
    ``followers`` (how many per lane). One index range per lane (``ix_deliveries_lane_unattempted``);
    built once per number of lanes."""
    d = _DELIVERIES
    members = []
    for i in range(lanes):
        nearest = (
            select(d.c.seq, d.c.lane, d.c.next_attempt_at, d.c.lease_expires_at)
            .where(
                d.c.lane == bindparam(f"lane_{i}"),
                d.c.seq > bindparam(f"head_{i}"),
                d.c.state == _PENDING,
                d.c.first_attempted_at.is_(None),
            )
            .order_by(d.c.seq)
            .limit(bindparam("followers", type_=Integer, literal_execute=True))
            .subquery(f"lane_{i}")
        )
        members.append(select(nearest))
    return members[0] if lanes == 1 else union_all(*members)


def _lease_followers(postgres: bool) -> Update:
    """Lease the deliveries chosen (``seqs``) that are still free. Parameters as ``_CLAIM``'s.

    Rows another transaction holds are skipped, never waited for (``SKIP LOCKED``): two workers
    leasing in the same lane at once (one's claim, the other's continuation) would otherwise wait
    for each other's rows, a deadlock on PostgreSQL. A skipped row ends its lane's chain there."""
    d = _DELIVERIES
    lease_free = _lease_free()
    free = (
        select(d.c.seq)
        .where(member_of(d.c.seq, "seqs", postgres), d.c.state == _PENDING, lease_free)
        .with_for_update(skip_locked=True)
    )
    return _leasing(update(d).where(d.c.seq.in_(free.scalar_subquery()), lease_free)).returning(
        d.c.seq
    )


_LEASE_FOLLOWERS = {postgres: _lease_followers(postgres) for postgres in (True, False)}


def claim_due_deliveries(
    session: Session,
    token: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    followers: int = 0,
) -> list[Chain]:
    """Lease up to ``limit`` due deliveries whose turn has come, each with up to ``followers`` of its
    lane's next ones (see module doc): the chains, in order of their first delivery. The caller
    commits."""
    params = {
        "now": now,
        "horizon": now + SLOT_HORIZON,
        "limit": limit,
        "token": token,
        "expires": now + timedelta(seconds=lease_seconds),
    }
    heads: list[tuple[int, str, datetime | None]] = sorted(
        tuple(row) for row in session.connection().execute(_CLAIM, params)
    )
    # Followers only after an unattempted head: a retry's lane may have an unattempted head of its own.
    after = {lane: seq for seq, lane, first_attempted_at in heads if first_attempted_at is None}
    following = _lease_lane_ranges(session, after, params, followers) if followers > 0 else {}
    return _chains(
        session,
        token,
        [
            [seq, *(following.get(lane, ()) if first_attempted_at is None else ())]
            for seq, lane, first_attempted_at in heads
        ],
        now,
    )


def claim_continuations(
    session: Session,
    token: str,
    now: datetime,
    lease_seconds: float,
    sent: dict[str, tuple[int, int]],
    length: int,
) -> list[Chain]:
    """Lease, for each lane of ``sent`` (lane: the first and last seq of a chain of it just sent and
    recorded), up to ``length`` of its next unattempted deliveries, contiguous, due and free (see
    module doc): the lane's next chain, found by one index range per lane instead of a claim that
    walks the lane's blocked deliveries. Its first one is the lane's head: a lane with one of that
    chain still unattempted (its record lost with the lease) gets none, as does one whose head
    another worker claimed first. The caller commits."""
    params = {"now": now, "token": token, "expires": now + timedelta(seconds=lease_seconds)}
    after = {lane: first - 1 for lane, (first, _last) in sent.items()}
    ends = {lane: last for lane, (_first, last) in sent.items()}
    leased = _lease_lane_ranges(session, after, params, length, unattempted_end=ends)
    return _chains(session, token, list(leased.values()), now)


def _chains(
    session: Session, token: str, seqs: Sequence[Sequence[int]], now: datetime
) -> list[Chain]:
    """The claimed chains of these leased seqs (each in order): loaded, rate-limit slots booked."""
    loaded = {claim.seq: claim for claim in load_claims(session, [s for c in seqs for s in c], now)}
    chains = [tuple(loaded[seq] for seq in chain if seq in loaded) for chain in seqs]
    return book_send_slots(session, token, [chain for chain in chains if chain], now)


def _lease_lane_ranges(
    session: Session,
    after: dict[str, int],
    params: dict[str, object],
    count: int,
    unattempted_end: dict[str, int] | None = None,
) -> dict[str, list[int]]:
    """Lease, in each lane of ``after`` (lane: a seq), up to ``count`` of the unattempted pending
    deliveries that come next after that seq: by lane, the seqs leased, in order. Each lane's are
    contiguous: the first one that is not due or is leased elsewhere ends it (the ones after it stay
    where they are), as does, in a lane of ``unattempted_end``, one at or before that seq.
    ``params``: ``now``, ``token``, ``expires``."""
    stop_at = unattempted_end or {}
    if not after:
        return {}
    now = cast(datetime, params["now"])
    lane_params: dict[str, object] = {"followers": count}
    for i, (lane, seq) in enumerate(after.items()):
        lane_params[f"lane_{i}"], lane_params[f"head_{i}"] = lane, seq
    connection = session.connection()
    rows = connection.execute(_next_in_lanes(len(after)), lane_params).all()
    chosen: dict[str, list[int]] = {}
    ended: set[str] = set()
    for seq, lane, next_attempt_at, lease_expires_at in sorted(rows):
        if lane in ended:
            continue
        if (
            seq <= stop_at.get(lane, 0)
            or next_attempt_at is None
            or next_attempt_at > now
            or (lease_expires_at is not None and lease_expires_at >= now)
        ):
            ended.add(lane)
            continue
        chosen.setdefault(lane, []).append(seq)
    if not chosen:
        return {}
    postgres = connection.dialect.name == "postgresql"
    wanted = [seq for seqs in chosen.values() for seq in seqs]
    leased = set(
        connection.execute(_LEASE_FOLLOWERS[postgres], {**params, "seqs": wanted}).scalars()
    )
    result: dict[str, list[int]] = {}
    lost: list[int] = []
    for lane, seqs in chosen.items():
        kept = list(itertools.takewhile(leased.__contains__, seqs))
        lost.extend(seq for seq in seqs[len(kept) :] if seq in leased)
        if kept:
            result[lane] = kept
    # Leased past a gap (one taken meanwhile): not to be sent before the gap's one was attempted.
    release_leases(session, str(params["token"]), lost)
    return result


def book_send_slots(
    session: Session, token: str, chains: Sequence[Chain], now: datetime
) -> list[Chain]:
    """Give each claim to a rate-limited endpoint its send slot (``ClaimedDelivery.wait``); claims
    whose slot would lie beyond ``SLOT_HORIZON`` are given back (lease released) for a later tick.
    A chain's claims are booked in its order, so what is given back is its end (or all of it).

    The endpoint row is locked while its slots are booked, so two workers never book the same one;
    claims to endpoints without a rate limit (as loaded by this claim) lock nothing.
    """
    claims = [claim for chain in chains for claim in chain]
    limited = sorted(
        {c.target.endpoint_id for c in claims if c.rate_limited and c.target.endpoint_id}
    )
    if not limited:
        return list(chains)
    endpoints = {
        endpoint.id: endpoint
        for endpoint in session.scalars(
            select(Endpoint)
            .where(Endpoint.id.in_(limited), Endpoint.rate_limit_per_second.is_not(None))
            .order_by(Endpoint.id)
            .with_for_update()
        )
    }
    kept: list[Chain] = []
    released: list[int] = []
    for chain in chains:
        booked: list[ClaimedDelivery] = []
        for claim in chain:
            endpoint = endpoints.get(claim.target.endpoint_id or "")
            if endpoint is None or not endpoint.rate_limit_per_second:
                booked.append(claim)
                continue
            slot = max(endpoint.next_send_at or now, now)
            if slot > now + SLOT_HORIZON:
                released.append(claim.seq)
                continue
            endpoint.next_send_at = slot + timedelta(seconds=1 / endpoint.rate_limit_per_second)
            booked.append(dataclasses.replace(claim, wait=(slot - now).total_seconds()))
        if booked:
            kept.append(tuple(booked))
    release_leases(session, token, released)
    session.flush()
    return kept
