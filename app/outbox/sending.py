"""Sending claimed deliveries and recording what came of them: shared by the worker's delivery tick
and the API's test endpoint."""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, select, update
from sqlalchemy.orm import Session

from app.health import bridge_state
from app.models import Delivery, Endpoint, Event, Target
from app.notify.context import NotifierContext
from app.notify.registry import notifier_for
from app.notify.results import DeliveryResult, EventSnapshot, TargetSnapshot
from app.outbound.errors import describe_exception
from app.outbox.attempts import (
    fail_for_disabled_target,
    hold_for_disabled_endpoint,
    record_attempt,
)
from app.outbox.bound_lists import member_of
from app.outbox.endpoint_health import DEFAULT_DISABLE_AFTER, signing_keys
from app.outbox.success_batch import is_plain_success, record_successes
from app.vocabulary import AuthHealth, DeliveryOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedDelivery:
    """A claimed delivery with what sending it needs."""

    seq: int
    event: EventSnapshot
    target: TargetSnapshot
    #: Seconds to wait before sending: the endpoint's rate-limit slot (``delivery_claims``).
    wait: float = 0.0
    #: Whether its endpoint had a rate limit when claimed (only those need a send slot booked).
    rate_limited: bool = False
    #: Its ordering lane (``Delivery.lane``).
    lane: str = ""


#: Claimed deliveries of one lane, to be sent one after another in this order (``send_chain``).
Chain = tuple[ClaimedDelivery, ...]


@dataclass(frozen=True)
class ChainOutcome:
    """What sending a chain came to: each sent delivery with its result (as ``send_claim``'s), in
    order, and the ones left unsent (their leases are to be given back, no attempt recorded)."""

    sent: list[tuple[ClaimedDelivery, DeliveryResult | None]]
    unsent: list[ClaimedDelivery]


_D, _E, _T, _P = (
    cast(Table, Delivery.__table__),
    cast(Table, Event.__table__),
    cast(Table, Target.__table__),
    cast(Table, Endpoint.__table__),
)
#: The columns of a target, and of its endpoint when it is one, that a snapshot is made of.
_TARGET_COLUMNS = (
    "id", "type", "url", "channel", "secret", "disabled", "slack_channel_id", "slack_ts", "method",
    "headers", "body", "template", "language", "endpoint_id",
)  # fmt: skip
_ENDPOINT_COLUMNS = (
    "type", "url", "channel", "secret", "disabled", "method", "headers", "body", "template",
    "language", "previous_secret", "previous_secret_until", "rate_limit_per_second",
)  # fmt: skip


def _load_statement(postgres: bool) -> Select[Any]:
    """Core, built once: a burst loads hundreds of claims a second, and ORM rows (an Event, a
    Target and its joined Endpoint per delivery) cost most of the load's time."""
    return (
        select(
            _D.c.seq,
            _D.c.lane,
            _E.c.id,
            _E.c.type,
            _E.c.body,
            _E.c.created_at,
            *(_T.c[name].label(f"t_{name}") for name in _TARGET_COLUMNS),
            *(_P.c[name].label(f"e_{name}") for name in _ENDPOINT_COLUMNS),
        )
        .select_from(
            _D.join(_E, _E.c.id == _D.c.event_id)
            .join(_T, _T.c.id == _D.c.target_id)
            .outerjoin(_P, _P.c.id == _T.c.endpoint_id)
        )
        .where(member_of(_D.c.seq, "seqs", postgres))
        .order_by(_D.c.seq)
    )


_LOAD = {postgres: _load_statement(postgres) for postgres in (True, False)}


def load_claims(session: Session, seqs: list[int], now: datetime) -> list[ClaimedDelivery]:
    """Snapshots of these deliveries' events and targets (as of ``now``), in delivery order."""
    if not seqs:
        return []
    connection = session.connection()
    rows = connection.execute(_LOAD[connection.dialect.name == "postgresql"], {"seqs": seqs})
    return [
        ClaimedDelivery(
            row.seq,
            EventSnapshot(row.id, row.type, row.body, row.created_at),
            _target_snapshot(row, now),
            rate_limited=bool(row.t_endpoint_id and row.e_rate_limit_per_second),
            lane=row.lane,
        )
        for row in rows
    ]


