"""The demo's sample analyses: what the simulator does with each asset and how its watch must end."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WORKSPACE = "demo-workspace"
PROJECT = "1001"


@dataclass(frozen=True)
class Sample:
    """One simulated asset, its faults, the watch registered for it, and the state it must reach."""

    asset_id: str
    schedule: dict[str, Any]
    expected_state: str
    expected_event: str
    api: str = "index"
    faults: tuple[dict[str, Any], ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    #: The demo targets it notifies, by name (see ``app.demo.command.demo_targets``).
    targets: tuple[str, ...] = ("inbox", "slack")
    #: A workflow sample: the object key the bridge imports (in ``BUCKET``), then analyses and
    #: summarises; ``asset_id`` is then only the sample's name, ``schedule`` the analysis's.
    import_key: str | None = None


SAMPLES = (
    Sample(
        "clip-completes",
        {"wait_seconds": 3, "analyze_seconds": 8, "outcome": "ANALYZE_COMPLETED", "index_id": 4242},
        "completed", "analysis.completed", labels={"cms_id": "news-0425"},
        targets=("inbox", "slack", "slack_ko", "chat"),
    ),
    Sample(
        "clip-fails",
        {"wait_seconds": 2, "analyze_seconds": 10, "outcome": "ANALYZE_FAIL",
         "message": "영상 파싱 실패 (video parsing failure)"},
        "failed", "analysis.failed", labels={"cms_id": "drama-0117"},
        targets=("inbox", "slack", "slack_ko", "chat"),
    ),
    Sample(
        "clip-cancelled",
        {"wait_seconds": 5, "analyze_seconds": 6, "outcome": "ANALYZE_CANCEL"},
        "cancelled", "analysis.cancelled", targets=("inbox", "slack", "chat"),
    ),
    Sample(
        "clip-flaky-upstream",
        {"wait_seconds": 4, "analyze_seconds": 12, "outcome": "ANALYZE_COMPLETED", "index_id": 4343},
        "completed", "analysis.completed",
        faults=(
            {"kind": "http_error", "status": 503, "count": 3},
            {"kind": "rate_limit", "retry_after": "2", "count": 1},
        ),
        labels={"note": "rides out 503s and a 429"},
    ),
    Sample(
        "clip-legacy-api",
        {"wait_seconds": 2, "analyze_seconds": 9, "outcome": "ANALYZE_COMPLETED", "index_id": 4444},
        "completed", "analysis.completed", api="video-assets",
        labels={"note": "video-assets is retired: falls forward to assets"},
    ),
    Sample(
        "clip-imported",
        {"wait_seconds": 1, "analyze_seconds": 6, "outcome": "ANALYZE_COMPLETED", "index_id": 4545,
         "summary": {"wait_seconds": 1, "summarize_seconds": 3, "outcome": "SUMMARIZE_COMPLETED"}},
        "completed", "summary.completed", import_key="videos/launch-teaser.mp4",
        labels={"note": "imported, analysed and summarised by the bridge"},
        targets=("inbox", "slack", "slack_ko"),
    ),
)  # fmt: skip
#: The Object Storage bucket the workflow sample imports from.
BUCKET = "demo-media"
#: How long the simulated import of a workflow sample's object takes.
IMPORT_SECONDS = 3

#: The simulator retires the oldest endpoint generation, as NCP will in January 2027.
RETIRED_GENERATION = ("video-assets", 410)
