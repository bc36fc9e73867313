"""The connect-time address guard against every disguise of a private address, at send time.

Each name is public when the watch is registered and rebound (the ``resolver`` fixture's table)
before the notification goes out. The app here connects through that table directly (not the
conftest's loopback-only wrapper, which would refuse these names before the guard saw them), so a
Python audit hook watches every ``socket.connect`` of the test: it records the attempt and blocks
anything off loopback, so a guard failure shows up as a recorded attempt, never as traffic.
"""

from __future__ import annotations

import ipaddress
import sys
import threading

import pytest

from tests.fixtures import Bridge, build_app, simulator_config

_watching = threading.Event()  # process-wide: deliveries may run on worker threads
_attempts: list[str] = []


def _audit(event: str, args: tuple) -> None:
    if event != "socket.connect" or not _watching.is_set():
        return
    address = args[1]
    host = address[0] if isinstance(address, tuple) else str(address)
    _attempts.append(host)
    try:
        loopback = ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise PermissionError(f"test refused a connection to {host}")


sys.addaudithook(_audit)  # hooks cannot be removed; it acts only while a test switches it on


@pytest.fixture
def connections():
    """Every ``socket.connect`` during the test (non-loopback ones are blocked)."""
    _attempts.clear()
    _watching.set()
    yield _attempts
    _watching.clear()


@pytest.fixture
def rebinding_bridge(tmp_path, resolver, clock, simulator, sim_control):
    """The conftest ``bridge``, except that notifications connect through ``resolver`` itself."""
    app = build_app(
        f"sqlite:///{tmp_path}/bridge.db",
        resolver=resolver,
        clock=clock,
        connect_resolver=resolver,
        **simulator_config(simulator.url),
        BRIDGE_RETRY_SCHEDULE="1",
    )
    bridge = Bridge(app, clock, simulator, sim_control)
    yield bridge
    bridge.runtime.close()


DISGUISES = {
    "ipv4-mapped loopback": ("::ffff:127.0.0.1", "loopback"),
    "ipv4-mapped metadata": ("::ffff:169.254.169.254", "link-local"),
    "nat64 loopback": ("64:ff9b::7f00:1", "loopback"),
    "nat64 private": ("64:ff9b::a00:1", "private"),
    "nat64 local-use metadata": ("64:ff9b:1::a9fe:a9fe", "link-local"),
    "6to4 loopback": ("2002:7f00:1::", "loopback"),
    "6to4 private": ("2002:c0a8:101::1", "private"),
    "cgnat": ("100.64.0.1", "carrier-grade NAT"),
    "cgnat top": ("100.127.255.254", "carrier-grade NAT"),
    "cloud metadata": ("169.254.169.254", "link-local"),
    "ipv6 link-local": ("fe80::1", "link-local"),
    "unspecified": ("0.0.0.0", "private"),  # noqa: S104  (Python counts 0/8 as private)
}


@pytest.mark.parametrize(("address", "reason"), DISGUISES.values(), ids=DISGUISES.keys())
def test_a_name_rebound_after_registration_is_refused_without_connecting(
    rebinding_bridge, resolver, connections, address, reason
):
    from app.worker.delivery import deliver_once

    bridge = rebinding_bridge
    resolver.table["rebind.example.test"] = ["93.184.216.34"]  # public at registration
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=1)
    watch = bridge.register(
        "a1",
        targets=[
            {"type": "webhook", "url": "http://rebind.example.test:8080/hook"},
            {"type": "slack_webhook", "url": "https://rebind.example.test/services/T/B/X"},
        ],
    )
    resolver.table["rebind.example.test"] = [address]  # ...and something else when sending
    bridge.tick()
    upstream = list(connections)  # the poll of the simulator (127.0.0.1)
    assert upstream, "the audit hook saw no connection at all"
    deliver_once(bridge.runtime)
    assert connections == upstream, f"a connection was attempted: {connections[len(upstream) :]}"
    deliveries = bridge.watch(watch["id"])["deliveries"]
    assert len(deliveries) == 2
    for delivery in deliveries:
        assert delivery["state"] == "failed", delivery
        assert reason in delivery["attempts"][0]["error"], delivery
