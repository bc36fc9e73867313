"""Housekeeping: tidy rows nobody else removes. Runs every few minutes in the worker."""

from __future__ import annotations

import logging

from app.api.idempotency import purge_expired
from app.db import db
from app.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)


def housekeep(runtime: WorkerRuntime) -> int:
    """Delete idempotency keys past their 24 h lifetime; returns how many were removed."""
    with runtime.app.app_context():
        removed = purge_expired(db.session, runtime.clock())
        db.session.commit()
    if removed:
        log.info("housekeeping: removed %d expired idempotency keys", removed)
    return removed
