"""Manual retries of ended deliveries (API and dashboard)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Delivery, Target
from app.vocabulary import DeliveryState


class NoSuchDelivery(LookupError):
    """No delivery has this id."""


class NotRetryable(Exception):
    """Only ``dead`` and ``failed`` deliveries can be retried; ``str()`` says why not."""

    def __init__(self, message: str, delivery: Delivery) -> None:
        super().__init__(message)
        self.delivery = delivery


def retry_delivery(session: Session, delivery_id: str, now: datetime) -> Delivery:
    """The one retry action (API and dashboard): make an ended delivery pending again, due now,
    with a fresh retry schedule; returns it. The row is locked first, so two retries of one
    delivery cannot both succeed.

    ``attempt_count`` keeps counting (it is the delivery's whole life); the fresh schedule starts
    after the attempt that ended the delivery (``app.outbox.attempts``: ``gave_up``, ``refused``...).

    It keeps its event, so the receiver sees the same ``webhook-id``. A target disabled by an
    earlier answer is re-enabled: an operator asked to send to it. Raises ``NoSuchDelivery`` or
    ``NotRetryable``; the caller commits.
    """
    delivery = session.scalars(
        select(Delivery).where(Delivery.id == delivery_id).with_for_update()
    ).one_or_none()
    if delivery is None:
        raise NoSuchDelivery(delivery_id)
    if delivery.state not in (DeliveryState.DEAD, DeliveryState.FAILED):
        raise NotRetryable(
            f"the delivery is {delivery.state}; only dead or failed ones can be retried", delivery
        )
    delivery.state = DeliveryState.PENDING
    delivery.next_attempt_at = delivery.updated_at = now
    target = session.get(Target, delivery.target_id)
    if target is not None and target.disabled:
        target.disabled, target.disabled_reason, target.disabled_at = False, None, None
    return delivery
