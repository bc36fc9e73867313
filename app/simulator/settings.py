"""The simulator's adjustable settings: its configuration and the per-generation on/off switches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.simulator.assets import Schedule

#: How a switched-off generation answers: 404 (errorCode 300) or 410, as a retired path may.
GONE_STATUSES = (404, 410)


@dataclass(frozen=True)
class SimConfig:
    """``auto_create``: unknown assets are created on first request with ``default_schedule``.

    ``clock_offset_seconds`` shifts the clock signature timestamps are checked against (simulated
    skew); it never touches asset schedules.
    """

    auto_create: bool = True
    default_schedule: Schedule = field(default_factory=Schedule)
    clock_offset_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the control API."""
        return {
            "auto_create": self.auto_create,
            "default_schedule": self.default_schedule.to_dict(),
            "clock_offset_seconds": self.clock_offset_seconds,
        }


@dataclass(frozen=True)
class GenerationSwitch:
    """Whether a status generation answers; when off, every request to it gets ``status_code``."""

    enabled: bool = True
    status_code: int = 404

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the control API."""
        return {"enabled": self.enabled, "status_code": self.status_code}
