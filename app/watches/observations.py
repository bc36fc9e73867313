"""What one observed status means for one watch: pure rules from the contract's Events section.

Events are per watch: one per (watch, observed change). The first observation records history and
emits nothing unless it is terminal; with ``analysis.status_changed`` subscribed every later change
(terminal ones included) emits it, followed by the terminal event.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.upstream import statuses
from app.vocabulary import WatchState

TERMINAL_EVENTS = {
    statuses.ANALYZE_COMPLETED: "analysis.completed",
    statuses.ANALYZE_FAIL: "analysis.failed",
    statuses.ANALYZE_CANCEL: "analysis.cancelled",
}
TERMINAL_STATES = {
    statuses.ANALYZE_COMPLETED: WatchState.COMPLETED,
    statuses.ANALYZE_FAIL: WatchState.FAILED,
    statuses.ANALYZE_CANCEL: WatchState.CANCELLED,
}
STATUS_CHANGED = "analysis.status_changed"


@dataclass(frozen=True)
class Observation:
    """The decision for one watch: record a history row?, which events, the watch's new state."""

    record: bool
    events: tuple[str, ...]
    end_state: str | None  # None: keep watching


def observe(
    previous_status: str | None,
    first_observation: bool,
    new_status: str,
    subscribed: frozenset[str] | set[str],
) -> Observation:
    """Decide what observing ``new_status`` means for a watch whose last status was ``previous_status``."""
    changed = first_observation or new_status != previous_status
    if not changed:
        return Observation(record=False, events=(), end_state=None)
    emitted: list[str] = []
    if not first_observation and STATUS_CHANGED in subscribed:
        emitted.append(STATUS_CHANGED)
    terminal_event = TERMINAL_EVENTS.get(new_status)
    if terminal_event and terminal_event in subscribed:
        emitted.append(terminal_event)
    return Observation(
        record=True, events=tuple(emitted), end_state=TERMINAL_STATES.get(new_status)
    )
