"""Recording a batch of plain successes in a few statements instead of several per delivery.

A burst of deliveries is mostly first-attempt successes, and recording one through the ORM
(``attempts.record_attempt``: lock and reload the delivery, load its target, read its retry round,
then write the attempt, the delivery and the endpoint) took ~8 statements. A success needs none of
those reads: its outcome ends the delivery whatever the round, and the lease condition of one UPDATE
is the check that this worker still owns it. So a batch is one UPDATE of the deliveries (``RETURNING``
the ones still leased to us), one multi-row INSERT of their attempts and one UPDATE of their
endpoints' health, and for Slack messages one ``executemany`` UPDATE of their targets' message
``ts`` and channel (docs/performance.md, section 9).

Only *plain* successes qualify (``is_plain_success``): a success whose target updates are other than
a Slack message's ``ts`` and channel, or that reports the Slack token failing, goes the per-item way,
as does every other outcome. (A success's Slack report is "the token works": the caller records it
once for the batch.)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Insert,
    Integer,
    Table,
    Text,
    Update,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.models import Delivery, DeliveryAttempt, Endpoint, Target
from app.notify.results import DeliveryResult
from app.outbox.attempts import DETAIL_CHARS, ERROR_CHARS, EXCERPT_CHARS, storable
from app.outbox.bound_lists import member_of
from app.vocabulary import AuthHealth, DeliveryOutcome, DeliveryState

#: The target columns a success may update and still be recorded in a batch (a Slack message's).
BATCHED_TARGET_COLUMNS = frozenset({"slack_ts", "slack_channel_id"})


def is_plain_success(result: DeliveryResult | None) -> bool:
    """Whether ``result`` can be recorded by ``record_successes``."""
    return (
        result is not None
        and result.outcome is DeliveryOutcome.SUCCEEDED
        and (not result.target_updates or set(result.target_updates) == BATCHED_TARGET_COLUMNS)
        and result.slack_auth in (None, AuthHealth.OK)
    )


_deliveries, _attempts, _endpoints = (
    cast(Table, Delivery.__table__),
    cast(Table, DeliveryAttempt.__table__),
    cast(Table, Endpoint.__table__),
)
_targets = cast(Table, Target.__table__)
_now = bindparam("now", type_=_deliveries.c.updated_at.type)


# Built once, as Core statements on the tables: a burst records hundreds of batches a second, and
# building an ORM statement (and its cache key) each time cost more than running it.
def _succeed(postgres: bool) -> Update:
    return (
        update(_deliveries)
        .where(
            member_of(_deliveries.c.seq, "seqs", postgres),
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
        .where(member_of(_endpoints.c.id, "ids", postgres))
        .values(
            last_success_at=bindparam("now", type_=_endpoints.c.last_success_at.type),
            failing_since=None,
        )
    )


#: By "is the database PostgreSQL".
_SUCCEED = {postgres: _succeed(postgres) for postgres in (True, False)}
_ENDPOINTS_SUCCEEDED = {postgres: _endpoints_succeeded(postgres) for postgres in (True, False)}
_INSERT_ATTEMPTS = insert(_attempts)
#: The attempt columns a success's row carries in ``_INSERT_ATTEMPTS_FROM_ARRAYS`` (by array name).
_ATTEMPT_ARRAYS = {
    "delivery_seq": ("a_seq", BigInteger),
    "duration_ms": ("a_duration_ms", Integer),
    "status_code": ("a_status_code", Integer),
    "response_excerpt": ("a_excerpt", Text),
    "error": ("a_error", Text),
    "error_detail": ("a_error_detail", Text),
}


def _insert_attempts_from_arrays() -> Insert:
    """PostgreSQL: every success's attempt in one ``INSERT .. SELECT .. FROM unnest(arrays)``, one
    array per column (``_ATTEMPT_ARRAYS``) plus ``now``. An ``executemany`` of the same rows runs one
    INSERT per row and binds each row's values in Python: ~6% of a worker's time in a burst."""
    rows = (
        func.unnest(
            *(bindparam(name, type_=ARRAY(kind)) for name, kind in _ATTEMPT_ARRAYS.values())
        )
        .table_valued(*_ATTEMPT_ARRAYS)
        .render_derived(name="success")
    )
    columns = [*_ATTEMPT_ARRAYS, "at", "outcome"]
    return insert(_attempts).from_select(
        columns,
        select(
            *(rows.c[name] for name in _ATTEMPT_ARRAYS),
            bindparam("now", type_=_attempts.c.at.type),
            literal(DeliveryOutcome.SUCCEEDED.value, type_=_attempts.c.outcome.type),
        ),
    )


_INSERT_ATTEMPTS_FROM_ARRAYS = _insert_attempts_from_arrays()
_SLACK_MESSAGES = (
    update(_targets)
    .where(_targets.c.id == bindparam("b_target"))
    .values(slack_ts=bindparam("b_ts"), slack_channel_id=bindparam("b_channel"))
)


def record_successes(
    session: Session,
    token: str,
    successes: Sequence[tuple[int, str, str | None, DeliveryResult]],
    now: datetime,
) -> set[int]:
    """Record ``(delivery seq, target id, endpoint id or None, result)`` plain successes of
    deliveries leased to ``token``, at most one per target; returns the seqs recorded (a delivery
    whose lease was lost is left alone, as the per-item path does). The caller owns the
    transaction (and a savepoint around this, to fall back to the per-item path if it raises).
    """
    by_seq = {seq: (endpoint_id, result) for seq, _target, endpoint_id, result in successes}
    targets = {seq: target_id for seq, target_id, _endpoint, _result in successes}
    connection = session.connection()
    postgres = connection.dialect.name == "postgresql"
    params = {"seqs": list(by_seq), "token": token, "now": now}
    recorded = set(connection.execute(_SUCCEED[postgres], params).scalars())
    if not recorded:
        return recorded
    rows = [_attempt_row(seq, by_seq[seq][1], now) for seq in sorted(recorded)]
    if postgres:
        arrays = {
            array: [row[column] for row in rows] for column, (array, _) in _ATTEMPT_ARRAYS.items()
        }
        connection.execute(_INSERT_ATTEMPTS_FROM_ARRAYS, {**arrays, "now": now})
    else:
        connection.execute(_INSERT_ATTEMPTS, rows)
    messages = [
        _slack_message(targets[seq], by_seq[seq][1].target_updates)
        for seq in sorted(recorded)
        if by_seq[seq][1].target_updates
    ]
    if messages:
        connection.execute(_SLACK_MESSAGES, messages)
    endpoints = sorted({e for seq in recorded if (e := by_seq[seq][0]) is not None})
    if endpoints:
        connection.execute(_ENDPOINTS_SUCCEEDED[postgres], {"ids": endpoints, "now": now})
    return recorded


def _slack_message(target_id: str, updates: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``_SLACK_MESSAGES`` for one target (both columns given: ``is_plain_success``).

    Named unlike any column of ``targets``: an executemany parameter named after a column is taken
    as that column's new value too (SQLAlchemy adds it to the SET clause)."""
    return {
        "b_target": target_id,
        "b_ts": updates["slack_ts"],
        "b_channel": updates["slack_channel_id"],
    }


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
