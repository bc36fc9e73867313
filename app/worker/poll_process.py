"""``BRIDGE_POLL_TRANSPORT=process``: a worker's status requests sent by a child process of its own.

Why: in one process the requests (libcurl driven by an event loop) and the tick's database work (claims,
applies) take turns on one interpreter lock, so a worker polls at most what one core does. Here the
child sends and classifies, the worker claims and stores, each on its own core. The database stays
the worker's: the child never opens it, so leases and every rule of applying are unchanged.

The two talk over a ``multiprocessing`` pipe (both sides ours: pickled values):

- worker -> child: ``("batch", batch_id, halt_id, claims, timing)``, ``("halt", halt_id)``
  (a tick's ``Halt.set``), ``("stop_requests",)`` (the worker is stopping: its ``runtime.stop``),
  ``("stop",)`` (end);
- child -> worker: ``("ready",)`` once it can send (``start`` waits for it),
  ``("results", [(batch_id, pk, chain or None), ...])`` gathered for a few
  milliseconds or up to ``RESULTS_PER_MESSAGE``, and ``("ended", batch_id)`` after a batch's last.

The child is started when the worker starts (``start``; spawned, not forked: the worker has
threads), and again by the next batch after it died. A child that dies ends its batches: their claims
that never reported come back unpolled, and the tick releases them. It ignores SIGTERM and SIGINT (a
platform signals every process of a dyno; the worker decides when to stop) and ends when the worker
says so, when its pipe closes (the worker died) or at the worker's interpreter exit (``close`` runs
then, before ``multiprocessing`` would wait for the child with no time limit), so it never outlives
the worker.

``MI_MAX_RPS`` caps the child's status requests; the worker's own requests (workflow calls) have
their own bucket. Poll counters travel in the chains (durations, earliness) and are counted by the
tick, as with the thread transport.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import itertools
import logging
import multiprocessing
import signal
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from app.clock import utcnow
from app.config import Settings
from app.logs import configure_logging
from app.upstream.accounts import Accounts
from app.upstream.client import MediaIntelligenceClient
from app.upstream.outcomes import PollOutcome
from app.worker.asset_claims import ClaimedAsset
from app.worker.poll_requests import BatchTiming, Halt, Report, poll_batch
from app.worker.poll_rules import PollChain
from app.worker.ratelimit import RateLimiter

if TYPE_CHECKING:
    from app.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

#: Results per message at most; fewer go out once the first has waited ``RESULTS_WAIT_SECONDS``.
RESULTS_PER_MESSAGE = 64
#: How long a result waits for others to share its message: a message per result would cost both
#: processes a pickle and a system call each, thousands of times a second.
RESULTS_WAIT_SECONDS = 0.005
#: How long ``close`` waits for the child to end before killing it.
STOP_TIMEOUT_SECONDS = 10.0
#: How long ``start`` waits for a new child to be ready (its imports take about a second).
READY_TIMEOUT_SECONDS = 30.0
#: Halts the child remembers: a tick's halt matters only while its batches run.
HALTS_KEPT = 256

_ids = itertools.count(1)


@dataclass(frozen=True)
class ChildConfig:
    """What the child needs to send requests: where, with which keys, how many at once, how fast."""

    base_url: str
    accounts: Accounts
    concurrency: int
    max_rps: float
    #: The worker's settings: the child logs as the worker does (format, level, secrets masked).
    settings: Settings | None = None


@dataclass(eq=False)
class _Pending:
    """A batch sent to the child and not yet ended."""

    report: Report
    future: Future[None]
    claims: dict[int, ClaimedAsset]
    halt: Halt


class ProcessTransport:
    """The parent's side: starts the child on first use (and after it died), hands it batches.
    Thread-safe."""

    def __init__(self, config: ChildConfig, stop: threading.Event | None = None) -> None:
        """``stop``: the worker's stop flag; once set, the child sends no further request (as the
        thread transport's requests read the same flag)."""
        self._config = config
        self._stop = stop or threading.Event()
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._closed = False
        self._stop_watcher: threading.Thread | None = None
        # Runs before multiprocessing's own exit handler, which would SIGTERM the child (ignored)
        # and then wait for it forever: that one was registered when this module imported
        # multiprocessing.connection (which imports multiprocessing.util), so earlier, so it runs
        # later.
        atexit.register(self.close)

    @classmethod
    def for_runtime(cls, runtime: WorkerRuntime) -> ProcessTransport:
        client, settings = runtime.client, runtime.settings
        config = ChildConfig(
            client.base_url, client.accounts, client.concurrency, settings.mi_max_rps, settings
        )
        return cls(config, runtime.stop)

    def start(self) -> None:
        """Start the child now if none runs (``submit`` would), and wait until it is ready to send:
        a batch sent earlier would wait in the pipe for the child's imports, a second or so."""
        child = self._running_child()
        if not child.ready.wait(READY_TIMEOUT_SECONDS):
            log.warning("poll process %s not ready after %.0f s", child.pid, READY_TIMEOUT_SECONDS)

    def submit(
        self, claims: list[ClaimedAsset], timing: BatchTiming, halt: Halt, report: Report
    ) -> Future[None]:
        return self._running_child().submit(claims, timing, halt, report)

    def _running_child(self) -> _Child:
        with self._lock:
            if self._closed:
                raise RuntimeError("the poll process transport is closed")
            if self._child is None or not self._child.alive:
                self._child = _Child(self._config, self._stop)
                if self._stop.is_set():
                    self._child.stop_requests()
            if self._stop_watcher is None:
                self._stop_watcher = threading.Thread(
                    target=self._pass_stop, name="mi-poll-process-stop", daemon=True
                )
                self._stop_watcher.start()
            return self._child

    def _pass_stop(self) -> None:
        """Wait for the worker's stop flag, then tell the child (a thread: an Event has no hook)."""
        self._stop.wait()
        with self._lock:
            child = self._child
        if child is not None:
            child.stop_requests()

    @property
    def child_pid(self) -> int | None:
        """The running child's process id (None before it started, or after it died)."""
        child = self._child
        return child.pid if child is not None and child.alive else None

    def close(self) -> None:
        """End the child (once; later calls do nothing)."""
        atexit.unregister(self.close)
        with self._lock:
            self._closed = True
            child, self._child = self._child, None
        if child is not None:
            child.stop()


