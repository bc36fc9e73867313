"""A test send to a receiver that holds the request for 15 s delays nobody: it holds no transaction or
lock while it waits, so another watch's poll-to-delivery runs at its normal pace, and the test call
returns at the send deadline with every send thread ended. Real processes: gunicorn and a worker."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import pytest

from tests.processes import Api, Processes, answers, bridge_env, free_port, run_db_upgrade
from tests.receiver import Answer, Receiver

pytestmark = pytest.mark.slow

#: A delivery normally follows its poll within about a second (README); generous on a shared machine.
NORMAL_POLL_TO_DELIVERY = 5.0


def _body(asset_id: str, url: str) -> dict:
    return {
        "workspace": "ws", "project_id": "1", "asset_id": asset_id, "api": "index",
        "targets": [{"type": "webhook", "url": url}],
    }  # fmt: skip


def _run(tmp_path, database_url, simulator, sim_control, receiver, wait_until) -> None:
    port = free_port()
    env = bridge_env(database_url, simulator.url, PORT=str(port), WEB_CONCURRENCY="2")
    run_db_upgrade(env, tmp_path)
    holder = Receiver().start()
    holder.default = Answer(hold=True)  # held until released: far past the 15 s deadline
    api = Api(f"http://127.0.0.1:{port}")
    procs = Processes(tmp_path)
    try:
        procs.web("web", env, port)
        procs.worker("worker", env)
        wait_until(lambda: answers(f"{api.base_url}/healthz"), timeout=30, message="web serves")
        for asset_id in ("held", "bystander"):
            pin = {"status": "ANALYZING"}
            assert sim_control.put(f"/assets/ws/1/{asset_id}", json=pin).status_code == 201
        held = api.register(_body("held", holder.url + "/hook"))
        bystander = api.register(_body("bystander", receiver.url + "/hook"))
        wait_until(lambda: api.watch(bystander["id"])["poll_count"] >= 1, timeout=15)

        answer: dict = {}

        def test_send() -> None:
            started = time.monotonic()
            answer["response"] = api.http.post(
                f"{api.base_url}/api/v1/watches/{held['id']}/test", timeout=60
            )
            answer["seconds"] = time.monotonic() - started

        caller = threading.Thread(target=test_send)
        caller.start()
        wait_until(holder.holding.is_set, timeout=15, message="the test request is held")
        pin = {"status": "ANALYZE_COMPLETED", "index_id": 7}
        completed_at = time.monotonic()
        assert sim_control.put("/assets/ws/1/bystander", json=pin).status_code == 200
        wait_until(lambda: receiver.requests, timeout=14, message="the bystander's delivery")
        poll_to_delivery = time.monotonic() - completed_at
        assert caller.is_alive()  # the test send is still held while the bystander is served
        assert poll_to_delivery < NORMAL_POLL_TO_DELIVERY

        caller.join(40)
        response = answer["response"]
        assert response.status_code == 200, response.text
        [result] = response.json()["results"]
        assert result["ok"] is False
        assert result["error"] == f"timed out after 15 s ({urlsplit(holder.url).netloc})"
        assert result["error_detail"].startswith("no complete answer within 15 s")
        assert 14.5 <= answer["seconds"] < 19
        assert len(receiver.requests) == 1
        [delivery] = api.watch(held["id"])["deliveries"]
        assert delivery["state"] == "failed"
        assert len(delivery["attempts"]) == 1
    finally:
        holder.release()
        procs.stop_all()
        holder.stop()
        api.close()


@pytest.mark.timeout(120)
def test_held_test_send_delays_no_other_watch_on_sqlite(
    tmp_path, simulator, sim_control, receiver, wait_until
):
    _run(tmp_path, f"sqlite:///{tmp_path}/bridge.db", simulator, sim_control, receiver, wait_until)


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_held_test_send_delays_no_other_watch_on_postgres(
    tmp_path, postgres_url, simulator, sim_control, receiver, wait_until
):
    _run(tmp_path, postgres_url, simulator, sim_control, receiver, wait_until)
