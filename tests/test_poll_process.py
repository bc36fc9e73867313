"""``BRIDGE_POLL_TRANSPORT=process``: a worker's status requests sent by a child process.

The poll tick's own tests run here again with the child sending the requests (imported below: they
take this module's ``bridge_overrides``): results applied as they arrive, requests at their due time
and not before, a stop during the wait, the concurrency and rate caps, batch after batch, a 429 that
pauses its account only. Then what only a child process can do: die in the middle of a batch (its
claims are given back and the next tick starts another), be halted while its requests wait, and end
with the worker's runtime. The child's signals and a worker killed outright are in
``test_poll_process_worker.py`` (real worker processes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db import db
from app.models import Asset
from app.worker.asset_claims import ClaimedAsset
from app.worker.poll_process import ChildConfig, ProcessTransport
from app.worker.poll_requests import BatchTiming, Halt
from app.worker.poll_transport import transport_of
from tests.fixtures import Bridge
from tests.test_accounts_polling import (  # noqa: F401 - collected here again
    test_a_429_pauses_its_account_only_and_the_other_is_polled_on_time,
    two_accounts,
)
from tests.test_poll_isolation_due import (  # noqa: F401 - collected here again
    test_a_stop_during_the_wait_sends_nothing_and_gives_the_claim_back,
    test_an_early_claim_sends_its_request_at_the_due_time,
)
from tests.test_poll_isolation_pipeline import (  # noqa: F401 - collected here again
    test_a_held_asset_does_not_delay_the_rest_of_its_batch,
)
from tests.test_poll_pacing import (  # noqa: F401 - collected here again
    test_one_tick_polls_batch_after_batch_while_they_come_full,
    test_requests_in_flight_never_exceed_the_configured_concurrency,
    test_the_request_rate_is_capped,
)


@pytest.fixture
def bridge_overrides(request):
    """The child sends the requests; 3 in flight (what the pacing tests count on)."""
    return {
        "BRIDGE_POLL_TRANSPORT": "process",
        "BRIDGE_POLL_CONCURRENCY": "3",
        **getattr(request, "param", {}),
    }


@pytest.fixture(autouse=True)
def _child_started_with_the_bridge(monkeypatch):
    """The bridge's poll process starts with it, as a worker's starts with the worker (the tests
    time their ticks; a child's start is not part of any tick)."""
    made = Bridge.__init__

    def init(self, *args, **kwargs):
        made(self, *args, **kwargs)
        transport_of(self.runtime).start()

    monkeypatch.setattr(Bridge, "__init__", init)


def child_pid(bridge) -> int:
    pid = transport_of(bridge.runtime).child_pid  # type: ignore[attr-defined]
    assert pid is not None
    assert pid != os.getpid()
    return pid


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def leases(bridge) -> list[str | None]:
    with bridge.db():
        return list(db.session.scalars(select(Asset.lease_owner).order_by(Asset.asset_id)))


def test_the_child_polls_and_the_worker_applies_and_counts(bridge):
    for n in range(4):
        bridge.set_status(f"p{n}", "ANALYZING", message="step 1")
    watches = [bridge.register(f"p{n}")["id"] for n in range(4)]
    report = bridge.tick()
    assert (report.claimed, report.polled, report.requests) == (4, 4, 4)
    pid = child_pid(bridge)
    assert [bridge.watch(w)["status"] for w in watches] == ["ANALYZING"] * 4
    bridge.set_status("p0", "ANALYZE_COMPLETED", index_id=11)
    report = bridge.tick(advance=10)
    assert report.polled == 4
    assert bridge.watch(watches[0])["state"] == "completed"
    assert [e["type"] for e in bridge.events(watches[0])][-1] == "analysis.completed"
    counters = bridge.runtime.counters.snapshot()
    # Counted by the worker from what the child reported: every request, its duration and when
    # each claim's first request went out.
    assert counters["polls"] == {"status": 8}
    assert counters["poll_duration"]["count"] == 8
    assert counters["poll_earliness"]["count"] == 8
    assert child_pid(bridge) == pid  # one child for every tick


def test_a_child_killed_mid_batch_gives_its_claims_back_and_the_next_tick_starts_another(
    bridge, wait_until
):
    for n in range(3):
        bridge.set_status(f"k{n}", "ANALYZING")
        bridge.register(f"k{n}")
    bridge.tick()
    first = child_pid(bridge)
    bridge.fault(kind="hold", count=None, timeout_seconds=30)
    with ThreadPoolExecutor(1) as pool:
        tick = pool.submit(bridge.tick, 10)
        wait_until(
            lambda: bridge.control.get("/stats").json()["held"] == 3, message="requests held"
        )
        os.kill(first, signal.SIGKILL)
        report = tick.result(timeout=10)
    bridge.control.post("/release")
    bridge.control.delete("/faults").raise_for_status()
    assert (report.claimed, report.polled) == (3, 0)
    assert leases(bridge) == [None, None, None]  # given back, not left to expire
    report = bridge.tick()
    assert report.polled == 3
    assert child_pid(bridge) != first


def test_a_halt_reaches_the_child_and_its_waiting_requests_are_not_sent(bridge, wait_until):
    bridge.set_status("h1", "ANALYZING")
    config = ChildConfig(bridge.runtime.client.base_url, bridge.runtime.client.accounts, 3, 100.0)
    transport = ProcessTransport(config)
    try:
        transport.start()
        now = bridge.clock.now
        # Due in 2 s: the child waits for the due time, then would send.
        claims = [
            ClaimedAsset(
                n, "ws", "1", "h1", "index", 1.0, "ANALYZING", now + timedelta(seconds=2), "t", now
            )
            for n in range(3)
        ]
        started = time.monotonic()
        reported: list = []
        halt = Halt()
        done = transport.submit(
            claims, BatchTiming(now, started, started + 60), halt, lambda c, ch: reported.append(ch)
        )
        requests = bridge.upstream_requests()
        halt.set()
        done.result(timeout=5)
        assert time.monotonic() - started < 1.5  # the halt ended it, not the due time
        assert reported == [None, None, None]
        assert bridge.upstream_requests() == requests
    finally:
        transport.close()


def test_closing_the_runtime_ends_the_child(bridge):
    bridge.set_status("c1", "ANALYZING")
    bridge.register("c1")
    bridge.tick()
    pid = child_pid(bridge)
    bridge.runtime.close()
    assert not alive(pid)  # joined by close: not even a zombie left


EXITS_WITHOUT_CLOSE = """
from app.upstream.accounts import Accounts
from app.worker.poll_process import ChildConfig, ProcessTransport

if __name__ == "__main__":
    transport = ProcessTransport(ChildConfig("http://127.0.0.1:9", Accounts.single("a", "b"), 2, 1.0))
    transport.start()
    print(transport.child_pid, flush=True)
"""


def test_a_worker_that_never_closes_its_transport_still_exits_and_ends_the_child(tmp_path):
    """multiprocessing's own exit handler would SIGTERM the child (which ignores it) and wait for it
    forever; the transport's handler runs first and ends it."""
    script = tmp_path / "exits.py"
    script.write_text(EXITS_WITHOUT_CLOSE)
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[0])
    assert not alive(pid)
