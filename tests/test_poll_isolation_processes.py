"""No early polls: ``BRIDGE_POLL_INTERVAL`` is a bound both ways. Workers claim up to a tick ahead,
but send each request no earlier than its asset's due time, so no asset is polled twice within its
jittered interval (interval x 0.9), however many workers share it. Measured by the simulator's
request log (arrival times), with two real worker processes on PostgreSQL.

How the two workers share the assets depends on the phases of their ticks, which the test does not
control (an asset falling due just after one worker's tick is claimed by whichever ticks next, and
tends to stay with it): sometimes one worker polls everything. The gaps catch an early poll that
comes from the workers alternating; the workers' earliness histograms catch an early request from
either alone.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select, update

from app.db import db
from app.models import Asset, WorkerHeartbeat
from app.worker.pacing import JITTER
from tests.processes import AUTH, Processes, bridge_env

pytestmark = pytest.mark.slow

ASSETS = [f"e{n:02d}" for n in range(24)]
INTERVAL = 1.0
#: Requests per asset to observe: about this many seconds of polling.
POLLS_PER_ASSET = 15
#: Clock reads and timers on two processes: the simulator's arrival time is not the worker's send.
TOLERANCE = 0.05


def request_times(sim_control) -> dict[str, list[float]]:
    log = sim_control.get("/requests").json()["requests"]
    return {entry["asset_id"]: entry["times"] for entry in log if entry["asset_id"] in ASSETS}


def spread_first_polls(app) -> None:
    """Make the assets due one after the other over the next interval, not all at once: claims that
    fall due together go to whichever worker ticks first, and the workers would not alternate."""
    now = datetime.now(UTC)
    with app.app_context():
        for n, asset_id in enumerate(ASSETS):
            due = now + timedelta(seconds=INTERVAL * n / len(ASSETS))
            db.session.execute(
                update(Asset).where(Asset.asset_id == asset_id).values(next_poll_at=due)
            )
        db.session.commit()


def polled_at_least(sim_control, polls: int) -> bool:
    times = request_times(sim_control)
    return len(times) == len(ASSETS) and min(map(len, times.values())) >= polls


@pytest.mark.postgres
@pytest.mark.timeout(60)
def test_two_workers_never_poll_an_asset_within_its_jittered_interval(
    tmp_path, pg_app, postgres_url, simulator, sim_control, wait_until
):
    client = pg_app.test_client()
    for asset_id in ASSETS:
        assert sim_control.put(f"/assets/ws/1/{asset_id}", json={"status": "ANALYZING"}).ok
        body = {
            "workspace": "ws", "project_id": "1", "asset_id": asset_id, "api": "index",
            "targets": [{"type": "webhook", "url": "http://127.0.0.1:9/hook"}],
        }  # fmt: skip
        assert client.post("/api/v1/watches", json=body, headers=AUTH).status_code == 201
    spread_first_polls(pg_app)
    env = bridge_env(
        postgres_url,
        simulator.url,
        BRIDGE_POLL_INTERVAL=str(INTERVAL),
        BRIDGE_POLL_MAX_INTERVAL=str(INTERVAL),
        BRIDGE_LEASE_SECONDS="5",
    )
    procs = Processes(tmp_path)
    try:
        # One after the other: workers started together tick in step, and the first to claim each
        # second would take every asset due in it (a claim looks one tick ahead).
        procs.worker("worker-1", env)
        wait_until(lambda: polled_at_least(sim_control, 1), timeout=15, message="first polls")
        procs.worker("worker-2", env)
        wait_until(
            lambda: polled_at_least(sim_control, POLLS_PER_ASSET),
            timeout=30,
            message=f"every asset polled {POLLS_PER_ASSET} times",
        )
        assert procs.stop("worker-1") == 0
        assert procs.stop("worker-2") == 0
    finally:
        procs.stop_all()

    times = request_times(sim_control)
    gaps = {asset_id: [b - a for a, b in pairwise(ts)] for asset_id, ts in times.items()}
    every_gap = sorted(gap for asset_gaps in gaps.values() for gap in asset_gaps)
    with pg_app.app_context():
        beats = db.session.scalars(select(WorkerHeartbeat)).all()
    earliness = [beat.counters["poll_earliness"] for beat in beats]
    sent = sum(e["count"] for e in earliness)
    on_time = sum(dict(e["buckets"])[0.001] for e in earliness)
    polls = {beat.worker_id[-6:]: sum(beat.counters["polls"].values()) for beat in beats}
    floor = INTERVAL * (1 - JITTER) - TOLERANCE
    print(
        f"\nno early polls: {len(every_gap)} gaps over {len(times)} assets, polls by worker {polls};"
        f" gap min {every_gap[0]:.3f} s, median {statistics.median(every_gap):.3f} s,"
        f" max {every_gap[-1]:.3f} s (floor {floor:.2f} s); {on_time} of {sent} first requests"
        f" sent at or after their due time (within 1 ms, by the workers' clocks)"
    )
    assert sorted(times) == ASSETS
    assert len(polls) == 2  # both ran; how they share the assets depends on their ticks' phases
    early = {a: [round(g, 3) for g in asset_gaps if g < floor] for a, asset_gaps in gaps.items()}
    assert not any(early.values()), early
    assert on_time == sent
