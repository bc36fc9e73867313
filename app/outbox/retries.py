"""Manual retries of ended deliveries (API and dashboard)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.models import Delivery, Target
from app.vocabulary import DeliveryState


class NotRetryable(Exception):
    """Only ``dead`` and ``failed`` deliveries can be retried; ``str()`` says why not."""


def retry_delivery(session: Session, delivery: Delivery, now: datetime) -> None:
    """Make an ended delivery pending again, due now, with a fresh retry schedule.

    It keeps its event, so the receiver sees the same ``webhook-id``. A target disabled by an
    earlier answer is re-enabled: an operator asked to send to it. The caller commits.
    """
    if delivery.state not in (DeliveryState.DEAD, DeliveryState.FAILED):
        raise NotRetryable(
            f"the delivery is {delivery.state}; only dead or failed ones can be retried"
        )
    delivery.state, delivery.attempt_count = DeliveryState.PENDING, 0
    delivery.next_attempt_at = delivery.updated_at = now
    target = session.get(Target, delivery.target_id)
    if target is not None and target.disabled:
        target.disabled, target.disabled_reason, target.disabled_at = False, None, None
