"""Notifications through the real processes: gunicorn (``web``) registers, ``mi-bridge worker`` polls
and delivers, PostgreSQL holds the outbox. A worker killed while its webhook request is held open
leaves the delivery to the next worker, which sends the same event again (same ``webhook-id``).
"""

from __future__ import annotations

import signal
import time

import pytest
from standardwebhooks import Webhook

from tests.processes import Api, Processes, answers, bridge_env, free_port
from tests.receiver import Answer, Received

pytestmark = pytest.mark.slow


def _body(asset_id: str, hook: str) -> dict:
    return {
        "workspace": "ws", "project_id": "1", "asset_id": asset_id, "api": "index",
        "targets": [{"type": "webhook", "url": hook}],
    }  # fmt: skip


def _with_id(receiver, event_id: str) -> list[Received]:
    return [r for r in list(receiver.requests) if r.headers.get("webhook-id") == event_id]


def _polled_then_completed(api: Api, sim_control, watch: dict, index_id: int, wait_until) -> None:
    """Wait for the first poll (status ANALYZING), then let the asset complete."""
    wait_until(lambda: api.watch(watch["id"])["poll_count"] >= 1, timeout=15, message="first poll")
    pin = {"status": "ANALYZE_COMPLETED", "index_id": index_id}
    assert sim_control.put(f"/assets/ws/1/{watch['asset_id']}", json=pin).status_code == 200


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_completed_webhook_once_and_redelivered_after_sigkill(
    tmp_path, postgres_url, simulator, sim_control, receiver, wait_until
):
    """One signed ``analysis.completed``; after kill -9 mid-request, the same event id again."""
    port = free_port()
    env = bridge_env(
        postgres_url, simulator.url, PORT=str(port), WEB_CONCURRENCY="2",
        BRIDGE_LEASE_SECONDS="2", BRIDGE_RETRY_SCHEDULE="1",
    )  # fmt: skip
    for asset_id in ("n1", "n2"):
        pin = {"status": "ANALYZING"}
        assert sim_control.put(f"/assets/ws/1/{asset_id}", json=pin).status_code == 201
    api = Api(f"http://127.0.0.1:{port}")
    procs = Processes(tmp_path)
    try:
        procs.web("web", env, port)
        procs.worker("worker-1", env)
        wait_until(lambda: answers(f"{api.base_url}/healthz"), timeout=30, message="web serves")

        # 1. One watch, one signed webhook.
        first = api.register(_body("n1", f"{receiver.url}/hooks/first"))
        secret = first["targets"][0]["secret"]  # generated, shown once
        assert secret.startswith("whsec_")
        _polled_then_completed(api, sim_control, first, 4242, wait_until)
        wait_until(
            lambda: [d["state"] for d in api.watch(first["id"])["deliveries"]] == ["succeeded"],
            timeout=15,
            message="the first delivery succeeded",
        )
        [delivered] = receiver.requests
        payload = Webhook(secret).verify(delivered.body, delivered.headers)
        [first_delivery] = api.watch(first["id"])["deliveries"]

        # 2. A second watch: its webhook request is held open while the worker is killed.
        receiver.answer(Answer(hold=True))
        second = api.register(_body("n2", f"{receiver.url}/hooks/second"))
        second_secret = second["targets"][0]["secret"]
        _polled_then_completed(api, sim_control, second, 4343, wait_until)
        wait_until(receiver.holding.is_set, timeout=15, message="the webhook request is held")
        assert procs.stop("worker-1", signal.SIGKILL, timeout=10) == -signal.SIGKILL
        killed_at = time.monotonic()
        receiver.release()  # the killed worker's request ends (its connection is gone)
        procs.worker("worker-2", env)
        wait_until(
            lambda: [d["state"] for d in api.watch(second["id"])["deliveries"]] == ["succeeded"],
            timeout=20,
            message="worker-2 delivered the second event",
        )
        redelivered_after = time.monotonic() - killed_at
        [second_delivery] = api.watch(second["id"])["deliveries"]
        second_watch = api.watch(second["id"])
        assert procs.stop("worker-2") == 0
        assert procs.stop("web") == 0
    finally:
        receiver.release()
        procs.stop_all()
        api.close()

    second_requests = _with_id(receiver, second_delivery["event_id"])
    print(
        f"\nwebhooks: first event {first_delivery['event_id']} received"
        f" {len(_with_id(receiver, first_delivery['event_id']))} time(s); second event received"
        f" {len(second_requests)} times, redelivered and succeeded {redelivered_after:.1f} s"
        f" after the SIGKILL (lease 2 s); attempts recorded {second_delivery['attempts']}"
    )
    # The first watch: exactly one completed event, signed, with the index id, never sent again.
    assert delivered.path == "/hooks/first"
    assert payload["type"] == "analysis.completed"
    assert payload["id"] == delivered.headers["webhook-id"] == first_delivery["event_id"]
    assert payload["data"]["watch"]["id"] == first["id"]
    assert payload["data"]["analysis"]["status"] == "ANALYZE_COMPLETED"
    assert payload["data"]["analysis"]["index_id"] == 4242
    assert len(_with_id(receiver, first_delivery["event_id"])) == 1
    assert [a["status_code"] for a in first_delivery["attempts"]] == [200]
    # The second: the held request and the redelivery carry the same event, bytes and id.
    assert second_watch["state"] == "completed"
    assert len(second_requests) == 2
    held, again = second_requests
    assert held.body == again.body
    assert held.headers["webhook-timestamp"] <= again.headers["webhook-timestamp"]
    for request in (held, again):
        assert request.path == "/hooks/second"
        verified = Webhook(second_secret).verify(request.body, request.headers)
        assert verified["type"] == "analysis.completed"
        assert verified["data"]["analysis"]["index_id"] == 4343
    assert second_delivery["state"] == "succeeded"
    # The killed worker never recorded its attempt; worker-2's is the one on record.
    assert [a["status_code"] for a in second_delivery["attempts"]] == [200]
    assert len(receiver.requests) == 3