def _target_snapshot(row: Row[Any], now: datetime) -> TargetSnapshot:
    """What sending to a ``_LOAD`` row's target needs (``t_``: the target's columns, ``e_``: its
    endpoint's); for an endpoint's target, the endpoint's destination, secrets (two during a
    rotation's overlap) and disabled flag."""
    if row.t_endpoint_id is None:
        return TargetSnapshot(
            row.t_id, row.t_type, row.t_url, row.t_channel, row.t_secret, row.t_disabled,
            row.t_slack_channel_id, row.t_slack_ts, method=row.t_method,
            headers=tuple((row.t_headers or {}).items()), body=row.t_body,
            template=row.t_template, language=row.t_language,
        )  # fmt: skip
    keys = signing_keys(row.e_secret, row.e_previous_secret, row.e_previous_secret_until, now)
    return TargetSnapshot(
        row.t_id, row.e_type, row.e_url, row.e_channel, row.e_secret, row.e_disabled,
        row.t_slack_channel_id, row.t_slack_ts, keys, row.t_endpoint_id, method=row.e_method,
        headers=tuple((row.e_headers or {}).items()), body=row.e_body,
        template=row.e_template, language=row.e_language,
    )  # fmt: skip


def send_claim(context: NotifierContext, claim: ClaimedDelivery) -> DeliveryResult | None:
    """Send one claimed delivery; None when its target is disabled (nothing is sent).

    Never raises: a notifier's unexpected exception is a failed attempt of this delivery only.
    """
    if claim.target.disabled:
        return None
    if claim.wait > 0:
        time.sleep(claim.wait)  # the endpoint's rate-limit slot, at most delivery_claims' horizon
    sender = notifier_for(claim.target.type)
    assert sender is not None  # only registered types are claimed
    try:
        return sender(context, claim.event, claim.target)
    except Exception as exc:
        log.exception("sending delivery %s failed unexpectedly", claim.seq)
        return DeliveryResult(
            DeliveryOutcome.RETRY, error=f"internal error: {type(exc).__name__}",
            error_detail=describe_exception(exc, claim.target.url)[1],
        )  # fmt: skip


_SNAPSHOT_FIELDS = frozenset(field.name for field in dataclasses.fields(TargetSnapshot))


def send_chain(context: NotifierContext, chain: Chain) -> ChainOutcome:
    """Send a lane's claimed deliveries one after another, each once the previous attempt ended:
    the lane's order holds within the chain as it does between claims.

    The first is always sent, with the whole ``context.budget``. Each next one is sent only if the
    previous one succeeded (or its target was disabled: nothing was sent) and less than half the
    budget is spent; it gets what is left of it, so at least half (with the default 60 s lease, the
    notifiers' whole 15 s). A receiver that fails is not sent the rest back to back: they are
    returned unsent, and the next claim takes them once the failure is recorded. A claim's
    rate-limit ``wait`` counts from the chain's start. What a send changes on its target (a Slack
    message's ts and channel) is passed on to the later ones to the same target, whose snapshots
    predate it: the second event of a watch edits the message the first one posted. Never raises
    (as ``send_claim``).
    """
    started = time.monotonic()
    sent: list[tuple[ClaimedDelivery, DeliveryResult | None]] = []
    # What a send changed on its target (a Slack message's ts and channel), for later ones to the
    # same target: their snapshots were taken before (the watch's message is edited, not posted again).
    changed: dict[str, dict[str, Any]] = {}
    for claim in chain:
        spent = time.monotonic() - started
        if sent:
            previous = sent[-1][1]
            if previous is not None and previous.outcome is not DeliveryOutcome.SUCCEEDED:
                break
            if context.budget is not None and spent > context.budget / 2:
                break
        own = context
        if sent and context.budget is not None:
            own = dataclasses.replace(context, budget=context.budget - spent)
        if claim.wait:
            claim = dataclasses.replace(claim, wait=max(0.0, claim.wait - spent))
        if claim.target.id in changed:
            target = dataclasses.replace(claim.target, **changed[claim.target.id])
            claim = dataclasses.replace(claim, target=target)
        result = send_claim(own, claim)
        if result is not None and result.target_updates:
            changed.setdefault(claim.target.id, {}).update(
                (column, value)
                for column, value in result.target_updates.items()
                if column in _SNAPSHOT_FIELDS
            )
        sent.append((claim, result))
    return ChainOutcome(sent, list(chain[len(sent) :]))


