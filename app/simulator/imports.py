"""Imports from Object Storage: what ``GET .../assets/{id}/import-status`` answers, as a pure
function of a clock reading.

An import of an object the control API declared (``PUT /_sim/objects/...``) is IN_PROGRESS for the
object's ``seconds``, then ends at its ``outcome``. An import of an undeclared object still gets an
asset id (NCP answers the POST before it looks at the object) and reads FILE_NOT_EXIST at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
FILE_NOT_EXIST = "FILE_NOT_EXIST"
INVALID_METADATA = "INVALID_METADATA"
IMPORT_OUTCOMES = (COMPLETED, FAILED, INVALID_METADATA, FILE_NOT_EXIST)

#: ``uploadResult`` for an outcome declared without one (human text, as the service's).
DEFAULT_UPLOAD_RESULTS = {
    COMPLETED: "Upload completed.",
    FAILED: "Upload failed.",
    INVALID_METADATA: "Unsupported media: resolution must be 360p to 1080p.",
    FILE_NOT_EXIST: "The object does not exist.",
}
DEFAULT_META_DATA: dict[str, Any] = {
    "resolution": "1920x1080",
    "durationMs": 60_000,
    "size": 10_485_760,
    "format": "MP4",
}


@dataclass(frozen=True)
class ImportPlan:
    """How an import of one object goes: ``seconds`` IN_PROGRESS, then ``outcome``."""

    seconds: float = 2.0
    outcome: str = COMPLETED
    upload_result: str | None = None
    meta_data: Any = field(default_factory=lambda: dict(DEFAULT_META_DATA))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the control API."""
        return {
            "import_seconds": self.seconds,
            "outcome": self.outcome,
            "upload_result": self.upload_result,
            "meta_data": self.meta_data,
        }


#: What importing an undeclared object does.
MISSING_OBJECT = ImportPlan(seconds=0.0, outcome=FILE_NOT_EXIST, meta_data=None)


@dataclass(frozen=True)
class ImportJob:
    """One import: ``plan`` running from ``started_at``."""

    bucket: str
    key: str
    plan: ImportPlan
    started_at: float

    def status(self, now: float) -> str:
        """The ``uploadStatus`` at clock reading ``now``."""
        return IN_PROGRESS if now - self.started_at < self.plan.seconds else self.plan.outcome

    def result(self, asset_id: str, now: float) -> dict[str, Any]:
        """The ``result`` of an import-status answer; message and metadata once it has ended."""
        status = self.status(now)
        if status == IN_PROGRESS:
            return {
                "assetId": asset_id,
                "uploadStatus": status,
                "uploadResult": None,
                "metaData": None,
            }
        upload_result = self.plan.upload_result or DEFAULT_UPLOAD_RESULTS[status]
        return {
            "assetId": asset_id,
            "uploadStatus": status,
            "uploadResult": upload_result,
            "metaData": self.plan.meta_data,
        }


def registered_result(asset_id: str) -> dict[str, Any]:
    """The import status of an asset made by the control API, not imported: already COMPLETED."""
    return {"assetId": asset_id, "uploadStatus": COMPLETED, "uploadResult": None, "metaData": None}
