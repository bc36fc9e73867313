"""The poll tick: expire, claim due assets, poll them concurrently, apply results as they arrive.

One transaction claims a batch; its requests run on the upstream client's event loop (at most
``BRIDGE_POLL_CONCURRENCY`` at once) with no transaction open, each reporting its result the moment
it is known. The tick's thread applies whatever has arrived in small groups (what came within
``GROUP_WINDOW_SECONDS`` of the first, about a batch's worth), one transaction each, whatever
batches they came from: one slow upstream asset delays only itself. While results are applied the
loop keeps polling: the next batch is claimed once no more than a batch's worth of requests is
outstanding. Within a group, each poll that cannot be stored fails alone (``app.worker.apply``).

A 429 pauses its account only: the claims leave that account's assets out until the pause ends, and
the requests of its claims already made are not sent (``Halt``); the other accounts go on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.db import db
from app.health import upstream_accounts
from app.upstream.outcomes import PollOutcome
from app.worker.apply import ApplyContext, PollChain, apply_batch
from app.worker.asset_claims import ClaimedAsset, claim_due_assets, release
from app.worker.expiry import expire_due_watches
from app.worker.poll_requests import BatchTiming, Halt, Inbox
from app.worker.poll_transport import transport_of
from app.worker.runtime import WorkerRuntime
from app.worker.stalled import report_stalled_watches

log = logging.getLogger(__name__)

#: Claims per batch, per request slot: enough to keep every slot busy while results are applied.
BATCH_PER_SLOT = 16
#: A tick keeps claiming batches for as long as they come full (under load, polling never pauses
#: between ticks); meanwhile it sweeps deadlines again this often.
EXPIRY_EVERY_SECONDS = 5.0
#: Results that arrive within this long of the first one waiting are applied together.
GROUP_WINDOW_SECONDS = 0.2
#: A tick claims what falls due within its lookahead less this much: the time its last request needs
#: to be answered and applied before the next tick. A tick that overran its period would make the
#: scheduler skip the next one, and what falls due meanwhile would be claimed a whole tick late.
LOOKAHEAD_MARGIN_SECONDS = 0.25


@dataclass
class PollReport:
    """What one tick did (for the CLI, tests and logs)."""

    expired: int = 0
    claimed: int = 0
    polled: int = 0
    requests: int = 0
    applied: int = 0
    failed: int = 0  # applied as failed polls: the answer could not be stored
    paused: bool = False
    stalled: int = 0  # analysis.stalled sweeps


@dataclass(eq=False)
class _Batch:
    """A claimed batch: its requests report to the tick's queue, then its end is reported."""

    token: str
    claims: list[ClaimedAsset]
    full: bool
    reported: set[int] = field(default_factory=set)  # pks of the claims whose result arrived
    applied: int = 0
    ended: bool = False
    future: Future[None] | None = field(default=None, repr=False)

    @property
    def settled(self) -> bool:
        return self.ended and self.applied == len(self.claims)


class _Item(NamedTuple):
    """One claim's outcome; ``chain`` None: not polled."""

    batch: _Batch
    claim: ClaimedAsset
    chain: PollChain | None


class _Ended(NamedTuple):
    """A batch's requests are over: every claim that will report has reported."""

    batch: _Batch


def poll_once(runtime: WorkerRuntime, lookahead: float = 0.0) -> PollReport:
    """One poll tick; it lasts for as long as batches come full. Never raises for upstream trouble;
    database errors propagate (the next tick retries), after the tick's leases are given back.

    ``lookahead`` (seconds) also claims assets due that soon (less ``LOOKAHEAD_MARGIN_SECONDS``):
    the scheduler passes its tick period, so an asset's claim is ready when it falls due instead of
    up to one tick late. Its request is still sent no earlier than its due time (the interval is a
    bound both ways, see ``app.worker.pacing``).
    """
    report = PollReport()
    with runtime.tick_lock, runtime.app.app_context():
        report.expired = expire_due_watches(db.session(), runtime.clock())
        report.stalled = report_stalled_watches(db.session(), runtime.clock())
        tick = _Tick(runtime, report, lookahead)
        try:
            tick.run()
        except Exception:
            tick.abandon()
            raise
        db.session.remove()
    return report