class _Child:
    """One child process, the pipe to it and the thread that reads its results."""

    def __init__(self, config: ChildConfig, worker_stop: threading.Event) -> None:
        self._accounts = config.accounts
        self._worker_stop = worker_stop
        context = multiprocessing.get_context("spawn")
        self._conn, child_end = context.Pipe()
        self._process = context.Process(
            target=child_main, args=(child_end, config), name="mi-poll-process", daemon=True
        )
        self._process.start()
        child_end.close()  # the child's now: our copy would keep the pipe open after it died
        self.pid = self._process.pid
        self._send_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._halts: dict[Halt, int] = {}
        self._stopping = False
        self.alive = True
        #: Set once the child said it can send (or it is gone).
        self.ready = threading.Event()
        self._reader = threading.Thread(
            target=self._read, name="mi-poll-process-reader", daemon=True
        )
        self._reader.start()
        log.info("poll process %s started", self.pid)

    def submit(
        self, claims: list[ClaimedAsset], timing: BatchTiming, halt: Halt, report: Report
    ) -> Future[None]:
        future: Future[None] = Future()
        batch_id = next(_ids)
        with self._state_lock:
            if not self.alive:  # died since it was chosen: nothing reports, the tick releases all
                future.set_result(None)
                return future
            self._pending[batch_id] = _Pending(report, future, {c.pk: c for c in claims}, halt)
            halt_id = self._halt_id(halt)
        if not self._send(("batch", batch_id, halt_id, claims, timing)):
            self._lost()
        return future

    def _halt_id(self, halt: Halt) -> int:
        """The id the child knows ``halt`` by; its ``set`` is passed on (caller holds the lock)."""
        halt_id = self._halts.get(halt)
        if halt_id is None:
            halt_id = self._halts[halt] = next(_ids)
            if len(self._halts) > HALTS_KEPT:  # oldest first: dicts keep insertion order
                del self._halts[next(iter(self._halts))]
            halt.on_set(functools.partial(self._send_halt, halt_id))
        return halt_id

    def stop_requests(self) -> None:
        """No further request: the worker is stopping (what waits is reported unpolled)."""
        self._send(("stop_requests",))

    def _send_halt(self, halt_id: int) -> None:
        self._send(("halt", halt_id))  # a child that is gone has nothing left to stop

    def _send(self, message: tuple[Any, ...]) -> bool:
        """Send ``message``; False if the pipe is gone."""
        try:
            with self._send_lock:
                self._conn.send(message)
        except (OSError, ValueError):  # ValueError: sent on a closed connection
            return False
        return True

    def _read(self) -> None:
        """Pass results to their batches' ``report`` until the pipe closes."""
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            if message[0] == "results":
                self._deliver(message[1])
            elif message[0] == "ready":
                self.ready.set()
            elif message[0] == "ended":
                with self._state_lock:
                    pending = self._pending.pop(message[1], None)
                if pending is not None:
                    pending.future.set_result(None)
        self._lost()

    def _deliver(self, results: list[tuple[int, int, PollChain | None]]) -> None:
        for batch_id, pk, chain in results:
            pending = self._pending.get(batch_id)
            if pending is None:
                continue
            claim = pending.claims[pk]
            if chain is not None and chain.result.outcome is PollOutcome.RATE_LIMITED:
                # The child paused its own copy; the tick claims nothing more for the account.
                pending.halt.pause(self._accounts.account_for(claim.workspace).fingerprint)
            pending.report(claim, chain)

    def _lost(self) -> None:
        """The child is gone (or going): end every pending batch; what never reported comes back
        unpolled."""
        with self._state_lock:
            was_alive, self.alive = self.alive, False
            pending, self._pending = list(self._pending.values()), {}
        self.ready.set()  # nobody waits for a child that is gone
        # A worker that is stopping may see its child go first: a platform's SIGTERM reaches every
        # process, and a child still importing has not ignored it yet.
        if was_alive and not self._stopping and not self._worker_stop.is_set():
            self._process.join(1.0)
            log.error(
                "poll process %s ended unexpectedly (exit code %s); the claims of its %d "
                "unfinished batches are released, and the next batch starts a new one",
                self.pid, self._process.exitcode, len(pending),
            )  # fmt: skip
        for batch in pending:
            if not batch.future.done():
                batch.future.set_result(None)

    def stop(self) -> None:
        """Ask the child to end (its running batches end, unpolled claims reported), wait for it,
        kill it if it does not end in ``STOP_TIMEOUT_SECONDS``."""
        self._stopping = True
        self._send(("stop",))
        self._process.join(STOP_TIMEOUT_SECONDS)
        if self._process.is_alive():
            log.warning("poll process %s did not stop; killing it", self.pid)
            self._process.kill()
            self._process.join(STOP_TIMEOUT_SECONDS)
        self._reader.join(STOP_TIMEOUT_SECONDS)
        self._conn.close()
        self._lost()


