"""Leases on due deliveries: the database decides which worker sends what (the asset claims are in
``asset_claims``).

Order within a lane (an endpoint, or an inline target): a delivery is claimable only when every
earlier pending delivery of its lane has been attempted at least once (``first_attempted_at``);
dead and failed ones never block. A disabled endpoint's deliveries are held: never claimed.

An endpoint's ``rate_limit_per_second`` holds across every worker: each claimed delivery to it takes
the next free send slot from the endpoint row (``next_send_at`` moves on by ``1 / rate``), and waits
for it before sending; an endpoint whose slots are booked further than ``SLOT_HORIZON`` ahead is not
claimed from until they come nearer, so no send slot sits leased for long.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    Integer,
    Table,
    Update,
    and_,
    bindparam,
    exists,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.models import Delivery, Endpoint, Target
from app.notify.registry import NOTIFIERS
from app.outbox.sending import ClaimedDelivery, load_claims
from app.vocabulary import DeliveryState

#: ``state = 'pending'`` written as a literal, so the planner can always use the partial indexes on
#: pending deliveries (``ix_deliveries_pending_order``, ``ix_deliveries_lane_unattempted``): a bound
#: parameter in a prepared, generic plan would hide that the predicate holds.
_PENDING: ColumnElement[str] = literal_column(f"'{DeliveryState.PENDING.value}'")
#: How far ahead rate-limited send slots may be booked by one claim.
SLOT_HORIZON = timedelta(seconds=1)


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
    lease_free = or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < now)
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
    return (
        update(deliveries)
        .where(deliveries.c.seq.in_(due.scalar_subquery()), lease_free)
        .values(
            lease_owner=bindparam("token"),
            lease_expires_at=bindparam("expires", type_=deliveries.c.lease_expires_at.type),
        )
        .returning(deliveries.c.seq)
    )


_CLAIM = _claim_statement()


def claim_due_deliveries(
    session: Session, token: str, now: datetime, lease_seconds: float, limit: int
) -> list[ClaimedDelivery]:
    """Lease due deliveries whose turn has come (see module doc). The caller commits."""
    params = {
        "now": now,
        "horizon": now + SLOT_HORIZON,
        "limit": limit,
        "token": token,
        "expires": now + timedelta(seconds=lease_seconds),
    }
    claimed = session.connection().execute(_CLAIM, params).scalars().all()
    return book_send_slots(session, load_claims(session, list(claimed), now), now)


def book_send_slots(
    session: Session, claims: Sequence[ClaimedDelivery], now: datetime
) -> list[ClaimedDelivery]:
    """Give each claim to a rate-limited endpoint its send slot (``ClaimedDelivery.wait``); claims
    whose slot would lie beyond ``SLOT_HORIZON`` are given back (lease released) for a later tick.

    The endpoint row is locked while its slots are booked, so two workers never book the same one;
    claims to endpoints without a rate limit (as loaded by this claim) lock nothing.
    """
    limited = sorted(
        {c.target.endpoint_id for c in claims if c.rate_limited and c.target.endpoint_id}
    )
    if not limited:
        return list(claims)
    endpoints = {
        endpoint.id: endpoint
        for endpoint in session.scalars(
            select(Endpoint)
            .where(Endpoint.id.in_(limited), Endpoint.rate_limit_per_second.is_not(None))
            .order_by(Endpoint.id)
            .with_for_update()
        )
    }
    kept: list[ClaimedDelivery] = []
    released: list[int] = []
    for claim in claims:
        endpoint = endpoints.get(claim.target.endpoint_id or "")
        if endpoint is None or not endpoint.rate_limit_per_second:
            kept.append(claim)
            continue
        slot = max(endpoint.next_send_at or now, now)
        if slot > now + SLOT_HORIZON:
            released.append(claim.seq)
            continue
        endpoint.next_send_at = slot + timedelta(seconds=1 / endpoint.rate_limit_per_second)
        kept.append(dataclasses.replace(claim, wait=(slot - now).total_seconds()))
    if released:
        session.execute(
            update(Delivery)
            .where(Delivery.seq.in_(released))
            .values(lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return kept
