"""A simulated asset: what its status endpoint answers, as a pure function of a clock reading.

An asset either follows a ``Schedule`` (WAIT_ANALYZE, then ANALYZING, then a terminal outcome,
timed from the moment the schedule started) or is pinned to a fixed ``Pin`` status. Nothing here
reads a clock: callers pass ``now`` (seconds on the state's injectable clock), so tests can drive
time by hand.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Any

from app.simulator.work import AssetWork, Refusal
from app.upstream.statuses import (
    ANALYZE_CANCEL,
    ANALYZE_COMPLETED,
    ANALYZE_FAIL,
    ANALYZING,
    WAIT_ANALYZE,
)

#: The docs' tables say analyzeStatusMessage; every docs example says analysisStatusMessage.
MESSAGE_FIELDS = ("analyzeStatusMessage", "analysisStatusMessage")
DEFAULT_MESSAGE_FIELD = MESSAGE_FIELDS[0]
OUTCOMES = (ANALYZE_COMPLETED, ANALYZE_FAIL, ANALYZE_CANCEL)
#: A failure without a given reason still carries one: the service documents a reason per failure.
DEFAULT_FAIL_MESSAGE = "Video parsing failure."
RUNNING = frozenset({WAIT_ANALYZE, ANALYZING})

AssetKey = tuple[str, str, str]  # (workspace, project_id, asset_id)


@dataclass(frozen=True)
class Schedule:
    """WAIT_ANALYZE for ``wait_seconds``, ANALYZING for ``analyze_seconds``, then ``outcome``."""

    wait_seconds: float = 2.0
    analyze_seconds: float = 5.0
    outcome: str = ANALYZE_COMPLETED
    message: str | None = None
    index_id: int | None = None

    def status_after(self, elapsed: float) -> str:
        """The status ``elapsed`` seconds after the schedule started (negative counts as zero)."""
        if elapsed < self.wait_seconds:
            return WAIT_ANALYZE
        if elapsed < self.wait_seconds + self.analyze_seconds:
            return ANALYZING
        return self.outcome

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the control API."""
        return {
            "wait_seconds": self.wait_seconds,
            "analyze_seconds": self.analyze_seconds,
            "outcome": self.outcome,
            "message": self.message,
            "index_id": self.index_id,
        }


@dataclass(frozen=True)
class Pin:
    """A fixed status; any string, so statuses the bridge does not know can be simulated."""

    status: str
    message: str | None = None
    index_id: int | None = None


@dataclass(frozen=True)
class Snapshot:
    """What a status request answers at one instant."""

    status: str
    message: str | None
    index_id: int | None


@dataclass(frozen=True)
class SimAsset:
    """One asset, shared by all three status generations (they address it by the same id).

    ``started_at`` is the clock reading when ``plan`` (if a Schedule) started. ``analysis_plan``,
    when set, is what an index request starts (else the current schedule, else the default one);
    ``index_refusal``, when set, refuses every index request; ``work`` is the workflow side.
    """

    workspace: str
    project_id: str
    asset_id: str
    plan: Schedule | Pin
    started_at: float = 0.0
    message_field: str = DEFAULT_MESSAGE_FIELD
    code_as_number: bool = False
    analysis_plan: Schedule | Pin | None = None
    index_refusal: Refusal | None = None
    work: AssetWork = field(default_factory=AssetWork)

    @property
    def key(self) -> AssetKey:
        return (self.workspace, self.project_id, self.asset_id)

    @property
    def schedule(self) -> Schedule | None:
        return self.plan if isinstance(self.plan, Schedule) else None

    def snapshot(self, now: float) -> Snapshot:
        """The status, message and indexId answered at clock reading ``now``."""
        if isinstance(self.plan, Pin):
            pin = self.plan
            index_id = pin.index_id
            if index_id is None and pin.status == ANALYZE_COMPLETED:
                index_id = derived_index_id(self.key)
            return Snapshot(pin.status, pin.message, index_id)
        schedule = self.plan
        status = schedule.status_after(now - self.started_at)
        if status in RUNNING:
            return Snapshot(status, None, None)
        message = schedule.message
        if message is None and status == ANALYZE_FAIL:
            message = DEFAULT_FAIL_MESSAGE
        index_id = schedule.index_id
        if index_id is None and status == ANALYZE_COMPLETED:
            index_id = derived_index_id(self.key)
        return Snapshot(status, message, index_id)

    def restarted(self, plan: Schedule | Pin, now: float) -> SimAsset:
        """This asset with ``plan`` starting at ``now`` (a new analysis request)."""
        return replace(self, plan=plan, started_at=now, work=self.work.analysis_restarted())

    def with_work(self, work: AssetWork) -> SimAsset:
        """This asset with its workflow side replaced."""
        return replace(self, work=work)

    def pinned(self, pin: Pin) -> SimAsset:
        """This asset fixed at ``pin`` (e.g. after a cancel)."""
        return replace(self, plan=pin)

    def view(self, now: float) -> dict[str, Any]:
        """The control API's description at ``now`` (traffic counters are added by the state)."""
        snapshot = self.snapshot(now)
        schedule = self.schedule
        schedule_view = None
        if schedule is not None:
            schedule_view = {
                **schedule.to_dict(),
                "elapsed_seconds": round(now - self.started_at, 3),
            }
        return {
            "workspace": self.workspace,
            "project_id": self.project_id,
            "asset_id": self.asset_id,
            "status": snapshot.status,
            "message": snapshot.message,
            "index_id": snapshot.index_id,
            "schedule": schedule_view,
            "message_field": self.message_field,
            "code_as_number": self.code_as_number,
        }


def derived_index_id(key: AssetKey) -> int:
    """A stable indexId for an asset that completes without a given one (same on every run)."""
    return 1000 + zlib.crc32("/".join(key).encode("utf-8")) % 9_000_000
