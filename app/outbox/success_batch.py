"""Recording a batch of plain successes in a few statements instead of several per delivery.

A burst of deliveries is mostly first-attempt successes, and recording one through the ORM
(``attempts.record_attempt``: lock and reload the delivery, load its target, read its retry round,
then write the attempt, the delivery and the endpoint) took ~8 statements. A success needs none of
those reads: its outcome ends the delivery whatever the round, and the lease condition of one UPDATE
is the check that this worker still owns it. So a batch is one UPDATE of the deliveries (``RETURNING``
the ones still leased to us), one multi-row INSERT of their attempts and one UPDATE of their
endpoints' health (docs/performance.md, section 9).

Only *plain* successes qualify (``is_plain_success``): a success that updates its target (a Slack
thread's ``ts``) or reports Slack authentication goes the per-item way, as does every other outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, insert, literal, update
from sqlalchemy.orm import Session

from app.models import Delivery, DeliveryAttempt, Endpoint
from app.notify.results import DeliveryResult
from app.outbox.attempts import DETAIL_CHARS, ERROR_CHARS, EXCERPT_CHARS, storable
from app.vocabulary import DeliveryOutcome, DeliveryState


def is_plain_success(result: DeliveryResult | None) -> bool:
    """Whether ``result`` can be recorded by ``record_successes``."""
    return (
        result is not None
        and result.outcome is DeliveryOutcome.SUCCEEDED
        and not result.target_updates
        and result.slack_auth is None
    )


def record_successes(
    session: Session,
    token: str,
    successes: Sequence[tuple[int, str | None, DeliveryResult]],
    now: datetime,
) -> set[int]:
    """Record ``(delivery seq, endpoint id or None, result)`` plain successes of deliveries leased
    to ``token``; returns the seqs recorded (a delivery whose lease was lost is left alone, as the
    per-item path does). The caller owns the transaction (and a savepoint around this, to fall back
    to the per-item path if it raises).
    """
    by_seq = {seq: (endpoint_id, result) for seq, endpoint_id, result in successes}
    recorded = set(
        session.scalars(
            update(Delivery)
            .where(Delivery.seq.in_(list(by_seq)), Delivery.lease_owner == token)
            .values(
                state=DeliveryState.SUCCEEDED.value,
                attempt_count=Delivery.attempt_count + 1,
                next_attempt_at=None,
                first_attempted_at=_coalesce_now(now),
                lease_owner=None,
                lease_expires_at=None,
                last_error=None,
                last_error_detail=None,
                updated_at=now,
            )
            .returning(Delivery.seq)
            .execution_options(synchronize_session=False)
        )
    )
    if not recorded:
        return recorded
    session.execute(
        insert(DeliveryAttempt),
        [_attempt_row(seq, by_seq[seq][1], now) for seq in sorted(recorded)],
    )
    endpoints = sorted({e for seq in recorded if (e := by_seq[seq][0]) is not None})
    if endpoints:
        session.execute(
            update(Endpoint)
            .where(Endpoint.id.in_(endpoints))
            .values(last_success_at=now, failing_since=None)
            .execution_options(synchronize_session=False)
        )
    return recorded


def _coalesce_now(now: datetime) -> ColumnElement[datetime]:
    """``first_attempted_at`` stays when set (a retry's success), else becomes ``now``."""
    return func.coalesce(
        Delivery.first_attempted_at, literal(now, Delivery.first_attempted_at.type)
    )


def _attempt_row(seq: int, result: DeliveryResult, now: datetime) -> dict[str, object]:
    return {
        "delivery_seq": seq,
        "at": now,
        "duration_ms": result.duration_ms,
        "outcome": DeliveryOutcome.SUCCEEDED.value,
        "status_code": result.status_code,
        "response_excerpt": storable(result.excerpt, EXCERPT_CHARS),
        "error": storable(result.error, ERROR_CHARS),
        "error_detail": storable(result.error_detail, DETAIL_CHARS),
    }
