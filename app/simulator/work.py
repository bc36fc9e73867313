"""What an asset does besides answering its analysis status: its import, the analysis and summary
requests it received (their bodies kept as sent), its scene summary, and an index refusal.

Frozen values: ``SimulatorState`` replaces them under its lock. Nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from app.simulator.imports import ImportJob
from app.simulator.summaries import SummaryRun, SummarySchedule, summary_status


@dataclass(frozen=True)
class Refusal:
    """A service error every index request to the asset gets (``{"code", "message"}``)."""

    status: int
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the control API."""
        return {"status": self.status, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class AssetWork:
    """An asset's workflow side. ``summary`` is None until a summary is requested."""

    summary_plan: SummarySchedule = field(default_factory=SummarySchedule)
    import_job: ImportJob | None = None
    index_requests: int = 0
    last_index_body: Any = None
    summary: SummaryRun | None = None
    summary_requests: int = 0
    last_summary_body: Any = None

    def index_requested(self, body: Any) -> AssetWork:
        """Count an index request and keep its body."""
        return replace(self, index_requests=self.index_requests + 1, last_index_body=body)

    def analysis_restarted(self) -> AssetWork:
        """A new analysis started: the previous one's summary no longer applies."""
        return replace(self, summary=None)

    def summary_requested(self, body: Any) -> AssetWork:
        """Count a summary request and keep its body."""
        return replace(self, summary_requests=self.summary_requests + 1, last_summary_body=body)

    def view(self, asset_id: str, now: float) -> dict[str, Any]:
        """The control API's description at ``now``."""
        status, message = summary_status(self.summary, now)
        job = self.import_job
        return {
            "import": None
            if job is None
            else {"bucket": job.bucket, "key": job.key, **job.result(asset_id, now)},
            "index_requests": self.index_requests,
            "last_index_body": self.last_index_body,
            "summary": {
                "status": status,
                "message": message,
                "schedule": self.summary_plan.to_dict(),
                "requests": self.summary_requests,
                "last_body": self.last_summary_body,
            },
        }
