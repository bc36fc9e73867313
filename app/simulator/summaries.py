"""Scene summaries: what ``GET .../assets/{id}/scene-summary/status`` answers, as a pure function of
a clock reading.

The status enum is the documented one (``CANCELED`` here, ``CANCEL`` in the analysis enum). The docs
do not show the status answer's body, so the simulator chooses the analysis status's shape:
``result.status`` plus a message field, ``result.summarizeStatusMessage`` (null unless failed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BEFORE_SUMMARIZE = "BEFORE_SUMMARIZE"
WAIT_SUMMARIZE = "WAIT_SUMMARIZE"
SUMMARIZING = "SUMMARIZING"
SUMMARIZE_COMPLETED = "SUMMARIZE_COMPLETED"
SUMMARIZE_FAIL = "SUMMARIZE_FAIL"
SUMMARIZE_CANCELED = "SUMMARIZE_CANCELED"  # spelled CANCELED, unlike ANALYZE_CANCEL

SUMMARY_OUTCOMES = (SUMMARIZE_COMPLETED, SUMMARIZE_FAIL, SUMMARIZE_CANCELED)
SUMMARY_RUNNING = frozenset({WAIT_SUMMARIZE, SUMMARIZING})
SUMMARY_MESSAGE_FIELD = "summarizeStatusMessage"
DEFAULT_SUMMARY_FAIL_MESSAGE = "Scene summary failure."


@dataclass(frozen=True)
class SummarySchedule:
    """WAIT_SUMMARIZE for ``wait_seconds``, SUMMARIZING for ``summarize_seconds``, then ``outcome``."""

    wait_seconds: float = 1.0
    summarize_seconds: float = 2.0
    outcome: str = SUMMARIZE_COMPLETED
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the control API."""
        return {
            "wait_seconds": self.wait_seconds,
            "summarize_seconds": self.summarize_seconds,
            "outcome": self.outcome,
            "message": self.message,
        }


@dataclass(frozen=True)
class SummaryRun:
    """One requested summary: ``schedule`` from ``started_at``, or fixed at ``pinned`` (a cancel)."""

    schedule: SummarySchedule
    started_at: float
    pinned: str | None = None

    def status(self, now: float) -> tuple[str, str | None]:
        """(status, message) at clock reading ``now``."""
        if self.pinned is not None:
            return self.pinned, None
        elapsed = now - self.started_at
        schedule = self.schedule
        if elapsed < schedule.wait_seconds:
            return WAIT_SUMMARIZE, None
        if elapsed < schedule.wait_seconds + schedule.summarize_seconds:
            return SUMMARIZING, None
        message = schedule.message
        if message is None and schedule.outcome == SUMMARIZE_FAIL:
            message = DEFAULT_SUMMARY_FAIL_MESSAGE
        return schedule.outcome, message


def summary_status(run: SummaryRun | None, now: float) -> tuple[str, str | None]:
    """(status, message) of an asset's summary; BEFORE_SUMMARIZE when none was ever requested."""
    return (BEFORE_SUMMARIZE, None) if run is None else run.status(now)


def summary_result(run: SummaryRun | None, now: float) -> dict[str, Any]:
    """The ``result`` of a scene-summary status answer."""
    status, message = summary_status(run, now)
    return {"status": status, SUMMARY_MESSAGE_FIELD: message}
