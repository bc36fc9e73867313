"""One bad receiver stays its own problem: sends bounded in time and bytes, values that cannot be stored
contained to their delivery, receiver-given waits bounded, Slack transport errors retried."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests

from app.notify import webhook
from app.notify.context import NotifierContext
from app.notify.results import EventSnapshot, TargetSnapshot
from app.outbound.deadline import deadline
from app.outbound.http import operator_session
from app.services import services
from tests.receiver import Answer, Receiver
from tests.test_delivery_webhooks import complete, watch_with_receiver

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class HostileServer:
    """A raw TCP server on 127.0.0.1 that answers every connection with ``behave(conn)``; counts bytes."""

    def __init__(self, behave) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.behave = behave
        self.sent = 0
        self.requests = 0
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        self.requests += 1
        with conn:
            conn.recv(65536)
            try:
                self.behave(self, conn)
            except OSError:
                self.closed.set()  # the bridge cut the connection

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def stop(self) -> None:
        self.sock.close()


def drip(server: HostileServer, conn: socket.socket) -> None:
    """One byte every 0.2 s, never finishing: each read succeeds, so no read timeout ever fires."""
    pace = threading.Event()  # never set: its wait is the pace of this connection alone
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000:
        server.send(conn, bytes([byte]))
        pace.wait(0.2)


def huge(server: HostileServer, conn: socket.socket) -> None:
    """A 300 MB answer, made as it is sent (never held in memory)."""
    size = 300 * 1024 * 1024
    server.send(conn, f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
    chunk = b"y" * 65536
    for _ in range(size // len(chunk)):
        server.send(conn, chunk)


@pytest.fixture
def hostile():
    servers = []

    def make(behave) -> HostileServer:
        servers.append(HostileServer(behave))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def _send(url: str, budget: float | None = None):
    event = EventSnapshot("evt_1", "analysis.completed", '{"id": "evt_1"}', datetime.now(UTC))
    target = TargetSnapshot("tgt_1", "webhook", url, None, SECRET, False)
    return webhook.send(NotifierContext(http=operator_session(), budget=budget), event, target)


def test_a_dripping_receiver_is_cut_at_the_deadline(hostile):
    server = hostile(drip)
    started = time.monotonic()
    result = _send(server.url, budget=1.0)
    elapsed = time.monotonic() - started
    assert result.outcome.value == "retry"
    assert result.error == f"timed out after 1 s ({urlsplit(server.url).netloc})"
    assert result.error_detail.startswith("no complete answer within 1 s")
    assert 0.9 <= elapsed < 3.0
    assert server.closed.wait(5)  # the bridge's side of the connection is gone


def test_a_huge_answer_is_read_a_few_kilobytes_then_dropped(hostile):
    server = hostile(huge)
    result = _send(server.url)
    assert result.outcome.value == "succeeded"
    assert result.excerpt == "y" * webhook.EXCERPT_CHARS
    assert server.closed.wait(10)
    assert server.sent < 64 * 1024 * 1024  # socket buffers at most, never the 300 MB


def test_a_deadline_cuts_only_its_own_thread_s_connections(hostile):
    server = hostile(drip)
    other = {}

    def elsewhere() -> None:
        other["result"] = _send(server.url, budget=2.5)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    with deadline(0.5) as bound, pytest.raises(requests.RequestException):
        operator_session().post(server.url, data=b"{}", timeout=5)
    assert bound.expired
    thread.join(10)
    assert other["result"].error == f"timed out after 2.5 s ({urlsplit(server.url).netloc})"


def _send_http(url: str, budget: float | None = None):
    from app.notify import http_target
    from app.notify.samples import sample_envelope

    body = json.dumps(sample_envelope("analysis.completed"))
    event = EventSnapshot("evt_1", "analysis.completed", body, datetime.now(UTC))
    target = TargetSnapshot("tgt_1", "http", url, None, None, False, method="PUT",
                            headers=(), body='{"text": "{{ event.id }}"}')  # fmt: skip
    return http_target.send(NotifierContext(http=operator_session(), budget=budget), event, target)


def test_an_http_target_meets_the_same_deadline_and_size_bounds(hostile):
    dripping = hostile(drip)
    started = time.monotonic()
    result = _send_http(dripping.url, budget=1.0)
    assert result.outcome.value == "retry"
    assert result.error == f"timed out after 1 s ({urlsplit(dripping.url).netloc})"
    assert time.monotonic() - started < 3.0
    assert dripping.closed.wait(5)
    flooding = hostile(huge)
    assert _send_http(flooding.url).outcome.value == "succeeded"
    assert flooding.closed.wait(10)
    assert flooding.sent < 64 * 1024 * 1024


@pytest.fixture
def bridge_overrides():
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true", "BRIDGE_RETRY_SCHEDULE": "1,2,4"}


def _attempts(bridge, watch_id):
    [delivery] = bridge.watch(watch_id)["deliveries"]
    return delivery


@pytest.mark.parametrize("retry_after", ["inf", "1e300", "NaN", "soon"])
def test_an_endless_retry_after_waits_one_hour_and_keeps_the_batch(
    bridge, receiver, deliver, retry_after
):
    poison = Receiver().start()
    poison.default = Answer(503, headers={"Retry-After": retry_after})
    bystander = watch_with_receiver(bridge, receiver, asset_id="b1")
    targets = [{"type": "webhook", "url": poison.url + "/hook"}]
    watch = watch_with_receiver(bridge, poison, asset_id="a1", targets=targets)
    _complete_both(bridge)
    deliver()
    poison.stop()
    poisoned = _attempts(bridge, watch["id"])
    assert poisoned["state"] == "pending"
    assert poisoned["attempt_count"] == 0  # a long wait the receiver asked for costs no attempt
    wait = datetime.fromisoformat(poisoned["next_attempt_at"]) - bridge.clock()
    assert 3590 <= wait.total_seconds() <= 3600
    assert _attempts(bridge, bystander["id"])["state"] == "succeeded"


def test_retry_after_zero_spends_an_attempt_and_ends_dead(bridge, receiver, deliver):
    watch = watch_with_receiver(bridge, receiver)
    receiver.default = Answer(503, headers={"Retry-After": "0"})
    complete(bridge)
    for _ in range(10):
        deliver(advance=5)
    delivery = _attempts(bridge, watch["id"])
    assert delivery["state"] == "dead"
    assert delivery["attempt_count"] == 4  # the first try and the schedule's three
    assert len(receiver.requests) == 4


def test_a_nul_in_the_answer_is_stored_without_it(bridge, receiver, deliver):
    watch = watch_with_receiver(bridge, receiver)
    receiver.answer(Answer(200, body=b"ok\x00then more"))
    complete(bridge)
    deliver()
    delivery = _attempts(bridge, watch["id"])
    assert delivery["state"] == "succeeded"
    assert delivery["attempts"][0]["status_code"] == 200


def test_slack_unreachable_is_a_retry_of_that_delivery(bridge, receiver, deliver):
    # The fixture's Slack API URL points nowhere when no fake Slack runs: connection refused.
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    services(bridge.app).notifier.slack = _slack_client(port)
    bystander = watch_with_receiver(bridge, receiver, asset_id="b1")
    bridge.set_status("a1", "ANALYZING")
    watch = bridge.register("a1", targets=[{"type": "slack", "channel": "C0GENERAL"}])
    bridge.tick()
    _complete_both(bridge)
    deliver()
    delivery = _attempts(bridge, watch["id"])
    assert delivery["state"] == "pending"
    assert delivery["attempt_count"] == 1
    assert delivery["attempts"][0]["error"] == f"Slack API: connection refused (127.0.0.1:{port})"
    assert "[Errno 111]" in delivery["attempts"][0]["error_detail"]
    assert _attempts(bridge, bystander["id"])["state"] == "succeeded"


def _complete_both(bridge) -> None:
    for asset_id in ("a1", "b1"):
        bridge.set_status(asset_id, "ANALYZE_COMPLETED", index_id=1)
    bridge.tick(advance=9)  # past the 8 s cap: both are due


def _slack_client(port: int):
    from app.notify.slack import make_client

    return make_client("xoxb-test", f"http://127.0.0.1:{port}/api/")
