"""The poll tick: expire, claim due assets, poll them concurrently, apply the results in batches.

Claims and applies are batched: one transaction claims a batch, its requests run on the upstream
client's event loop (at most ``BRIDGE_POLL_CONCURRENCY`` at once) with no transaction open, and one
transaction applies every result of the batch. The tick is a two-stage pipeline: the next batch is
claimed and handed to the loop before the current batch is applied, so the loop keeps polling while
the tick's thread writes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from app.db import db
from app.upstream.client import MediaIntelligenceClient
from app.upstream.generations import Generation, successor
from app.upstream.outcomes import PollOutcome
from app.worker import bridge_state
from app.worker.apply import ApplyContext, PollChain, apply_batch
from app.worker.claims import ClaimedAsset, claim_due_assets, release
from app.worker.expiry import expire_due_watches
from app.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

#: Claims per batch, per request slot: enough to keep every slot busy while a batch is applied.
BATCH_PER_SLOT = 16
#: A tick keeps claiming batches for as long as they come full (under load, polling never pauses
#: between ticks); meanwhile it sweeps deadlines again this often.
EXPIRY_EVERY_SECONDS = 5.0
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


@dataclass
class _Batch:
    """A claimed batch whose requests run on the client's loop; ``polled`` has one chain per claim."""

    token: str
    claimed_at: datetime
    claims: list[ClaimedAsset]
    size: int
    polled: Future[list[PollChain | None]] = field(default_factory=Future)

    @property
    def full(self) -> bool:
        return len(self.claims) >= self.size


def poll_once(runtime: WorkerRuntime, lookahead: float = 0.0) -> PollReport:
    """One poll tick; it lasts for as long as batches come full. Never raises for upstream trouble;
    database errors propagate (the next tick retries).

    ``lookahead`` (seconds) also claims assets due that soon: the scheduler passes its tick period,
    so an asset is polled up to one tick early instead of up to one tick late (the interval is a
    bound, see ``app.watches.backoff``).
    """
    report = PollReport()
    with runtime.tick_lock, runtime.app.app_context():
        report.expired = expire_due_watches(db.session, runtime.clock())
        swept = time.monotonic()
        # Set by a 429 (or a failed apply): no further request is sent in this tick.
        halt = threading.Event()
        batch = _claim_and_send(runtime, report, halt, lookahead)
        while batch is not None:
            following = None
            if batch.full:
                if time.monotonic() - swept >= EXPIRY_EVERY_SECONDS:
                    report.expired += expire_due_watches(db.session, runtime.clock())
                    swept = time.monotonic()
                following = _claim_and_send(runtime, report, halt, lookahead)
            try:
                _apply(runtime, batch, report)
            except Exception:
                halt.set()
                db.session.rollback()
                if following is not None:
                    _abandon(runtime, following)
                raise
            batch = following
        db.session.remove()
    return report


def _claim_and_send(
    runtime: WorkerRuntime, report: PollReport, halt: threading.Event, lookahead: float
) -> _Batch | None:
    """Claim a batch and queue its requests; None when stopped, halted, paused or nothing is due."""
    session = db.session
    if runtime.stop.is_set() or halt.is_set():
        return None
    size = runtime.client.concurrency * BATCH_PER_SLOT
    batch = _Batch(runtime.next_claim_token(), runtime.clock(), [], size)
    batch.claims = claim_due_assets(
        session, batch.token, batch.claimed_at, runtime.settings.bridge_lease_seconds, size,
        due_by=batch.claimed_at + timedelta(seconds=lookahead),
    )  # fmt: skip
    session.commit()
    if not batch.claims:
        # The claim takes nothing during a pause; only now is it worth asking whether that was why.
        report.paused = bridge_state.polling_paused_until(session, runtime.clock()) is not None
        session.rollback()
        return None
    report.claimed += len(batch.claims)
    runtime.counters.claimed_late(
        [(batch.claimed_at - claim.due_at).total_seconds() for claim in batch.claims]
    )
    lease_ends = time.monotonic() + runtime.settings.bridge_lease_seconds
    batch.polled = runtime.client.submit(
        _poll_batch(runtime, runtime.client, batch.claims, halt, lease_ends)
    )
    return batch


def _apply(runtime: WorkerRuntime, batch: _Batch, report: PollReport) -> None:
    """Wait for the batch's requests, apply what was polled, give back the rest; one commit."""
    session = db.session
    chains = list(_results(batch))
    ctx = ApplyContext(batch.token, batch.claimed_at, runtime.clock(), runtime.pacing, runtime.rng)
    report.applied += apply_batch(session, chains, ctx)
    polled = {claim.pk for claim, _ in chains}
    release(session, batch.token, [c.pk for c in batch.claims if c.pk not in polled])
    session.commit()
    if ctx.emitted:
        runtime.wake_delivery()
    report.polled += len(chains)
    report.requests += sum(len(chain.requests) for _, chain in chains)


def _results(batch: _Batch) -> Iterator[tuple[ClaimedAsset, PollChain]]:
    """Each claim with its chain, in claim order; claims that were not polled are left out."""
    for claim, chain in zip(batch.claims, batch.polled.result(), strict=True):
        if chain is not None:
            yield claim, chain


def _abandon(runtime: WorkerRuntime, batch: _Batch) -> None:
    """After a failed apply: let the batch's requests finish (they send nothing more), free the leases."""
    batch.polled.exception()
    try:
        release(db.session, batch.token, [claim.pk for claim in batch.claims])
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        log.warning("could not release %d claims; their leases will expire", len(batch.claims))


async def _poll_batch(
    runtime: WorkerRuntime,
    client: MediaIntelligenceClient,
    claims: list[ClaimedAsset],
    halt: threading.Event,
    lease_ends: float,
) -> list[PollChain | None]:
    """Poll every claim of a batch concurrently (bounded by the client's slots); one chain per claim.

    ``client`` is the one the batch was submitted to, not ``runtime.client`` read later: the
    coroutine runs on that client's loop, and the runtime's client may be replaced meanwhile.
    """
    return list(
        await asyncio.gather(*(_poll_one(runtime, client, c, halt, lease_ends) for c in claims))
    )


async def _poll_one(
    runtime: WorkerRuntime,
    client: MediaIntelligenceClient,
    claim: ClaimedAsset,
    halt: threading.Event,
    lease_ends: float,
) -> PollChain | None:
    """Ask the claim's generation, falling forward on 404/410; None if stopped before asking.

    Each request must end well inside the lease (its time is capped by what is left, less a margin
    for applying): a request that could outlive it is not sent, and the claim is released.
    """
    generation: Generation | None = Generation(claim.api)
    requests = []
    async with client.slots:
        while generation is not None:
            budget = (lease_ends - time.monotonic()) * LEASE_SHARE_FOR_REQUESTS
            if budget < MIN_REQUEST_BUDGET or halt.is_set():
                break
            if not await runtime.limiter.acquire(runtime.stop):
                break
            result = await client.fetch_status(
                claim.workspace, claim.project_id, claim.asset_id, generation, budget=budget
            )
            runtime.counters.poll(result.outcome.value, result.duration)
            requests.append((generation.value, result))
            if result.outcome is PollOutcome.RATE_LIMITED:
                halt.set()
            if result.outcome is not PollOutcome.NOT_FOUND:
                break
            generation = successor(generation)
    return PollChain(tuple(requests)) if requests else None