def release_leases(session: Session, token: str, seqs: Sequence[int]) -> None:
    """Give back the leases ``token`` holds on deliveries that will not be sent now (no attempt is
    recorded): claimable again at once."""
    if seqs:
        session.execute(
            update(Delivery)
            .where(Delivery.seq.in_(seqs), Delivery.lease_owner == token)
            .values(lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )


def apply_results(
    session: Session,
    token: str | None,
    results: Sequence[tuple[ClaimedDelivery, DeliveryResult | None]],
    now: datetime,
    schedule: tuple[float, ...],
    rng: random.Random,
    count: Callable[[str, str], None] | None = None,
    endpoint_disable_after: float = DEFAULT_DISABLE_AFTER,
) -> None:
    """Record every result whose lease ``token`` still holds (None: no lease to check).

    Plain successes are recorded together first (``success_batch``, a few statements for all of
    them). Every other result, and every success if that batch fails, is recorded in its own
    savepoint: one that cannot be stored is rolled back alone and recorded instead as a failed attempt
    saying so (its retry schedule runs on, so it ends ``dead`` rather than being sent again every
    lease period); the others are kept. ``count(outcome, target_type)`` is told about each attempt
    (the worker's counters).
    """
    handled = _apply_plain_successes(session, token, results, now, count)
    for claim, result in results:
        if claim.seq in handled:
            continue
        try:
            with session.begin_nested():
                recorded = _apply_one(
                    session, token, claim, result, now, schedule, rng, endpoint_disable_after
                )
        except Exception as exc:  # a value or row that cannot be stored: contain it to its item
            log.exception("could not record delivery %s's attempt", claim.seq)
            if result is None:
                continue
            recorded = _apply_unrecordable(
                session, token, claim, result, exc, now, schedule, rng, endpoint_disable_after
            )
        if recorded is not None and count is not None:
            count(recorded.outcome.value, claim.target.type)


def _apply_plain_successes(
    session: Session,
    token: str | None,
    results: Sequence[tuple[ClaimedDelivery, DeliveryResult | None]],
    now: datetime,
    count: Callable[[str, str], None] | None,
) -> set[int]:
    """Record the plain successes among ``results`` in one batch; the seqs it dealt with (recorded,
    or whose lease was lost). Empty when there are none, or when the batch could not be stored (its
    savepoint is rolled back and the per-item path records each of them instead)."""
    plain = {
        claim.seq: (claim, result)
        for claim, result in results
        if result is not None and is_plain_success(result)
    }
    # One success per target: two would update one target row twice (the per-item path orders them).
    per_target = Counter(claim.target.id for claim, _ in plain.values())
    plain = {seq: item for seq, item in plain.items() if per_target[item[0].target.id] == 1}
    if token is None or not plain:
        return set()
    batch = [
        (seq, claim.target.id, claim.target.endpoint_id, result)
        for seq, (claim, result) in plain.items()
    ]
    try:
        with session.begin_nested():
            recorded = record_successes(session, token, batch, now)
            if any(plain[seq][1].slack_auth is AuthHealth.OK for seq in recorded):
                bridge_state.record_slack_auth(session, AuthHealth.OK, None, now)
                session.flush()
    except Exception:
        log.exception("could not record %d successes together; recording each alone", len(batch))
        return set()
    if count is not None:
        for seq in recorded:
            count(DeliveryOutcome.SUCCEEDED.value, plain[seq][0].target.type)
    return set(plain)


def _apply_one(
    session: Session,
    token: str | None,
    claim: ClaimedDelivery,
    result: DeliveryResult | None,
    now: datetime,
    schedule: tuple[float, ...],
    rng: random.Random,
    endpoint_disable_after: float,
) -> DeliveryResult | None:
    """Record one result; the result recorded, or None (disabled target, or the lease was lost)."""
    delivery = session.get(Delivery, claim.seq, with_for_update=True, populate_existing=True)
    if delivery is None or (token is not None and delivery.lease_owner != token):
        return None
    target = session.get(Target, claim.target.id)
    assert target is not None
    if result is None and target.endpoint_id is not None:
        hold_for_disabled_endpoint(delivery, now)
        return None
    if result is None:
        fail_for_disabled_target(delivery, target, now)
        return None
    record_attempt(session, delivery, target, result, now, schedule, rng, endpoint_disable_after)
    if result.slack_auth is not None:
        bridge_state.record_slack_auth(session, result.slack_auth, result.error, now)
    session.flush()
    return result


def _apply_unrecordable(
    session: Session,
    token: str | None,
    claim: ClaimedDelivery,
    result: DeliveryResult,
    exc: Exception,
    now: datetime,
    schedule: tuple[float, ...],
    rng: random.Random,
    endpoint_disable_after: float,
) -> DeliveryResult | None:
    """Record a failed attempt in place of an answer that could not be stored; None if even that fails
    (the lease then runs out and the delivery is attempted again)."""
    failed = DeliveryResult(
        DeliveryOutcome.RETRY, status_code=result.status_code, duration_ms=result.duration_ms,
        error=f"the answer could not be recorded ({type(exc).__name__})",
    )  # fmt: skip
    try:
        with session.begin_nested():
            return _apply_one(
                session, token, claim, failed, now, schedule, rng, endpoint_disable_after
            )
    except Exception:
        log.exception("could not record delivery %s's failure either", claim.seq)
        return None
