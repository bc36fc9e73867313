"""Housekeeping: tidy rows nobody else removes. Runs every few minutes in the worker."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete
from sqlalchemy.orm import Session

from app.db import db
from app.models import IdempotencyKey
from app.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)


def housekeep(runtime: WorkerRuntime) -> int:
    """Delete idempotency keys past their 24 h lifetime; returns how many were removed."""
    with runtime.app.app_context():
        removed = purge_expired(db.session(), runtime.clock())
        db.session.commit()
    if removed:
        log.info("housekeeping: removed %d expired idempotency keys", removed)
    return removed


def purge_expired(session: Session, now: datetime) -> int:
    """Delete idempotency keys past their lifetime (set when the API stored them); returns how many."""
    # A DELETE's result is a CursorResult (it has the rowcount); Session.execute promises a Result.
    result = cast(
        CursorResult[Any],
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now)),
    )
    return result.rowcount or 0
