"""Shared by the workflow tests: the simulator's clock, its objects to import, and running a
workflow watch tick by tick until it ends.

The bridge's clock is a FakeClock moved by ``bridge.tick(advance=...)``; the simulator's schedules
run on its own clock, moved by ``POST /_sim/clock/advance`` (the ``sim_advance`` fixture).
"""

from __future__ import annotations

from typing import Any

BUCKET, KEY = "media-in", "videos/show-01.mp4"
#: The analysis (and summary) an object's import leads to, unless a test says otherwise.
ANALYSIS = {
    "wait_seconds": 1, "analyze_seconds": 2, "outcome": "ANALYZE_COMPLETED", "index_id": 77,
    "summary": {"wait_seconds": 1, "summarize_seconds": 1, "outcome": "SUMMARIZE_COMPLETED"},
}  # fmt: skip


def declare_object(sim_control, key: str = KEY, **spec: Any) -> None:
    """Declare ``BUCKET``/``key`` in the simulator: imported in 1 s, then ``ANALYSIS``."""
    body = {"import_seconds": 1, "analysis": ANALYSIS, **spec}
    response = sim_control.put(f"/objects/{BUCKET}/{key}", json=body)
    assert response.status_code in (200, 201), response.text


def run_until_ended(bridge, sim_advance, watch_id: str, ticks: int = 30) -> dict:
    """Tick (the bridge's clock 1 s, the simulator's 1 s) until the watch ends; its JSON."""
    for _ in range(ticks):
        watch = bridge.watch(watch_id)
        if watch["state"] != "watching":
            return watch
        sim_advance(1)
        bridge.tick(advance=1)
    raise AssertionError(f"still watching after {ticks} ticks: {bridge.watch(watch_id)}")
