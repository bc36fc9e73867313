"""The web process's alert sentinel: a thread that evaluates the alert conditions like a worker does
and, while no worker is alive, sends the due ``bridge.alert`` deliveries itself.

That is how ``workers_missing`` reaches its targets when no worker runs at all (the outbox is
otherwise drained by workers only). Gunicorn starts one per web process (``post_worker_init``),
only when ``BRIDGE_ALERT_TARGETS`` is set and no embedded worker runs (that one evaluates itself).
Deliveries are leased before sending, like a worker's, so a worker that comes back meanwhile never
sends the same delivery at the same time; outcomes are recorded like a worker's.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.alerts.evaluate import evaluate_alerts
from app.db import db
from app.models import ALERTS_WATCH_ID, Delivery, WorkerHeartbeat
from app.outbox.sending import apply_results, load_claims, send_claim
from app.services import services
from app.vocabulary import DeliveryState

log = logging.getLogger(__name__)
_EXTENSION = "mi_bridge_alert_sentinel"
#: How long the sentinel's sends are reserved to it (each send ends within the notifiers' budget).
SEND_LEASE = timedelta(seconds=60)
#: A failing round is logged at most once a minute.
LOG_AT_MOST_EVERY = 60.0


class AlertSentinel:
    """The thread (``start``/``stop``) and one round of its work (``run_once``)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.stopping = threading.Event()
        self.token = f"sentinel:{id(self):x}"
        self._thread = threading.Thread(target=self._run, name="alert-sentinel", daemon=True)
        self.started_at = services(app).clock()
        self._rng = random.Random()  # noqa: S311 (retry jitter, not a secret)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        interval = services(self.app).settings.bridge_alert_interval
        last_logged = float("-inf")
        while not self.stopping.wait(interval):
            try:
                self.run_once()
            except Exception as exc:  # the next round tries again (the database may be away)
                if time.monotonic() - last_logged >= LOG_AT_MOST_EVERY:  # no flood in an outage
                    last_logged = time.monotonic()
                    log.warning("alert sentinel round failed: %s: %s", type(exc).__name__, exc)

    def run_once(self) -> int:
        """Evaluate; then, if no worker is alive, send the due alert deliveries. Returns how many
        were sent."""
        with self.app.app_context():
            try:
                svc = services(self.app)
                now = svc.clock()
                session = db.session()
                evaluate_alerts(session, svc.settings, svc.alert_targets, now, self.started_at)
                after = timedelta(seconds=svc.settings.bridge_alert_workers_after)
                if _worker_alive(session, now, after):
                    return 0
                return self._send_due(session, now)
            finally:
                db.session.remove()

    def _send_due(self, session: Session, now: datetime) -> int:
        svc = services(self.app)
        due = (
            update(Delivery)
            .where(
                Delivery.watch_id == ALERTS_WATCH_ID,
                Delivery.state == DeliveryState.PENDING,
                Delivery.next_attempt_at <= now,
                or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
            )
            .values(lease_owner=self.token, lease_expires_at=now + SEND_LEASE)
            .execution_options(synchronize_session=False)
        )
        session.execute(due)
        seqs = list(
            session.scalars(
                select(Delivery.seq)
                .where(Delivery.lease_owner == self.token, Delivery.watch_id == ALERTS_WATCH_ID)
                .order_by(Delivery.seq)
            )
        )
        claims = load_claims(session, seqs, svc.clock())
        session.commit()
        results = [(claim, send_claim(svc.notifier, claim)) for claim in claims]
        apply_results(
            session, self.token, results, svc.clock(), svc.settings.bridge_retry_schedule,
            self._rng, endpoint_disable_after=svc.settings.bridge_endpoint_disable_after,
        )  # fmt: skip
        session.commit()
        if results:
            log.info("alert sentinel sent %d alert deliveries (no worker is running)", len(results))
        return len(results)


def _worker_alive(session: Session, now: datetime, after: timedelta) -> bool:
    last_seen = session.scalar(select(func.max(WorkerHeartbeat.last_seen_at)))
    return last_seen is not None and now - last_seen <= after


def start_sentinel(app: Flask) -> AlertSentinel | None:
    """Start ``app``'s sentinel once (None when no alert targets are configured)."""
    if not services(app).alert_targets:
        return None
    sentinel = app.extensions.get(_EXTENSION)
    if sentinel is None:
        sentinel = app.extensions[_EXTENSION] = AlertSentinel(app)
        sentinel.start()
    return sentinel


def stop_sentinel(app: Flask) -> None:
    """Stop ``app``'s sentinel, if it runs."""
    sentinel = app.extensions.pop(_EXTENSION, None)
    if sentinel is not None:
        sentinel.stop()
