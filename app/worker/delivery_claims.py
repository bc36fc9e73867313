"""Leases on due deliveries: the database decides which worker sends what (the asset claims are in
``asset_claims``).

Per-target order: a delivery is claimable only when every earlier pending delivery to its target has
been attempted at least once (``first_attempted_at``); dead and failed ones never block.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from app.models import Delivery, Target
from app.notify.registry import NOTIFIERS
from app.outbox.sending import ClaimedDelivery, load_claims
from app.vocabulary import DeliveryState


def claim_due_deliveries(
    session: Session, token: str, now: datetime, lease_seconds: float, limit: int
) -> list[ClaimedDelivery]:
    """Lease due deliveries whose turn has come (see module doc). The caller commits."""
    earlier = aliased(Delivery)
    blocked = exists().where(
        and_(
            earlier.target_id == Delivery.target_id,
            earlier.seq < Delivery.seq,
            earlier.state == DeliveryState.PENDING,
            earlier.first_attempted_at.is_(None),
        )
    )
    lease_free = or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now)
    due = (
        select(Delivery.seq)
        .join(Target, Target.id == Delivery.target_id)
        .where(
            Delivery.state == DeliveryState.PENDING,
            Delivery.next_attempt_at <= now,
            lease_free,
            Target.type.in_(list(NOTIFIERS)),
            ~blocked,
        )
        .order_by(Delivery.next_attempt_at, Delivery.seq)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Delivery)
    )
    claimed = session.scalars(
        update(Delivery)
        .where(Delivery.seq.in_(due.scalar_subquery()), lease_free)
        .values(lease_owner=token, lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(Delivery.seq)
        .execution_options(synchronize_session=False)
    ).all()
    return load_claims(session, list(claimed))
