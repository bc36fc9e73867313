"""Exactly one import under a SIGKILL of the worker right after its import call (issue 23), with
real ``mi-bridge worker`` processes on PostgreSQL against the simulator.

How the crash window is forced: a ``slow`` fault on the simulator's ``import`` endpoint makes the
simulator wait before it carries out the import (``faulted`` runs before ``start_import``). The
fault rule's ``matched`` count turns 1 when the worker's POST arrives, which is after the worker
committed ``calling_since``; the test SIGKILLs the worker then. The simulator's handler thread does
not notice that the client is gone: it carries the import out when its delay ends (the test waits
for ``GET /_sim/imports`` to list it) and fails only to write the answer. At that moment the
database holds ``calling_since`` and no asset id: NCP imported, the bridge does not know. A new
worker, started only then, must find the asset by its object key and adopt it instead of importing
again.

The second case retries the registration with the same ``Idempotency-Key`` inside that window (the
client, too, is unsure whether its POST went through): still one watch, one workflow, one import.

Two more cases were found importing twice, and are fixed: the same crash in a project that
already has 100 assets (the lookup once read the first page of the asset list only; it pages now),
and two live workers with a lease shorter than the import call (the second worker once took the
workflow over while the first one's call was still in flight; a workflow's lease now covers each
call it makes).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from app.db import db
from app.models import Workflow
from tests.fixtures import AUTH
from tests.processes import Processes, bridge_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BUCKET, KEY = "media-in", "videos/crash-01.mp4"
#: Seconds the simulator waits, with the import request in hand, before carrying it out: long
#: enough to SIGKILL the worker first (the worker's own budget for the call is 10 s).
IMPORT_DELAY = 3.0
#: Short timings: workflow steps a second apart, and the killed worker's lease long gone by the
#: time the import is carried out (the lease is taken just before the call).
TIMINGS = {
    "BRIDGE_POLL_INTERVAL": "1",
    "BRIDGE_POLL_MAX_INTERVAL": "1",
    "BRIDGE_LEASE_SECONDS": "2",
}


def fault_rule(sim_control, **spec: Any) -> str:
    response = sim_control.post("/faults", json=spec)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def matched(sim_control, rule_id: str) -> int:
    (rule,) = [r for r in sim_control.get("/faults").json()["faults"] if r["id"] == rule_id]
    return rule["matched"]


def imports(sim_control) -> list[dict[str, Any]]:
    return sim_control.get("/imports").json()["imports"]


def watch_of(client, watch_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/watches/{watch_id}", headers=AUTH)
    assert response.status_code == 200, response.json
    return response.json


def crash_window(pg_app, watch_id: str) -> tuple[Any, Any]:
    """(calling_since, imported_asset_id) of the watch's workflow as the database holds them."""
    with pg_app.app_context():
        workflow = db.session.scalars(select(Workflow).where(Workflow.watch_id == watch_id)).one()
        window = workflow.calling_since, workflow.imported_asset_id
        db.session.rollback()
        return window


def declare_object(sim_control, crowd: int) -> None:
    """The object to import (1 s), what analysing it does, and ``crowd`` assets listed before it."""
    for n in range(crowd):
        assert sim_control.put(f"/assets/ws/1/old-{n:03d}", json={"status": "ANALYZE_COMPLETED"}).ok
    declared = sim_control.put(f"/objects/{BUCKET}/{KEY}", json={
        "import_seconds": 1,
        "analysis": {"wait_seconds": 0, "analyze_seconds": 1, "outcome": "ANALYZE_COMPLETED",
                     "index_id": 42}})  # fmt: skip
    assert declared.status_code == 201, declared.text


def kill_during_import(
    procs, env, sim_control, wait_until, retry: Callable[[], None] | None
) -> str:
    """Start worker-1, SIGKILL it once its import request is in the simulator's hands (then
    ``retry`` the registration, if given), and wait for the import: the asset id NCP made."""
    slow_import = fault_rule(
        sim_control, kind="slow", delay_seconds=IMPORT_DELAY, endpoint="import", count=1
    )
    procs.worker("worker-1", env)
    wait_until(lambda: matched(sim_control, slow_import) == 1, timeout=30,
               message="worker-1's import request reached the simulator")  # fmt: skip
    assert procs.stop("worker-1", signal.SIGKILL) == -signal.SIGKILL
    if retry is not None:  # the client retries too, unsure whether its registration went through
        retry()
    assert imports(sim_control) == []  # killed before the simulator carried the import out
    # NCP carries the import out although nobody waits for its answer any more ...
    (carried_out,) = wait_until(lambda: imports(sim_control), timeout=IMPORT_DELAY + 10,
                                message="the simulator carried out the import")  # fmt: skip
    return str(carried_out["asset_id"])


