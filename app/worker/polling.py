"""The poll tick: expire, claim due assets, poll them concurrently, apply the results in one commit.

Claims and applies are batched: one transaction claims a batch, the requests run on a bounded thread
pool with no transaction open, and one transaction applies every result of the batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass

from app.db import db
from app.upstream.generations import Generation, successor
from app.upstream.outcomes import PollOutcome
from app.worker import bridge_state
from app.worker.apply import ApplyContext, PollChain, apply_poll
from app.worker.claims import ClaimedAsset, claim_due_assets, lock_held, release
from app.worker.expiry import expire_due_watches
from app.worker.runtime import POLL_CONCURRENCY, WorkerRuntime

log = logging.getLogger(__name__)

BATCH_SIZE = POLL_CONCURRENCY * 4
#: A tick keeps claiming batches while work is due, for at most this long.
TICK_BUDGET_SECONDS = 5.0
#: Requests may use this share of the remaining lease; the rest is left for applying the batch.
LEASE_SHARE_FOR_REQUESTS = 0.5
#: Below this many seconds of budget a request is not worth sending.
MIN_REQUEST_BUDGET = 0.05


@dataclass
class PollReport:
    """What one tick did (for the CLI, tests and logs)."""

    expired: int = 0
    claimed: int = 0
    polled: int = 0
    requests: int = 0
    applied: int = 0
    paused: bool = False


def poll_once(runtime: WorkerRuntime) -> PollReport:
    """One poll tick. Never raises for upstream trouble; database errors propagate (next tick retries)."""
    report = PollReport()
    with runtime.tick_lock, runtime.app.app_context():
        started = time.monotonic()
        report.expired = expire_due_watches(db.session, runtime.clock())
        while not runtime.stop.is_set():
            if bridge_state.polling_paused_until(db.session, runtime.clock()):
                report.paused = True
                db.session.rollback()
                break
            batch_size = _poll_batch(runtime, report)
            if batch_size < BATCH_SIZE or time.monotonic() - started > TICK_BUDGET_SECONDS:
                break
        db.session.remove()
    return report


def _poll_batch(runtime: WorkerRuntime, report: PollReport) -> int:
    session = db.session
    token = runtime.next_claim_token()
    claimed_at = runtime.clock()
    claims = claim_due_assets(
        session, token, claimed_at, runtime.settings.bridge_lease_seconds, BATCH_SIZE
    )
    session.commit()
    if not claims:
        return 0
    report.claimed += len(claims)
    lease_ends = time.monotonic() + runtime.settings.bridge_lease_seconds
    chains = dict(_poll_all(runtime, claims, threading.Event(), lease_ends))
    ctx = ApplyContext(token, claimed_at, runtime.clock(), runtime.pacing, runtime.rng)
    held = lock_held(session, token, sorted(chains))
    for claim in claims:
        chain = chains.get(claim.pk)
        if chain is not None and claim.pk in held and apply_poll(session, claim, chain, ctx):
            report.applied += 1
    release(session, token, [c.pk for c in claims if c.pk not in chains])
    session.commit()
    report.polled += len(chains)
    report.requests += sum(len(chain.requests) for chain in chains.values())
    return len(claims)


def _poll_all(
    runtime: WorkerRuntime,
    claims: list[ClaimedAsset],
    throttled: threading.Event,
    lease_ends: float,
) -> Iterator[tuple[int, PollChain]]:
    """Poll each claim (with generation fallback); yields only those actually polled.

    After a 429 no further request of the batch is sent: the rest are released, still due.
    """
    futures: list[tuple[int, Future[PollChain | None]]] = [
        (claim.pk, runtime.pool.submit(_poll_one, runtime, claim, throttled, lease_ends))
        for claim in claims
    ]
    for pk, future in futures:
        chain = future.result()
        if chain is not None:
            yield pk, chain


def _poll_one(
    runtime: WorkerRuntime, claim: ClaimedAsset, throttled: threading.Event, lease_ends: float
) -> PollChain | None:
    """Ask the claim's generation, falling forward on 404/410; None if stopped before asking.

    Each request must end well inside the lease (its timeouts are capped by what is left, less a
    margin for applying): a request that could outlive it is not sent, and the claim is released.
    """
    generation: Generation | None = Generation(claim.api)
    requests = []
    while generation is not None:
        budget = (lease_ends - time.monotonic()) * LEASE_SHARE_FOR_REQUESTS
        if budget < MIN_REQUEST_BUDGET or throttled.is_set():
            break
        if not runtime.limiter.acquire(runtime.stop):
            break
        result = runtime.client.get_status(
            claim.workspace, claim.project_id, claim.asset_id, generation, budget=budget
        )
        runtime.counters.poll(result.outcome.value, result.duration)
        requests.append((generation.value, result))
        if result.outcome is PollOutcome.RATE_LIMITED:
            throttled.set()
        if result.outcome is not PollOutcome.NOT_FOUND:
            break
        generation = successor(generation)
    return PollChain(tuple(requests)) if requests else None
