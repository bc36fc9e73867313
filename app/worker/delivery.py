"""The delivery tick: claim due deliveries with a lease (``delivery_claims``), send them
concurrently (a lane's chain one after another), record each attempt."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass

from app.db import db
from app.notify.results import DeliveryResult
from app.outbox.sending import (
    Chain,
    ChainOutcome,
    ClaimedDelivery,
    apply_results,
    release_leases,
    send_chain,
)
from app.vocabulary import DeliveryOutcome
from app.worker.delivery_claims import claim_continuations, claim_due_deliveries
from app.worker.runtime import DELIVERY_CONCURRENCY, WorkerRuntime

BATCH_SIZE = 32
#: Each claimed lane head comes with up to this many of the lane's next deliveries, sent after it
#: on the same thread (``delivery_claims``, "Chains"): a burst to one endpoint drains at the
#: receiver's pace, not at one delivery per claim.
CHAIN_FOLLOWERS = 31
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
#: After a claim that found less than it had room for, the next one waits for a send to finish or
#: this long: claiming walks the blocked deliveries of deep lanes, and a long chain may be in flight.
RECLAIM_SECONDS = 1.0


@dataclass
class DeliveryReport:
    """What one delivery tick did."""

    claimed: int = 0
    sent: int = 0
    failed_disabled: int = 0


def deliver_once(runtime: WorkerRuntime) -> DeliveryReport:
    """One delivery tick: sends run concurrently, and each result is recorded as soon as it is in.

    The tick claims only as many chains (a lane's deliveries, sent one after another) as it has
    free send slots, records finished chains in short transactions while others are still in flight
    (those finishing within ``GATHER_SECONDS`` of each other together), and claims again once half
    the slots are free, so a receiver that holds its request for the whole 15 s occupies one slot,
    never the tick. It ends when nothing is in flight and the last claim found less than it had room
    for (and no chain as long as it may be); it keeps claiming past ``TICK_BUDGET_SECONDS`` only
    while sends are in flight (a burst is drained, not stalled). A claim that raises stops the
    claiming; what is in flight is still recorded, then the exception is raised.
    """
    report = DeliveryReport()
    with runtime.delivery_lock, runtime.app.app_context():
        in_flight: dict[Future[ChainOutcome], tuple[str, Chain]] = {}
        started = time.monotonic()
        reclaim_at = 0.0
        failed: Exception | None = None  # a claim that raised: no more claims, the rest recorded
        while True:
            room = DELIVERY_CONCURRENCY - len(in_flight)
            more = False
            if (
                (room >= REFILL_AT or not in_flight)
                and time.monotonic() >= reclaim_at
                and failed is None
                and not runtime.stop.is_set()
            ):
                try:
                    more = _claim_and_send(runtime, report, in_flight, min(room, BATCH_SIZE))
                except Exception as exc:
                    failed = _claim_failed(exc)
                if not more:
                    reclaim_at = time.monotonic() + RECLAIM_SECONDS
            if not in_flight:
                if more and time.monotonic() - started < TICK_BUDGET_SECONDS:
                    continue
                break
            done, _ = wait(in_flight, timeout=CLAIM_EVERY_SECONDS, return_when=FIRST_COMPLETED)
            if done and len(done) < len(in_flight):
                done, _ = wait(in_flight, timeout=GATHER_SECONDS)
            if done:
                finished = [(f, *in_flight.pop(f)) for f in done]
                _record(runtime, report, finished)
                continued = 0
                if failed is None:
                    try:
                        continued = _continue_chains(runtime, report, in_flight, finished)
                    except Exception as exc:
                        failed = _claim_failed(exc)
                if continued < len(finished):
                    reclaim_at = 0.0  # a slot is free for other lanes
        db.session.remove()
    if failed is not None:
        raise failed
    return report


def _claim_failed(exc: Exception) -> Exception:
    """A claim raised (the database went away, a statement failed): roll it back and give the
    exception to ``deliver_once``, which records what is in flight before it raises it. Otherwise
    sends already made would go unrecorded and be made again once their leases ran out."""
    with contextlib.suppress(Exception):  # a lost connection: ``exc`` says so already
        db.session.rollback()
    return exc


def _claim_and_send(
    runtime: WorkerRuntime,
    report: DeliveryReport,
    in_flight: dict[Future[ChainOutcome], tuple[str, Chain]],
    limit: int,
) -> bool:
    """Claim up to ``limit`` due deliveries (each with its chain) and start sending them; whether
    more may be due (the claim was full, or a chain as long as it may be)."""
    session = db.session()
    token = runtime.next_claim_token()
    lease = runtime.settings.bridge_lease_seconds
    chains = claim_due_deliveries(
        session, token, runtime.clock(), lease, limit, followers=CHAIN_FOLLOWERS
    )
    session.commit()
    _start(runtime, report, in_flight, token, chains)
    return len(chains) == limit or any(len(chain) > CHAIN_FOLLOWERS for chain in chains)


def _continue_chains(
    runtime: WorkerRuntime,
    report: DeliveryReport,
    in_flight: dict[Future[ChainOutcome], tuple[str, Chain]],
    finished: list[tuple[Future[ChainOutcome], str, Chain]],
) -> int:
    """Claim and start the next chain of each lane whose finished chain was as long as a chain may
    be and succeeded throughout (its lane is being drained: ``claim_continuations``); how many
    were started. Called once ``finished`` is recorded."""
    drained: dict[str, tuple[int, int]] = {}
    for future, _token, chain in finished:
        outcome = future.result()
        if (
            len(chain) > CHAIN_FOLLOWERS
            and not outcome.unsent
            and all(
                result is not None and result.outcome is DeliveryOutcome.SUCCEEDED
                for _claim, result in outcome.sent
            )
        ):
            drained[chain[0].lane] = (chain[0].seq, chain[-1].seq)
    if not drained or runtime.stop.is_set():
        return 0
    session = db.session()
    token = runtime.next_claim_token()
    lease = runtime.settings.bridge_lease_seconds
    chains = claim_continuations(
        session, token, runtime.clock(), lease, drained, CHAIN_FOLLOWERS + 1
    )
    session.commit()
    _start(runtime, report, in_flight, token, chains)
    return len(chains)


def _start(
    runtime: WorkerRuntime,
    report: DeliveryReport,
    in_flight: dict[Future[ChainOutcome], tuple[str, Chain]],
    token: str,
    chains: list[Chain],
) -> None:
    """Start sending ``chains`` (claimed with ``token``), one send slot each."""
    report.claimed += sum(len(chain) for chain in chains)
    # A chain must end well inside the lease, or another worker could send it meanwhile.
    lease = runtime.settings.bridge_lease_seconds
    context = dataclasses.replace(runtime.notifier_context, budget=lease * SEND_SHARE_OF_LEASE)
    for chain in chains:
        in_flight[runtime.delivery_pool.submit(send_chain, context, chain)] = (token, chain)


def _record(
    runtime: WorkerRuntime,
    report: DeliveryReport,
    finished: list[tuple[Future[ChainOutcome], str, Chain]],
) -> None:
    """Record finished chains in one short transaction (see ``apply_results``); the leases of
    their unsent deliveries are given back."""
    session = db.session()
    by_token: dict[str, list[tuple[ClaimedDelivery, DeliveryResult | None]]] = {}
    unsent: dict[str, list[int]] = {}
    for future, token, _chain in finished:
        outcome = future.result()
        by_token.setdefault(token, []).extend(outcome.sent)
        unsent.setdefault(token, []).extend(claim.seq for claim in outcome.unsent)
    for token, seqs in unsent.items():
        release_leases(session, token, seqs)
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
