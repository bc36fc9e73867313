"""Following a watch (``watch add --wait``): its progress read from the database, and the hint given
once when nothing is going to move it because no worker runs."""

from __future__ import annotations

import time

import click

from app.cli.watch_output import Progress, StatusLine
from app.db import db
from app.health.readiness import read_health
from app.models import Watch
from app.services import services

#: Seconds a followed watch waits unpolled before the command looks for a worker. A worker that
#: starts meanwhile polls within about a second of its first database check, well inside this.
NO_WORKER_HINT_AFTER = 5.0
NO_WORKER_HINT = (
    "no worker is running: start one with `mi-bridge worker` (or BRIDGE_EMBEDDED_WORKER=true);"
    " still waiting"
)


def progress(watch_id: str) -> Progress | None:
    """The watch as the database has it now (None if it is gone); leaves no transaction open."""
    try:
        watch = db.session.get(Watch, watch_id, populate_existing=True)
        if watch is None:
            return None
        stage = watch.stage if watch.state == "watching" else None
        return Progress(watch.state, watch.status, watch.api, watch.poll_count, stage)
    finally:
        # A read opens a transaction (BEGIN IMMEDIATE on SQLite): end it before sleeping.
        db.session.rollback()


class NoWorkerHint:
    """Says ``NO_WORKER_HINT`` on stderr, at most once, when the followed watch is still unpolled
    ``NO_WORKER_HINT_AFTER`` s after registration and no worker is alive (``/readyz``'s rule)."""

    def __init__(self, line: StatusLine, started: float) -> None:
        self.line, self.started, self.given = line, started, False

    def check(self, shown: Progress) -> None:
        """Give the hint if it is due (one heartbeat query once the grace time is over)."""
        if self.given or shown.poll_count or time.monotonic() - self.started < NO_WORKER_HINT_AFTER:
            return
        try:
            if read_health(db.session(), services().clock()).worker_ok:
                return
        finally:
            db.session.rollback()
        self.line.finish()  # the hint starts a line of its own, even on a terminal
        click.echo(NO_WORKER_HINT, err=True)
        self.given = True
