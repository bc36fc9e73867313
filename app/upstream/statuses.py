"""The analysis statuses Media Intelligence reports (the same six in every generation)."""

from __future__ import annotations

BEFORE_ANALYZE = "BEFORE_ANALYZE"
WAIT_ANALYZE = "WAIT_ANALYZE"
ANALYZING = "ANALYZING"
ANALYZE_COMPLETED = "ANALYZE_COMPLETED"
ANALYZE_FAIL = "ANALYZE_FAIL"
ANALYZE_CANCEL = "ANALYZE_CANCEL"  # spelled CANCEL, not CANCELED

KNOWN = (BEFORE_ANALYZE, WAIT_ANALYZE, ANALYZING, ANALYZE_COMPLETED, ANALYZE_FAIL, ANALYZE_CANCEL)
TERMINAL = frozenset({ANALYZE_COMPLETED, ANALYZE_FAIL, ANALYZE_CANCEL})


def is_terminal(status: str | None) -> bool:
    """True for the three statuses that end an analysis; unknown statuses are not terminal."""
    return status in TERMINAL
