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
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, Update, any_, bindparam, func, insert, update
from sqlalchemy.dialects.postgresql import ARRAY
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


def _table(model: type) -> Table:
    return cast(Table, model.__table__)  # type: ignore[attr-defined]


_deliveries, _attempts, _endpoints = _table(Delivery), _table(DeliveryAttempt), _table(Endpoint)
_now = bindparam("now", type_=_deliveries.c.updated_at.type)


def _members(column: ColumnElement[Any], name: str, postgres: bool) -> ColumnElement[bool]:
    """``column`` is one of the list bound as ``name``: ``= ANY(array)`` on PostgreSQL (one
    parameter), an expanding ``IN`` elsewhere (rendered anew for every execution: a third of a
    batch's recording time on PostgreSQL before)."""
    if postgres:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    return column.in_(bindparam(name, expanding=True))


# Built once, as Core statements on the tables: a burst records hundreds of batches a second, and
# building an ORM statement (and its cache key) each time cost more than running it.
def _succeed(postgres: bool) -> Update:
    return (
        update(_deliveries)
        .where(
            _members(_deliveries.c.seq, "seqs", postgres),
            _deliveries.c.lease_owner == bindparam("token"),
        )
        .values(
            state=DeliveryState.SUCCEEDED.value,
            attempt_count=_deliveries.c.attempt_count + 1,
            next_attempt_at=None,
            # A retry's success keeps its first attempt's time.
            first_attempted_at=func.coalesce(_deliveries.c.first_attempted_at, _now),
            lease_owner=None,
            lease_expires_at=None,
            last_error=None,
            last_error_detail=None,
            updated_at=_now,
        )
        .returning(_deliveries.c.seq)
    )


def _endpoints_succeeded(postgres: bool) -> Update:
    return (
        update(_endpoints)
        .where(_members(_endpoints.c.id, "ids", postgres))
        .values(
            last_success_at=bindparam("now", type_=_endpoints.c.last_success_at.type),
            failing_since=None,
        )
    )


#: By "is the database PostgreSQL".
_SUCCEED = {postgres: _succeed(postgres) for postgres in (True, False)}
_ENDPOINTS_SUCCEEDED = {postgres: _endpoints_succeeded(postgres) for postgres in (True, False)}
_INSERT_ATTEMPTS = insert(_attempts)


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
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    params = {"seqs": list(by_seq), "token": token, "now": now}
    recorded = set(connection.execute(_SUCCEED[postgres], params).scalars())
    if not recorded:
        return recorded
    connection.execute(
        _INSERT_ATTEMPTS, [_attempt_row(seq, by_seq[seq][1], now) for seq in sorted(recorded)]
    )
    endpoints = sorted({e for seq in recorded if (e := by_seq[seq][0]) is not None})
    if endpoints:
        connection.execute(_ENDPOINTS_SUCCEEDED[postgres], {"ids": endpoints, "now": now})
    return recorded


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
