"""``BRIDGE_EMBEDDED_WORKER``: gunicorn alone, two worker processes, each with its own scheduler
started after the fork, on PostgreSQL and with no ``mi-bridge worker`` beside it.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select

from app.db import db
from app.models import WorkerHeartbeat
from tests.processes import AUTH, Processes, answers, bridge_env, child_pids, free_port

pytestmark = pytest.mark.slow

WATCHES = 30


def _heartbeats(app) -> list[WorkerHeartbeat]:
    with app.app_context():
        beats = db.session.scalars(select(WorkerHeartbeat)).all()
        db.session.expunge_all()
        return list(beats)


def _polls(beat: WorkerHeartbeat) -> int:
    return sum((beat.counters or {}).get("polls", {}).values())


def _register(base: str, asset_id: str, hook: str) -> str:
    body = {
        "workspace": "ws", "project_id": "1", "asset_id": asset_id, "api": "index",
        "targets": [{"type": "webhook", "url": hook}],
    }  # fmt: skip
    response = requests.post(f"{base}/api/v1/watches", json=body, headers=AUTH, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _polled(sim_control, prefix: str) -> int:
    """How many of the simulator's assets named ``prefix...`` were asked for at least once."""
    assets = sim_control.get("/assets").json()["assets"]
    return sum(1 for a in assets if a["asset_id"].startswith(prefix) and a["requests"] > 0)


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_gunicorn_with_embedded_workers_completes_30_watches(
    tmp_path, pg_app, postgres_url, simulator, sim_control, receiver, wait_until
):
    """30 watches end over HTTP alone; both gunicorn workers poll; one request per asset at a time.

    Which scheduler claims a due asset depends on the phase of their 1 s ticks, so a scheduler whose
    tick always comes second could, by chance, poll nothing. To see both poll, one scheduler's tick
    is first held on one asset's request: the other one must then take the 30 watches (the held one
    counts its request once released), and afterwards both share the polls as they come.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hook = f"{receiver.url}/in"
    env = bridge_env(
        postgres_url, simulator.url, PORT=str(port), WEB_CONCURRENCY="2",
        BRIDGE_EMBEDDED_WORKER="true", BRIDGE_LEASE_SECONDS="20",
    )  # fmt: skip
    assets = {"h0": 4999, **{f"e{n:02d}": 5000 + n for n in range(WATCHES)}}

    def analysis_starts(asset_id: str) -> None:
        """A few seconds of WAIT_ANALYZE and ANALYZING from now, then ANALYZE_COMPLETED."""
        n = assets[asset_id] - 4999
        schedule = {
            "wait_seconds": 0.5 + n % 3 * 0.5, "analyze_seconds": 1 + n % 5 * 0.5,
            "outcome": "ANALYZE_COMPLETED", "index_id": assets[asset_id],
        }  # fmt: skip
        assert sim_control.put(f"/assets/ws/1/{asset_id}", json=schedule).status_code == 201

    analysis_starts("h0")
    hold = {"kind": "hold", "asset_id": "h0", "timeout_seconds": 30}
    assert sim_control.post("/faults", json=hold).status_code == 201
    procs = Processes(tmp_path)
    try:
        web = procs.web("web", env, port)
        wait_until(lambda: answers(f"{base}/healthz"), timeout=30, message="gunicorn serves")
        wait_until(lambda: len(_heartbeats(pg_app)) == 2, timeout=15, message="two schedulers")
        watch_ids = [_register(base, "h0", hook)]
        wait_until(lambda: sim_control.get("/stats").json()["held"] == 1, timeout=10)
        started = time.monotonic()
        for asset_id in list(assets)[1:]:
            analysis_starts(asset_id)
        with ThreadPoolExecutor(6) as pool:
            watch_ids += pool.map(lambda a: _register(base, a, hook), list(assets)[1:])
        wait_until(
            lambda: _polled(sim_control, "e") == WATCHES,
            timeout=10,
            message="the free scheduler polled the 30 watches while the other one was held",
        )
        assert sim_control.post("/release").json() == {"released": 1}

        def watching() -> list:
            response = requests.get(
                f"{base}/api/v1/watches", params={"state": "watching", "limit": 1},
                headers=AUTH, timeout=10,
            )  # fmt: skip
            assert response.status_code == 200, response.text
            return response.json()["items"]

        wait_until(lambda: watching() == [], timeout=40, message="every watch ended")
        ended = time.monotonic() - started
        gunicorn_workers = child_pids(web.pid)
        # Each scheduler writes its heartbeat every 5 s: wait for one showing its polls.
        wait_until(
            lambda: sum(1 for b in _heartbeats(pg_app) if _polls(b) > 0) == 2,
            timeout=15,
            message="both embedded schedulers' heartbeats show polls",
        )
        during = {b.pid: _polls(b) for b in _heartbeats(pg_app)}
        sent = time.monotonic()
        code = procs.stop("web", timeout=35)
        stop_took = time.monotonic() - sent
    finally:
        sim_control.post("/release")
        procs.stop_all()

    beats = _heartbeats(pg_app)
    stats = sim_control.get("/stats").json()
    after = {b.pid: _polls(b) for b in beats}
    print(
        f"\nembedded x2: {WATCHES + 1} watches ended {ended:.1f} s after registration; polls per"
        f" gunicorn worker before SIGTERM {during}, after {after};"
        f" upstream requests {stats['requests']}; SIGTERM -> exit {code} in {stop_took:.1f} s"
    )
    assert code == 0
    assert stop_took < 30
    assert Counter(b.kind for b in beats) == {"embedded": 2}
    assert {b.pid for b in beats} == gunicorn_workers  # one per gunicorn worker process
    assert all(polls > 0 for polls in during.values()), during
    assert stats["max_in_flight_per_asset"] == 1
    # The last heartbeats (written as each gunicorn worker exits) count every request made.
    assert sum(_polls(b) for b in beats) == stats["requests"]
    assert len(set(watch_ids)) == WATCHES + 1
    with pg_app.test_client() as client:
        for watch_id in watch_ids:
            watch = client.get(f"/api/v1/watches/{watch_id}", headers=AUTH).json
            assert (watch["state"], watch["status"]) == ("completed", "ANALYZE_COMPLETED")
            assert watch["index_id"] == assets[watch["asset_id"]]
