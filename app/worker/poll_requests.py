"""The requests of a claimed batch, on the upstream client's event loop: each sent at its due time,
never earlier, and each result reported the moment it is known.

A claim may be made ahead of its due time (the tick's lookahead), so its request waits until then:
the wait is the claim's own offset (``due_at - claimed_at``, both read from the worker's clock)
counted from ``time.monotonic`` at the claim, so an injected clock never makes a request wait for
real time unless the claim says so. Waiting takes no request slot.

A ``429`` stops the requests of its account only (``Halt.pause``): the other accounts' go on, each
under its own ``MI_MAX_RPS`` bucket.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from app.upstream.client import MediaIntelligenceClient
from app.upstream.generations import successor
from app.upstream.outcomes import PollOutcome, PollResult
from app.vocabulary import ApiGeneration
from app.worker.asset_claims import ClaimedAsset
from app.worker.poll_rules import PollChain
from app.worker.ratelimit import RateLimiter

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Requests may use this share of the remaining lease; the rest is left for applying the result.
LEASE_SHARE_FOR_REQUESTS = 0.5
#: Below this many seconds of budget a request is not worth sending.
MIN_REQUEST_BUDGET = 0.05
#: Longest single sleep while waiting for a due time, so a stop or a halt is noticed soon.
STOP_CHECK_SECONDS = 0.25

#: Called once per claim, from the loop's thread: the claim's chain, or None if it was not polled.
Report = Callable[[ClaimedAsset, PollChain | None], None]


class PollContext(Protocol):
    """What the requests need of their worker: its stop flag, its rate limiter and its clock (a
    ``WorkerRuntime``, or the poll process's own, ``app.worker.poll_process``)."""

    @property
    def stop(self) -> threading.Event: ...

    @property
    def limiter(self) -> RateLimiter: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...


class Inbox(Generic[T]):
    """Results handed from the loop's thread to the tick's. The tick is woken only once as many
    items as it wants are there, or by an item put with ``wake``: a wake-up per result would cost
    the two threads a GIL hand-over each, thousands of times a second."""

    def __init__(self) -> None:
        self._ready = threading.Condition(threading.Lock())
        self._items: list[T] = []
        self._wanted = 1
        self._woken = False

    def put(self, item: T, *, wake: bool = False) -> None:
        """Add ``item`` (any thread)."""
        with self._ready:
            self._items.append(item)
            self._woken = self._woken or wake
            if self._woken or len(self._items) >= self._wanted:
                self._ready.notify()

    def take(self, wanted: int, timeout: float | None) -> list[T]:
        """Every item put so far, once there are ``wanted`` or one was put with ``wake``; at the
        ``timeout`` (seconds, None: no limit) whatever there is, maybe nothing."""
        with self._ready:
            self._wanted = wanted
            self._ready.wait_for(lambda: self._woken or len(self._items) >= wanted, timeout)
            items, self._items, self._woken = self._items, [], False
            return items


class Halt:
    """Whether a tick's requests must stop: every one (``set``: stopping after a failure), or one
    account's (``pause``: it answered 429). Read and written from both the tick's and the loop's
    threads (single set operations, atomic under the GIL)."""

    def __init__(self) -> None:
        self._all = threading.Event()
        self._accounts: set[str] = set()
        self._on_set: list[Callable[[], None]] = []

    def set(self) -> None:
        """Stop every request (and tell whoever asked, ``on_set``)."""
        self._all.set()
        for callback in list(self._on_set):
            callback()

    def on_set(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when ``set`` is called (at once if it already was): how a halt reaches
        requests running in another process."""
        self._on_set.append(callback)
        if self._all.is_set():
            callback()

    def is_set(self) -> bool:
        """Whether every request is stopped."""
        return self._all.is_set()

    def pause(self, fingerprint: str) -> None:
        """Stop the requests of the account ``fingerprint``."""
        self._accounts.add(fingerprint)

    def stops(self, fingerprint: str) -> bool:
        """Whether the requests of the account ``fingerprint`` are stopped."""
        return self._all.is_set() or fingerprint in self._accounts


@dataclass(frozen=True)
class BatchTiming:
    """When a batch was claimed, on both clocks, and when its lease ends (``time.monotonic``)."""

    claimed_at: datetime
    claimed_monotonic: float
    lease_ends: float

    def sends_at(self, claim: ClaimedAsset) -> float:
        """The monotonic time before which ``claim``'s request must not be sent: its due time."""
        ahead = (claim.due_at - self.claimed_at).total_seconds()
        return self.claimed_monotonic + max(0.0, ahead)


async def poll_batch(
    context: PollContext,
    client: MediaIntelligenceClient,
    claims: list[ClaimedAsset],
    timing: BatchTiming,
    halt: Halt,
    report: Report,
) -> None:
    """Poll every claim of a batch concurrently (bounded by the client's slots), reporting each
    claim exactly once as soon as its chain is known (None: not polled), whatever happens.

    As many coroutines as the client has slots take the claims in the order they fall due, each
    waiting for its claim's due time and then for a slot: a task per claim would cost its creation
    and a wait on the slots for every one of thousands of claims a second, for the same order.

    ``client`` is the one the batch was submitted to, not the worker's read later: the coroutine
    runs on that client's loop, and the worker's client may be replaced meanwhile.
    """
    queue = iter(sorted(claims, key=_due_at))
    pollers = min(client.concurrency, len(claims))
    try:
        await asyncio.gather(
            *(_poll_in_turn(context, client, queue, timing, halt, report) for _ in range(pollers)),
            return_exceptions=True,
        )
    finally:  # cancelled: the claims no poller took are reported unpolled
        for claim in queue:
            report(claim, None)


def _due_at(claim: ClaimedAsset) -> datetime:
    return claim.due_at


async def _poll_in_turn(
    context: PollContext,
    client: MediaIntelligenceClient,
    queue: Iterator[ClaimedAsset],
    timing: BatchTiming,
    halt: Halt,
    report: Report,
) -> None:
    """Poll the next claim of ``queue`` until there is none."""
    for claim in queue:
        await _poll_and_report(context, client, claim, timing, halt, report)


async def _poll_and_report(
    context: PollContext,
    client: MediaIntelligenceClient,
    claim: ClaimedAsset,
    timing: BatchTiming,
    halt: Halt,
    report: Report,
) -> None:
    chain = None
    try:
        chain = await _poll_one(context, client, claim, timing, halt)
    except Exception:
        log.exception("poll of asset %s (%s) failed", claim.asset_id, claim.api)
    finally:  # cancelled too: the tick counts on one report per claim
        report(claim, chain)


async def _poll_one(
    context: PollContext,
    client: MediaIntelligenceClient,
    claim: ClaimedAsset,
    timing: BatchTiming,
    halt: Halt,
) -> PollChain | None:
    """Ask the claim's generation, falling forward on 404/410; None if stopped before asking.

    The first request waits for the claim's due time. Each request must end well inside the lease
    (its time is capped by what is left, less a margin for applying): a request that could outlive
    it is not sent, and the claim is released. A 429 stops the requests of the claim's account.
    """
    account = client.account_for(claim.workspace).fingerprint
    if not await _wait_until(timing.sends_at(claim), context.stop, halt, account):
        return None
    generation: ApiGeneration | None = ApiGeneration(claim.api)
    requests: list[tuple[str, PollResult]] = []
    early = 0.0
    async with client.slots:
        while generation is not None:
            budget = (timing.lease_ends - time.monotonic()) * LEASE_SHARE_FOR_REQUESTS
            if budget < MIN_REQUEST_BUDGET or halt.stops(account):
                break
            if not await context.limiter.acquire(context.stop, account):
                break
            if not requests:
                early = (claim.due_at - context.clock()).total_seconds()
            result = await client.fetch_status(
                claim.workspace, claim.project_id, claim.asset_id, generation, budget=budget
            )
            requests.append((generation.value, result))
            if result.outcome is PollOutcome.RATE_LIMITED:
                halt.pause(account)
            if result.outcome is not PollOutcome.NOT_FOUND:
                break
            generation = successor(generation)
    return PollChain(tuple(requests), early) if requests else None


async def _wait_until(moment: float, stop: threading.Event, halt: Halt, account: str) -> bool:
    """Sleep until ``time.monotonic()`` reaches ``moment``; False if stopped, or ``account``
    halted, first."""
    while (wait := moment - time.monotonic()) > 0:
        if stop.is_set() or halt.stops(account):
            return False
        # Re-checked after waking: a timer may fire a fraction of a millisecond early.
        await asyncio.sleep(min(wait, STOP_CHECK_SECONDS))
    return True
