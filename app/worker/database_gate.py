"""The database-outage gate: what a process knows of its database being away, and the few log lines
that say so.

While the database is unreachable or has no schema yet, every job run or request that touches it
fails the same way. The gate turns that stream into: one line when the database goes away (or is
found without its schema), a reminder at most once a minute while it stays so, one line when it is
back. The worker's jobs also consult it: they skip while it is not ``usable`` and a single check
(``app.worker.database_wait``) decides when it is again. The web reports into one too, without
skipping anything (``app.web.outage``). Thread-safe: every job thread and request thread shares it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from app.clock import Clock, utcnow
from app.health.readiness import database_reason, database_trouble
from app.vocabulary import DatabaseHealth

#: How often a lasting outage is mentioned again.
REMIND_EVERY = timedelta(minutes=1)
#: The most lines the gate writes in any minute: a database that comes and goes every few seconds
#: (a flapping network) writes these, not one pair per flap.
LINES_PER_MINUTE = 3
#: An outage not reported for this long is over (for a gate nobody tells when it is back: the web).
FORGET_AFTER = timedelta(minutes=1)

_UPGRADE = "(run `mi-bridge db upgrade`)"


class DatabaseGate:
    """The database's state as this process last saw it, and the log lines about it.

    ``meanwhile`` says what the process does while the database is away (``waiting``, ``answering
    503``), at the end of the line that announces it. ``clock`` is the app's clock. A new gate is not
    ``usable`` until ``up`` is called: the worker's jobs start once its first check succeeds.
    """

    def __init__(
        self, log: logging.Logger, clock: Clock = utcnow, *, meanwhile: str = "waiting"
    ) -> None:
        self._log, self._clock, self._meanwhile = log, clock, meanwhile
        self._lock = threading.Lock()
        self._usable = False
        self._ever_up = False
        self._trouble: DatabaseHealth | None = None
        self._reason = ""
        self._since: datetime | None = None
        self._last_report: datetime | None = None
        #: What the log last said: the trouble it announced, or None (fine, or nothing said yet).
        self._said: DatabaseHealth | None = None
        self._last_line: datetime | None = None
        self._lines: deque[datetime] = deque()
        #: Called (outside the lock) when a usable database is reported gone.
        self.on_down: Callable[[], None] = lambda: None

    @property
    def usable(self) -> bool:
        """Whether the database was fine when last heard of (jobs run only then)."""
        return self._usable

    @property
    def trouble(self) -> DatabaseHealth | None:
        """What is wrong with the database now, or None."""
        return self._trouble

    def report(self, exc: BaseException) -> bool:
        """Record ``exc`` if it says the database is away or without schema, and return True; return
        False for any other error (the caller lets it propagate, traceback and all)."""
        trouble = database_trouble(exc)
        if trouble is None:
            return False
        self.down(trouble, database_reason(exc))
        return True

    def down(self, trouble: DatabaseHealth, reason: str) -> None:
        """The database is away (``UNREACHABLE``) or without its schema (``SCHEMA_MISSING``)."""
        with self._lock:
            now = self._clock()
            was_usable, self._usable = self._usable, False
            if self._last_report is not None and now - self._last_report >= FORGET_AFTER:
                self._trouble = self._said = None  # that one ended unnoticed: this is a new one
            if self._trouble is None:
                self._since = now
            self._trouble, self._reason, self._last_report = trouble, reason, now
            if self._said != trouble:
                if self._may_log(now):
                    self._log.warning("%s; %s", self._gone_line(), self._meanwhile)
                    self._said = trouble
            elif self._reminder_due(now) and self._may_log(now):
                self._log.warning(self._still_line(now))
        if was_usable:
            self.on_down()

    def up(self) -> None:
        """The database answers with its schema: jobs may run; says so if an outage was said."""
        with self._lock:
            self._usable, self._trouble = True, None
            self._say_back()

    def confirm(self) -> None:
        """A job went through while usable: the "back" line, if the minute's lines held it back."""
        if self._said is None:
            return
        with self._lock:
            if self._usable:
                self._say_back()

    def _say_back(self) -> None:
        now = self._clock()
        if self._said is not None:
            if not self._may_log(now):
                return  # said at a later success, once the minute's lines allow it
            took = f" after {_duration(now - self._since)}" if self._since else ""
            if self._ever_up:
                self._log.info("database back%s", took)
            else:
                self._log.info("database ready%s; starting", took)
            self._said = None
        self._since, self._ever_up = None, True

    def _reminder_due(self, now: datetime) -> bool:
        return self._last_line is None or now - self._last_line >= REMIND_EVERY

    def _may_log(self, now: datetime) -> bool:
        """Whether one more line fits in ``LINES_PER_MINUTE``; counts it when it does."""
        while self._lines and now - self._lines[0] >= timedelta(minutes=1):
            self._lines.popleft()
        if len(self._lines) >= LINES_PER_MINUTE:
            return False
        self._lines.append(now)
        self._last_line = now
        return True

    def _gone_line(self) -> str:
        if self._trouble == DatabaseHealth.SCHEMA_MISSING:
            return f"database schema not there yet {_UPGRADE}: {self._reason}"
        return f"database unreachable: {self._reason}"

    def _still_line(self, now: datetime) -> str:
        lasted = _duration(now - self._since) if self._since is not None else "a while"
        if self._trouble == DatabaseHealth.SCHEMA_MISSING:
            return f"database schema still not there after {lasted} {_UPGRADE}: {self._reason}"
        return f"database still unreachable after {lasted}: {self._reason}"


def _duration(span: timedelta) -> str:
    seconds = max(0, round(span.total_seconds()))
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"
