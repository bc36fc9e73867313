"""How hard one worker pushes Media Intelligence: requests in flight (``BRIDGE_POLL_CONCURRENCY``),
requests per second (``MI_MAX_RPS``), and ticks that go on while batches come full."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.worker.polling import BATCH_PER_SLOT


@pytest.fixture
def bridge_overrides(request):
    return {"BRIDGE_POLL_CONCURRENCY": "3", **getattr(request, "param", {})}


def held(bridge) -> int:
    return bridge.control.get("/stats").json()["held"]


def register_analyzing(bridge, count: int) -> None:
    for i in range(count):
        bridge.set_status(f"c{i}", "ANALYZING")
        bridge.register(f"c{i}")


def test_requests_in_flight_never_exceed_the_configured_concurrency(bridge, wait_until):
    register_analyzing(bridge, 9)
    bridge.fault(kind="hold", count=None, timeout_seconds=30)
    with ThreadPoolExecutor(1) as pool:
        tick = pool.submit(bridge.tick)
        seen = []
        while not tick.done():
            wait_until(lambda: held(bridge) == 3 or tick.done())
            # Ask again a few times (each a round trip to the simulator): the other claims must
            # still be waiting for a slot, not joining the held ones.
            seen.extend(held(bridge) for _ in range(10))
            bridge.control.post("/release")
        report = tick.result(timeout=10)
    assert report.polled == 9
    assert max(seen) == 3
    assert bridge.upstream_requests() == 9


@pytest.mark.parametrize("bridge_overrides", [{"MI_MAX_RPS": "10"}], indirect=True)
def test_the_request_rate_is_capped(bridge):
    register_analyzing(bridge, 15)
    started = time.monotonic()
    report = bridge.tick()
    elapsed = time.monotonic() - started
    assert report.requests == 15
    # A bucket of 10 tokens, refilled at 10/s: the last 5 requests wait about half a second.
    assert elapsed >= 0.4


def test_one_tick_polls_batch_after_batch_while_they_come_full(bridge):
    batch = 3 * BATCH_PER_SLOT
    register_analyzing(bridge, batch * 2 + 1)
    report = bridge.tick()
    assert (report.claimed, report.polled) == (batch * 2 + 1, batch * 2 + 1)
