"""Results are applied as they arrive: an upstream asset that holds its answer delays only itself,
not the other assets of its batch (first observations and quiet polls alike). On SQLite and
PostgreSQL, the tick run on a thread of the test against the simulator's ``hold`` fault."""

import time
from concurrent.futures import ThreadPoolExecutor

BYSTANDERS = [f"b{n}" for n in range(6)]
#: "Within about a second" of the tick's start, with room for a busy machine.
PROMPT_SECONDS = 1.5


def held(bridge) -> int:
    return bridge.control.get("/stats").json()["held"]


def tick_while_held(bridge, wait_until, seen, advance=0.0):
    """Run a tick while the simulator holds the poll of "slow"; return (report, seconds until every
    bystander was seen as ``seen(watch)`` says, still held then)."""
    bridge.fault(kind="hold", asset_id="slow", timeout_seconds=30)
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        tick = pool.submit(bridge.tick, advance)
        try:
            wait_until(
                lambda: all(seen(bridge.watch(w)) for w in bridge.bystanders),
                timeout=PROMPT_SECONDS,
                message="every bystander applied while the slow asset is held",
            )
            took = time.monotonic() - started
            assert held(bridge) == 1
            assert not tick.done()
        finally:
            bridge.control.post("/release")
        return tick.result(timeout=10), took


def test_a_held_asset_does_not_delay_the_rest_of_its_batch(any_bridge, wait_until):
    bridge = any_bridge
    for asset_id in [*BYSTANDERS, "slow"]:
        bridge.set_status(asset_id, "ANALYZING", message="step 1")
    bridge.bystanders = [bridge.register(asset_id)["id"] for asset_id in BYSTANDERS]
    slow = bridge.register("slow")["id"]

    report, first = tick_while_held(bridge, wait_until, lambda w: w["status"] == "ANALYZING")
    assert (report.claimed, report.polled) == (7, 7)  # one batch
    assert bridge.watch(slow)["status"] == "ANALYZING"  # applied once released

    for asset_id in [*BYSTANDERS, "slow"]:
        bridge.set_status(asset_id, "ANALYZING", message="step 2")
    report, quiet = tick_while_held(
        bridge, wait_until, lambda w: w["message"] == "step 2", advance=1.1
    )
    assert (report.claimed, report.polled) == (7, 7)
    assert bridge.watch(slow)["message"] == "step 2"
    print(f"\nbystanders applied {first:.2f} s (first poll), {quiet:.2f} s (quiet) into the tick")
