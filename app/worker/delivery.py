"""The delivery tick: claim due deliveries with a lease (``delivery_claims``), send them
concurrently, record each attempt."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass

from app.db import db
from app.notify.results import DeliveryResult
from app.outbox.sending import ClaimedDelivery, apply_results, send_claim
from app.worker.delivery_claims import claim_due_deliveries
from app.worker.runtime import DELIVERY_CONCURRENCY, WorkerRuntime

BATCH_SIZE = 32
SEND_SHARE_OF_LEASE = 0.5
#: A tick keeps claiming batches while full ones come back, for at most this long.
TICK_BUDGET_SECONDS = 5.0
#: While sends are in flight, finished ones are recorded and free slots refilled this often.
CLAIM_EVERY_SECONDS = 0.25
#: Once a send finishes, others finishing within this are recorded with it: a record transaction
#: and a claim then serve several deliveries, not one each (a burst's sends take a millisecond).
GATHER_SECONDS = 0.02
#: Free slots are refilled once this many are free (or nothing is in flight): fewer, fuller claims.
REFILL_AT = DELIVERY_CONCURRENCY // 2


@dataclass
class DeliveryReport:
    """What one delivery tick did."""

    claimed: int = 0
    sent: int = 0
    failed_disabled: int = 0


def deliver_once(runtime: WorkerRuntime) -> DeliveryReport:
    """One delivery tick: sends run concurrently, and each result is recorded as soon as it is in.

    The tick claims only as many deliveries as it has free send slots, records finished sends in
    short transactions while others are still in flight (those finishing within ``GATHER_SECONDS`` of
    each other together), and claims again once half the slots are free, so a
    receiver that holds its request for the whole 15 s occupies one slot, never the tick. It ends
    when nothing is in flight and the last claim found less than it had room for; it keeps claiming
    past ``TICK_BUDGET_SECONDS`` only while sends are in flight (a burst is drained, not stalled).
    """
    report = DeliveryReport()
    with runtime.delivery_lock, runtime.app.app_context():
        in_flight: dict[Future[DeliveryResult | None], tuple[str, ClaimedDelivery]] = {}
        started = time.monotonic()
        while True:
            room = DELIVERY_CONCURRENCY - len(in_flight)
            more = False
            if (room >= REFILL_AT or not in_flight) and not runtime.stop.is_set():
                claimed = _claim_and_send(runtime, report, in_flight, min(room, BATCH_SIZE))
                more = claimed == min(room, BATCH_SIZE)
            if not in_flight:
                if more and time.monotonic() - started < TICK_BUDGET_SECONDS:
                    continue
                break
            done, _ = wait(in_flight, timeout=CLAIM_EVERY_SECONDS, return_when=FIRST_COMPLETED)
            if done and len(done) < len(in_flight):
                done, _ = wait(in_flight, timeout=GATHER_SECONDS)
            if done:
                _record(runtime, report, [(f, *in_flight.pop(f)) for f in done])
        db.session.remove()
    return report


def _claim_and_send(
    runtime: WorkerRuntime,
    report: DeliveryReport,
    in_flight: dict[Future[DeliveryResult | None], tuple[str, ClaimedDelivery]],
    limit: int,
) -> int:
    """Claim up to ``limit`` due deliveries and start sending them; how many were claimed."""
    session = db.session()
    token = runtime.next_claim_token()
    lease = runtime.settings.bridge_lease_seconds
    claims = claim_due_deliveries(session, token, runtime.clock(), lease, limit)
    session.commit()
    report.claimed += len(claims)
    # A send must end well inside the lease, or another worker could send it meanwhile.
    context = dataclasses.replace(runtime.notifier_context, budget=lease * SEND_SHARE_OF_LEASE)
    for claim in claims:
        in_flight[runtime.delivery_pool.submit(send_claim, context, claim)] = (token, claim)
    return len(claims)


def _record(
    runtime: WorkerRuntime,
    report: DeliveryReport,
    finished: list[tuple[Future[DeliveryResult | None], str, ClaimedDelivery]],
) -> None:
    """Record finished sends in one short transaction (each in its own savepoint)."""
    session = db.session()
    by_token: dict[str, list[tuple[ClaimedDelivery, DeliveryResult | None]]] = {}
    for future, token, claim in finished:
        by_token.setdefault(token, []).append((claim, future.result()))
    for token, results in by_token.items():
        apply_results(
            session, token, results, runtime.clock(), runtime.settings.bridge_retry_schedule,
            runtime.rng, runtime.counters.delivery,
            endpoint_disable_after=runtime.settings.bridge_endpoint_disable_after,
        )  # fmt: skip
        sent = sum(1 for _, result in results if result is not None)
        report.sent += sent
        report.failed_disabled += len(results) - sent
    session.commit()