# -- the child's side -------------------------------------------------------------------------------


@dataclass
class _ChildContext:
    """The child's ``PollContext``: its own stop flag, rate limiter and the real clock."""

    stop: threading.Event
    limiter: RateLimiter
    clock: Callable[[], datetime] = utcnow


class _Results:
    """Results gathered on the child's loop and sent a message at a time (loop thread only)."""

    def __init__(self, conn: Connection, loop: asyncio.AbstractEventLoop) -> None:
        self._conn, self._loop = conn, loop
        self._items: list[tuple[int, int, PollChain | None]] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, batch_id: int, claim: ClaimedAsset, chain: PollChain | None) -> None:
        self._items.append((batch_id, claim.pk, chain))
        if len(self._items) >= RESULTS_PER_MESSAGE:
            self.flush()
        elif self._timer is None:
            self._timer = self._loop.call_later(RESULTS_WAIT_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._items:
            items, self._items = self._items, []
            _send_quietly(self._conn, ("results", items))

    def ended(self, batch_id: int) -> None:
        self.flush()
        _send_quietly(self._conn, ("ended", batch_id))


def _send_quietly(conn: Connection, message: tuple[Any, ...]) -> None:
    """Send to the worker; a worker that is gone cannot be told (the child is ending anyway)."""
    with contextlib.suppress(OSError, ValueError):
        conn.send(message)


def child_main(conn: Connection, config: ChildConfig) -> None:
    """The child process: run each batch received on ``conn`` until told to stop or the pipe
    closes, then cancel what still runs (its claims are reported unpolled) and end."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if config.settings is not None:
        configure_logging(config.settings)
    context = _ChildContext(threading.Event(), RateLimiter(config.max_rps))
    client = MediaIntelligenceClient(
        config.base_url, accounts=config.accounts, concurrency=config.concurrency
    )
    halts: OrderedDict[int, Halt] = OrderedDict()
    results: _Results | None = None
    _send_quietly(conn, ("ready",))

    def halt_named(halt_id: int) -> Halt:
        halt = halts.get(halt_id)
        if halt is None:
            halt = halts[halt_id] = Halt()
            if len(halts) > HALTS_KEPT:
                halts.popitem(last=False)
        return halt

    async def run_batch(
        batch_id: int, halt: Halt, claims: list[ClaimedAsset], timing: BatchTiming
    ) -> None:
        nonlocal results
        if results is None:
            results = _Results(conn, asyncio.get_running_loop())
        sink = results
        try:
            await poll_batch(
                context, client, claims, timing, halt, lambda c, ch: sink.add(batch_id, c, ch)
            )
        finally:
            sink.ended(batch_id)

    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the worker is gone
                break
            if message[0] == "batch":
                _, batch_id, halt_id, claims, timing = message
                client.submit(run_batch(batch_id, halt_named(halt_id), claims, timing))
            elif message[0] == "halt":
                halt_named(message[1]).set()
            elif message[0] == "stop_requests":
                context.stop.set()
            elif message[0] == "stop":
                break
    finally:
        context.stop.set()
        client.close()
        conn.close()
