"""A claim made ahead of its due time sends its request at the due time, not before; the wait is the
claim's own offset on the worker's clock, so an injected clock with no lookahead never waits."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.db import db
from app.models import Asset
from app.worker.asset_claims import ClaimedAsset
from app.worker.poll_requests import BatchTiming
from app.worker.polling import LOOKAHEAD_MARGIN_SECONDS, poll_once

CLAIMED_AT = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def claim_due_at(due_at: datetime) -> ClaimedAsset:
    return ClaimedAsset(1, "ws", "1", "a1", "index", 1.0, "ANALYZING", due_at, "t#1", CLAIMED_AT)


def test_the_send_time_is_the_claims_offset_from_the_monotonic_clock_at_the_claim():
    timing = BatchTiming(CLAIMED_AT, claimed_monotonic=500.0, lease_ends=560.0)
    assert timing.sends_at(claim_due_at(CLAIMED_AT + timedelta(seconds=0.6))) == 500.6
    # Due now or overdue: no wait at all, whatever the clocks say.
    assert timing.sends_at(claim_due_at(CLAIMED_AT)) == 500.0
    assert timing.sends_at(claim_due_at(CLAIMED_AT - timedelta(hours=3))) == 500.0


def asset_row(bridge, asset_id="a1"):
    with bridge.db():
        return db.session.scalars(select(Asset).where(Asset.asset_id == asset_id)).one()


def due_in(bridge, seconds):
    """Register a1, poll it once, then move the clock to ``seconds`` before its next due time."""
    bridge.set_status("a1", "ANALYZING")
    bridge.register("a1")
    bridge.tick()
    wait = (asset_row(bridge).next_poll_at - bridge.clock.now).total_seconds()
    bridge.clock.advance(wait - seconds)


def sim_now(bridge) -> float:
    return bridge.control.get("/requests", params={"asset_id": "a1"}).json()["now"]


def last_request(bridge) -> float:
    [entry] = bridge.control.get("/requests", params={"asset_id": "a1"}).json()["requests"]
    return entry["times"][-1]


def test_an_early_claim_sends_its_request_at_the_due_time(bridge):
    due_in(bridge, 0.6)
    before = sim_now(bridge)
    report = poll_once(bridge.runtime, lookahead=1.0 + LOOKAHEAD_MARGIN_SECONDS)
    assert (report.claimed, report.requests) == (1, 1)
    assert last_request(bridge) - before >= 0.6
    # By the worker's own (injected, standing) clock it was sent 0.6 s early: the figure is honest
    # about the clock it is given.
    assert bridge.runtime.counters.snapshot()["poll_earliness"]["count"] == 2


def test_without_lookahead_an_injected_clock_never_makes_a_request_wait(bridge):
    due_in(bridge, -3600)  # an hour overdue by the injected clock
    before = sim_now(bridge)
    assert poll_once(bridge.runtime).requests == 1
    assert last_request(bridge) - before < 0.5


def test_a_stop_during_the_wait_sends_nothing_and_gives_the_claim_back(bridge, wait_until):
    due_in(bridge, 0.9)
    requests = bridge.upstream_requests()
    with ThreadPoolExecutor(1) as pool:
        tick = pool.submit(poll_once, bridge.runtime, 1.0 + LOOKAHEAD_MARGIN_SECONDS)
        wait_until(lambda: asset_row(bridge).lease_owner is not None, message="claimed")
        bridge.runtime.stop.set()
        stopped = time.monotonic()
        report = tick.result(timeout=5)
    assert time.monotonic() - stopped < 0.5
    assert (report.claimed, report.polled, report.requests) == (1, 0, 0)
    assert bridge.upstream_requests() == requests
    assert asset_row(bridge).lease_owner is None
