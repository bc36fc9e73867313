"""Turning the conditions that hold into ``bridge.alert`` events: one ``firing`` when a condition
starts, a reminder every ``BRIDGE_ALERT_REPEAT`` while it lasts, one ``resolved`` when it ends.

The ``alerts`` table remembers what was said. Any process may evaluate at any time: two evaluating
at once write the same event ``dedupe_key`` (kind, subject, occurrence, notification number), and
the unique constraint lets only one of them commit; the other rolls back and changes nothing.
Events go to the alerts' watch's targets through the outbox, in the same transaction as the row.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.alerts.conditions import Condition, Thresholds, current_conditions
from app.alerts.envelope import alert_body
from app.alerts.watch import alerts_watch, sync_targets
from app.config import Settings
from app.models import ALERTS_WATCH_ID, Alert, Event, new_id
from app.outbox.emit import new_delivery, serialise_event_commits
from app.upstream.accounts import accounts_of
from app.vocabulary import AlertKind, AlertState, EventType
from app.watches.validation import TargetIn

log = logging.getLogger(__name__)


def thresholds(settings: Settings, started_at: datetime | None = None) -> Thresholds:
    """The condition thresholds of ``settings`` for a process started at ``started_at``."""
    return Thresholds(
        started_at=started_at,
        unreachable_after=timedelta(seconds=settings.bridge_alert_unreachable_after),
        rate_limited_after=timedelta(seconds=settings.bridge_alert_rate_limited_after),
        workers_after=timedelta(seconds=settings.bridge_alert_workers_after),
        dead_window=timedelta(seconds=settings.bridge_alert_repeat),
        accounts=accounts_of(settings),
    )


@dataclass(frozen=True)
class Notification:
    """One ``bridge.alert`` event written."""

    kind: str
    subject: str
    state: AlertState
    since: datetime
    detail: str
    reminder: bool = False


def evaluate_alerts(
    session: Session,
    settings: Settings,
    targets: tuple[TargetIn, ...],
    now: datetime,
    started_at: datetime | None = None,
) -> list[Notification]:
    """Compare the conditions with the ``alerts`` rows, write the events that are due, commit.

    Rows are kept even with no targets configured (``/readyz`` and the dashboard read them); the
    events are written only when ``targets`` has some. ``started_at``: when the evaluating process
    started (see ``Thresholds.started_at``). Returns the notifications committed (empty
    when another process committed the same ones first).
    """
    found = current_conditions(session, now, thresholds(settings, started_at))
    conditions: dict[tuple[str, str], Condition] = {(c.kind, c.subject): c for c in found}
    rows = {(row.kind, row.subject): row for row in session.scalars(select(Alert))}
    repeat = timedelta(seconds=settings.bridge_alert_repeat)
    due: list[tuple[Alert, Notification]] = []
    for key, found_condition in conditions.items():
        condition = found_condition
        row = rows.get(key)
        if row is None:
            row = Alert(kind=condition.kind, subject=condition.subject, notifications=0)
            session.add(row)
        if row.state != AlertState.FIRING:
            if row.since is not None and condition.since <= row.since:
                # A new occurrence needs a new ``since``: it is part of the events' dedupe keys.
                condition = replace(condition, since=now)
            row.state, row.since, row.resolved_at, row.notifications = (
                AlertState.FIRING,
                condition.since,
                None,
                0,
            )
            due.append((row, _notification(condition, AlertState.FIRING)))
        elif row.last_notified_at is None or now - row.last_notified_at >= repeat:
            reminder = replace(condition, since=row.since)
            due.append((row, _notification(reminder, AlertState.FIRING, reminder=True)))
        if row.detail != condition.detail[:512]:  # no write when nothing changed
            row.detail, row.updated_at = condition.detail[:512], now
    for key, row in rows.items():
        if key not in conditions and row.state == AlertState.FIRING:
            row.state, row.resolved_at, row.updated_at = AlertState.RESOLVED, now, now
            ended = Condition(AlertKind(row.kind), row.subject, row.since, row.detail)
            due.append((row, _notification(ended, AlertState.RESOLVED)))
    if not due and not conditions and not rows:
        return []
    written = _write_events(session, due, targets, now) if due else []
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # another process said it first
        return []
    for note in written:
        log.warning(
            "alert %s %s%s: %s",
            note.kind,
            note.state,
            " (reminder)" if note.reminder else "",
            note.detail,
        )
    return written


def _notification(
    condition: Condition, state: AlertState, *, reminder: bool = False
) -> Notification:
    return Notification(
        condition.kind, condition.subject, state, condition.since, condition.detail, reminder
    )


def _write_events(
    session: Session,
    due: list[tuple[Alert, Notification]],
    targets: tuple[TargetIn, ...],
    now: datetime,
) -> list[Notification]:
    enabled = []
    if targets:
        watch = alerts_watch(session, now)
        sync_targets(session, watch, targets, now)
        session.refresh(watch, ["targets"])
        enabled = [t for t in watch.targets if not t.disabled]
    if enabled:
        serialise_event_commits(session)
    for row, note in due:
        row.notifications += 1
        row.last_notified_at = now
        if not enabled:
            continue
        event_id = new_id("evt")
        session.add(
            Event(
                id=event_id,
                watch_id=ALERTS_WATCH_ID,
                type=EventType.BRIDGE_ALERT,
                dedupe_key=_dedupe_key(note, row.notifications),
                body=alert_body(event_id, note.kind, note.state, note.since, note.detail, now),
                created_at=now,
            )
        )
        for target in enabled:
            session.add(new_delivery(event_id, target, ALERTS_WATCH_ID, now))
    return [note for _, note in due]


def _dedupe_key(note: Notification, number: int) -> str:
    """Unique per occurrence and notification (64 characters at most)."""
    subject = hashlib.sha256(note.subject.encode()).hexdigest()[:10]
    occurrence = int(note.since.timestamp())
    which = "r" if note.state == AlertState.RESOLVED else f"f{number}"
    return f"alert:{note.kind}:{subject}:{occurrence}:{which}"


def firing_kinds(session: Session) -> list[str]:
    """The kinds with a firing alert, sorted, each once (``/readyz``'s ``alerts``)."""
    kinds = session.scalars(select(Alert.kind).where(Alert.state == AlertState.FIRING).distinct())
    return sorted(kinds)
