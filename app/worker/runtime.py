"""Everything a worker process (or an embedded scheduler) shares between its ticks."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from flask import Flask

from app.config import Settings
from app.notify.context import NotifierContext
from app.services import services
from app.upstream.accounts import accounts_of
from app.upstream.client import MediaIntelligenceClient
from app.worker.counters import WorkerCounters
from app.worker.database_gate import DatabaseGate
from app.worker.pacing import PollPacing
from app.worker.ratelimit import RateLimiter

if TYPE_CHECKING:
    from app.worker.poll_transport import PollTransport

#: Concurrent notification sends per worker process.
DELIVERY_CONCURRENCY = 16
#: Seconds between checks of a database that is away or has no schema yet: a worker starts within
#: this (plus one check) of ``mi-bridge db upgrade`` finishing.
DATABASE_CHECK_SECONDS = 2.0

_database_log = logging.getLogger("app.worker.database")


def new_worker_id(kind: str) -> str:
    """``host:pid:random``: unique per process start, readable in the heartbeat table."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{kind}:{uuid.uuid4().hex[:6]}"


@dataclass
class WorkerRuntime:
    """One worker's app, clients, limits, counters and stop flag. Build with ``from_app``."""

    app: Flask
    settings: Settings
    client: MediaIntelligenceClient
    worker_id: str
    kind: str
    clock: Callable[[], datetime]
    rng: random.Random
    limiter: RateLimiter
    counters: WorkerCounters = field(default_factory=WorkerCounters)
    stop: threading.Event = field(default_factory=threading.Event)
    delivery_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(DELIVERY_CONCURRENCY, thread_name_prefix="send")
    )
    tick_lock: threading.Lock = field(default_factory=threading.Lock)
    delivery_lock: threading.Lock = field(default_factory=threading.Lock)
    workflow_lock: threading.Lock = field(default_factory=threading.Lock)
    claim_seq: int = 0
    #: Called after a poll batch wrote events: runs the delivery job now instead of at its next
    #: tick (the scheduler sets it; a no-op for ticks driven by hand, as in tests).
    wake_delivery: Callable[[], None] = lambda: None
    #: Whether the database is there, and the few lines that say when it is not
    #: (``app.worker.database_wait``); the scheduler's jobs run only while it is ``usable``.
    database: DatabaseGate = field(default_factory=lambda: DatabaseGate(_database_log))
    #: Seconds between checks while the database is away or without its schema.
    database_check_seconds: float = DATABASE_CHECK_SECONDS
    #: When this worker first evaluated the alert conditions (``app.worker.alerting``).
    alerts_started_at: datetime | None = None
    #: Where the poll ticks' requests run (``app.worker.poll_transport.transport_of`` makes it).
    poll_transport: PollTransport | None = None

    @classmethod
    def from_app(
        cls, app: Flask, kind: str = "worker", rng: random.Random | None = None
    ) -> WorkerRuntime:
        """A runtime for ``app``'s settings and clock (upstream credentials may be empty)."""
        settings = services(app).settings
        client = MediaIntelligenceClient(
            settings.mi_api_url,
            accounts=accounts_of(settings),  # each workspace signed with its account's keys
            concurrency=settings.bridge_poll_concurrency,
        )
        return cls(
            app=app,
            settings=settings,
            client=client,
            worker_id=new_worker_id(kind),
            kind=kind,
            clock=services(app).clock,
            rng=rng or random.Random(),  # noqa: S311 - jitter, not cryptography
            limiter=RateLimiter(settings.mi_max_rps),
            database=DatabaseGate(_database_log, services(app).clock),
        )

    @property
    def notifier_context(self) -> NotifierContext:
        return services(self.app).notifier

    @property
    def pacing(self) -> PollPacing:
        return PollPacing(
            self.settings.bridge_poll_interval, self.settings.bridge_poll_max_interval
        )

    def next_claim_token(self) -> str:
        """A token naming one claim of this worker (lease owner column)."""
        self.claim_seq += 1
        return f"{self.worker_id[-20:]}#{self.claim_seq}"

    def close(self) -> None:
        """Stop threads and release connections."""
        self.stop.set()
        self.delivery_pool.shutdown(wait=True, cancel_futures=True)
        if self.poll_transport is not None:
            self.poll_transport.close()
        self.client.close()