def check_events(receiver, watch_id: str, asset_id: str) -> None:
    """Each event once (by webhook-id: delivery is at least once), in order, naming the asset."""
    events: dict[str, dict[str, Any]] = {}
    for request in receiver.requests:
        events.setdefault(request.headers["webhook-id"], json.loads(request.body))
    assert [e["type"] for e in events.values()] == ["asset.imported", "analysis.completed"]
    assert {e["data"]["asset"]["asset_id"] for e in events.values()} == {asset_id}
    assert {e["data"]["watch"]["id"] for e in events.values()} == {watch_id}


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("retried", "crowd"), [
    pytest.param(False, 0, id="one-post"),
    pytest.param(True, 0, id="post-retried"),
    pytest.param(False, 100, id="crowded-project"),  # the import is on page 2 of the list
])  # fmt: skip
def test_a_worker_killed_during_its_import_call_imports_once(
    tmp_path, pg_app, postgres_url, simulator, sim_control, receiver, wait_until, retried, crowd
):
    declare_object(sim_control, crowd)
    # Changes nothing, counts the asset-list requests: the lookups of a lost import.
    lookups = fault_rule(sim_control, kind="slow", delay_seconds=0, endpoint="list", count=None)
    client = pg_app.test_client()
    body = {"workspace": "ws", "project_id": "1", "import": {"bucket_name": BUCKET, "key": KEY},
            "analyze": {"sceneRange": "ALL"},
            "targets": [{"type": "webhook", "url": f"{receiver.url}/in"}],
            "events": ["asset.imported", "analysis.completed"]}  # fmt: skip
    headers = {**AUTH, "Idempotency-Key": f"crash-import-{retried}"}

    def register() -> str:
        response = client.post("/api/v1/watches", json=body, headers=headers)
        assert response.status_code == 201, response.json
        return response.json["id"]

    watch_id = register()

    def retry() -> None:
        assert register() == watch_id  # the first watch again: one watch, one workflow

    procs = Processes(tmp_path)
    env = bridge_env(postgres_url, simulator.url, **TIMINGS)
    try:
        asset_id = kill_during_import(
            procs, env, sim_control, wait_until, retry if retried else None
        )
        # ... and the bridge never learnt of it: the guard is set, the asset id unknown.
        calling_since, imported = crash_window(pg_app, watch_id)
        assert (calling_since is not None, imported) == (True, None)
        assert matched(sim_control, lookups) == 0
        procs.worker("worker-2", env)
        wait_until(lambda: watch_of(client, watch_id)["state"] != "watching", timeout=45,
                   message="the watch ends after worker-2 takes over")  # fmt: skip
        wait_until(lambda: len(receiver.requests) >= 2, timeout=20, message="both events")
        assert procs.stop("worker-2") == 0
    finally:
        procs.stop_all()
    ended = watch_of(client, watch_id)
    assert (ended["state"], ended["stage"], ended["asset_id"]) == ("completed", "done", asset_id)
    assert (ended["index_id"], ended["workflow"]["import"]["status"]) == (42, "COMPLETED")
    assert len(imports(sim_control)) == 1  # exactly one import, after everything
    # worker-2 read the asset list once (one page per 100 assets) and adopted what it found
    assert matched(sim_control, lookups) == 1 + crowd // 100
    assert f"found its import of {KEY} after a lost answer" in procs.output("worker-2")
    work = sim_control.get(f"/assets/ws/1/{asset_id}/workflow").json()
    assert (work["index_requests"], work["last_index_body"]) == (1, {"sceneRange": "ALL"})
    check_events(receiver, watch_id, asset_id)


@pytest.mark.timeout(90)
def test_a_lease_shorter_than_the_import_call_still_imports_once(
    tmp_path, pg_app, postgres_url, simulator, sim_control, receiver, wait_until
):
    """Two live workers, a 2 s lease, an import call answered after 5 s: one import."""
    declared = sim_control.put(f"/objects/{BUCKET}/{KEY}", json={"import_seconds": 1})
    assert declared.status_code == 201, declared.text
    slow_import = fault_rule(sim_control, kind="slow", delay_seconds=5, endpoint="import", count=1)
    client = pg_app.test_client()
    body = {"workspace": "ws", "project_id": "1", "import": {"bucket_name": BUCKET, "key": KEY},
            "targets": [{"type": "webhook", "url": f"{receiver.url}/in"}]}  # fmt: skip
    registered = client.post("/api/v1/watches", json=body, headers=AUTH)
    assert registered.status_code == 201, registered.json
    watch_id = registered.json["id"]
    procs = Processes(tmp_path)
    env = bridge_env(postgres_url, simulator.url, **TIMINGS)
    try:
        procs.worker("worker-1", env)
        procs.worker("worker-2", env)
        wait_until(lambda: matched(sim_control, slow_import) == 1, timeout=30,
                   message="the first import request reached the simulator")  # fmt: skip
        slow_call_done = time.monotonic() + 5 + 1
        wait_until(lambda: watch_of(client, watch_id)["state"] != "watching", timeout=45,
                   message="the watch ends")  # fmt: skip
        # The slow call's import is carried out when its delay ends, whoever still waits for it.
        wait_until(lambda: len(imports(sim_control)) > 1 or time.monotonic() > slow_call_done,
                   timeout=15, message="the slow import call is over")  # fmt: skip
        assert procs.stop("worker-1") == 0
        assert procs.stop("worker-2") == 0
    finally:
        procs.stop_all()
    ended = watch_of(client, watch_id)
    assert ended["state"] == "completed"
    carried_out = imports(sim_control)
    assert len(carried_out) == 1, carried_out
    assert ended["asset_id"] == str(carried_out[0]["asset_id"])
