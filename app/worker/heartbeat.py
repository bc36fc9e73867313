"""The worker's heartbeat row: proof of life for ``/readyz`` and the counters ``/metrics`` reports."""

from __future__ import annotations

import os
import socket

from sqlalchemy.dialects import postgresql, sqlite

from app.db import db
from app.models import WorkerHeartbeat
from app.worker.runtime import WorkerRuntime


def beat(runtime: WorkerRuntime) -> None:
    """Upsert this worker's row with the time and its cumulative counters (own transaction)."""
    with runtime.app.app_context():
        session = db.session()
        now = runtime.clock()
        values = {
            "worker_id": runtime.worker_id,
            "kind": runtime.kind,
            "hostname": socket.gethostname()[:255],
            "pid": os.getpid(),
            "started_at": now,
            "last_seen_at": now,
            "counters": runtime.counters.snapshot(),
        }
        dialect = session.get_bind().dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(WorkerHeartbeat)
        statement = insert.values(**values).on_conflict_do_update(
            index_elements=["worker_id"],
            set_={"last_seen_at": now, "counters": values["counters"]},
        )
        session.execute(statement)
        session.commit()
        db.session.remove()