class _Tick:
    """The pipeline of one tick: claims go out, results come back through ``results``."""

    def __init__(self, runtime: WorkerRuntime, report: PollReport, lookahead: float) -> None:
        self.runtime, self.report = runtime, report
        self.lookahead = max(0.0, lookahead - LOOKAHEAD_MARGIN_SECONDS)
        self.size = runtime.client.concurrency * BATCH_PER_SLOT
        self.results: Inbox[_Item | _Ended] = Inbox()
        self.batches: list[_Batch] = []  # claimed and not yet settled
        # Set by a failed apply: no further request is sent in this tick; paused for an account by
        # its 429: none of that account's.
        self.halt = Halt()
        accounts = runtime.client.accounts
        self.fingerprints = {acc.fingerprint for acc in accounts} | {accounts.default.fingerprint}
        self.more = True
        self.swept = time.monotonic()

    def run(self) -> None:
        """Claim, collect and apply until no batch is outstanding and no full batch came last."""
        self._claim()
        while self.batches or self.more:
            if self.more and self._outstanding() <= self.size:
                if time.monotonic() - self.swept >= EXPIRY_EVERY_SECONDS:
                    self.report.expired += expire_due_watches(db.session(), self.runtime.clock())
                    self.swept = time.monotonic()
                self._claim()
            group = self._collect()
            if group:
                self._apply(group)
            self.batches = [batch for batch in self.batches if not batch.settled]

    def _outstanding(self) -> int:
        return sum(len(b.claims) - len(b.reported) for b in self.batches if not b.ended)

    def _claim(self) -> None:
        """Claim a batch and queue its requests; claims nothing when stopped, halted or paused."""
        self.more = False
        runtime, session = self.runtime, db.session()
        if runtime.stop.is_set() or all(self.halt.stops(fp) for fp in self.fingerprints):
            return
        accounts = runtime.client.accounts
        # The clock first: the monotonic reading is then never earlier, so neither is a request.
        token, claimed_at, started = runtime.next_claim_token(), runtime.clock(), time.monotonic()
        # The lease covers the wait for the due time too.
        lease = runtime.settings.bridge_lease_seconds + self.lookahead
        claims = claim_due_assets(
            session, token, claimed_at, lease, self.size,
            due_by=claimed_at + timedelta(seconds=self.lookahead), accounts=accounts,
        )  # fmt: skip
        session.commit()
        if not claims:
            # The claim takes nothing during a pause; only now is it worth asking whether that was why.
            ends = upstream_accounts.pause_ends(session, claimed_at, several=accounts.several)
            self.report.paused = ends is not None
            session.rollback()
            return
        self.report.claimed += len(claims)
        runtime.counters.claimed_late([(claimed_at - c.due_at).total_seconds() for c in claims])
        batch = _Batch(token, claims, full=len(claims) >= self.size)
        self.batches.append(batch)
        timing = BatchTiming(claimed_at, started, started + lease)

        def report(claim: ClaimedAsset, chain: PollChain | None) -> None:
            self.results.put(_Item(batch, claim, chain))

        batch.future = transport_of(runtime).submit(claims, timing, self.halt, report)
        batch.future.add_done_callback(lambda _: self.results.put(_Ended(batch), wake=True))
        self.more = batch.full

    def _collect(self) -> list[_Item]:
        """The results that arrived within ``GROUP_WINDOW_SECONDS`` of the first (waiting for one),
        about a batch's worth; claims of an ended batch that never reported come back unpolled."""
        group: list[_Item] = []
        closes: float | None = None
        while any(not batch.ended for batch in self.batches) and len(group) < self.size:
            if closes is None:
                arrived = self.results.take(1, None)
            elif (timeout := closes - time.monotonic()) > 0:
                arrived = self.results.take(self.size - len(group), timeout)
            else:
                break
            for item in arrived:
                if isinstance(item, _Ended):
                    group.extend(_unreported(item.batch))
                    item.batch.ended = True
                else:
                    item.batch.reported.add(item.claim.pk)
                    group.append(item)
            if closes is None and group:
                closes = time.monotonic() + GROUP_WINDOW_SECONDS
        return group

    def _apply(self, group: list[_Item]) -> None:
        """Apply a group in one transaction (claims of any batches), release what was not polled."""
        runtime, session, report = self.runtime, db.session(), self.report
        ctx = ApplyContext(runtime.clock(), runtime.pacing, runtime.rng)
        polled = [(item.claim, item.chain) for item in group if item.chain is not None]
        runtime.counters.polled(chain for _, chain in polled)
        if polled:
            report.applied += apply_batch(session, polled, ctx)
            self._record_answering(session, polled, ctx.now)
        unpolled: dict[str, list[int]] = {}
        for item in group:
            if item.chain is None:
                unpolled.setdefault(item.claim.token, []).append(item.claim.pk)
        for token, pks in unpolled.items():
            release(session, token, pks)
        session.commit()
        for item in group:
            item.batch.applied += 1
        report.polled += len(polled)
        report.requests += sum(len(chain.requests) for _, chain in polled)
        report.failed += len(ctx.failed)
        if ctx.emitted:
            runtime.wake_delivery()

    def _record_answering(
        self, session: Session, polled: list[tuple[ClaimedAsset, PollChain]], now: datetime
    ) -> None:
        """With several accounts: those whose requests were answered in this group (and none
        refused with 401) have working credentials. Written at most once per account and tick
        (``record_answered``); a single account's are written with the polls, as they always were."""
        accounts = self.runtime.client.accounts
        if not accounts.several:
            return
        answered, refused = {}, set()
        for claim, chain in polled:
            account = accounts.account_for(claim.workspace)
            outcome = chain.result.outcome
            if outcome is PollOutcome.AUTH:
                refused.add(account.fingerprint)
            elif outcome is PollOutcome.STATUS or outcome is PollOutcome.NOT_FOUND:
                answered[account.fingerprint] = account
        working = [acc for fp, acc in answered.items() if fp not in refused]
        if working:
            upstream_accounts.record_answered(session, working, now)

    def abandon(self) -> None:
        """After a failure: send nothing more, let the requests end, give back every lease still held
        (applied rows hold none, so releasing a whole batch is safe)."""
        self.halt.set()
        db.session.rollback()
        for batch in self.batches:
            if batch.future is not None:
                wait([batch.future])
            try:
                release(db.session(), batch.token, [claim.pk for claim in batch.claims])
                db.session.commit()
            except SQLAlchemyError:
                db.session.rollback()
                log.warning(
                    "could not release %d claims; their leases will expire", len(batch.claims)
                )


def _unreported(batch: _Batch) -> Iterator[_Item]:
    """The claims of an ended batch that never reported (its coroutine was cancelled), unpolled."""
    missing = [claim for claim in batch.claims if claim.pk not in batch.reported]
    if missing:
        log.warning("%d claims of a batch never reported; releasing them", len(missing))
    for claim in missing:
        batch.reported.add(claim.pk)
        yield _Item(batch, claim, None)
