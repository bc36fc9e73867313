"""``BRIDGE_POLL_TRANSPORT=process`` through the real processes: gunicorn (``web``) registers,
``mi-bridge worker`` claims and applies in PostgreSQL while its poll process (a ``multiprocessing``
child spawned when the worker starts, ``app.worker.poll_process``) sends the status requests.

The poll process ignores SIGTERM (a platform signals every process of a dyno; the worker decides
when to stop): it ends when the worker closes its runtime (SIGTERM to the worker), or when its pipe
closes (the worker was killed). Either way, nothing of the worker is left behind; and a SIGTERM to
every process while the poll process still starts stops the worker too.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from standardwebhooks import Webhook

from tests.processes import (
    MARKER,
    Api,
    Processes,
    answers,
    bridge_env,
    child_pids,
    free_port,
    kill_pids,
    processes_with_marker,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def _env(postgres_url: str, simulator_url: str, port: int, marker: str) -> dict[str, str]:
    """The short timings of ``bridge_env``, the process transport, and a marker per role (so the
    worker's own processes are told from gunicorn's by ``processes_with_marker``)."""
    return bridge_env(
        postgres_url, simulator_url, PORT=str(port), WEB_CONCURRENCY="1",
        BRIDGE_POLL_TRANSPORT="process", BRIDGE_RETRY_SCHEDULE="1", **{MARKER: marker},
    )  # fmt: skip


def _body(asset_id: str, hook: str) -> dict:
    return {
        "workspace": "ws", "project_id": "1", "asset_id": asset_id, "api": "index",
        "targets": [{"type": "webhook", "url": hook}],
    }  # fmt: skip


def _analyzing(sim_control, asset_id: str) -> None:
    pin = {"status": "ANALYZING"}
    assert sim_control.put(f"/assets/ws/1/{asset_id}", json=pin).status_code == 201


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # gone
        return ""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "zombie" not in next(line for line in status.splitlines() if line.startswith("State:"))


def _poll_processes(worker_pid: int) -> set[int]:
    """The worker's children started by ``multiprocessing``'s spawn (its poll process; not the
    resource tracker that spawning starts beside it)."""
    return {
        pid
        for pid in child_pids(worker_pid)
        if "multiprocessing" in (command := _cmdline(pid)) and "spawn_main" in command
    }


def _the_poll_process(worker_pid: int, wait_until) -> int:
    [pid] = wait_until(
        lambda: _poll_processes(worker_pid), timeout=10, message="the worker's poll process"
    )
    return pid


def _connections_to(pid: int, port: int) -> int:
    """Established TCP connections of process ``pid`` to ``port`` on 127.0.0.1."""
    try:
        links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
    except OSError:
        return 0
    inodes = {link[len("socket:[") : -1] for link in links if link.startswith("socket:[")}
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == "01" and fields[9] in inodes:  # ESTABLISHED
                count += 1
    return count


def _polls(api: Api, watch_id: str) -> int:
    return api.watch(watch_id)["poll_count"]


def _watched_by_a_worker(
    procs: Processes,
    api: Api,
    env: Callable[[str], dict[str, str]],
    run: str,
    worker_name: str,
    marker: str,
    asset_id: str,
    hook: str,
    wait_until,
    polls: int = 1,
) -> tuple[subprocess.Popen[bytes], dict, int]:
    """Start the web process and a worker (marked ``<run>-<marker>``), register a watch of
    ``asset_id`` notifying ``hook`` and wait for ``polls`` polls: (worker, watch, its poll process)."""
    procs.web("web", env(f"{run}-web"), urlsplit(api.base_url).port)
    worker = procs.worker(worker_name, env(f"{run}-{marker}"))
    wait_until(lambda: answers(f"{api.base_url}/healthz"), timeout=30, message="web serves")
    watch = api.register(_body(asset_id, hook))
    wait_until(lambda: _polls(api, watch["id"]) >= polls, timeout=15, message=f"{polls} poll(s)")
    return worker, watch, _the_poll_process(worker.pid, wait_until)


@pytest.mark.timeout(90)
def test_process_transport_polls_and_notifies_once(
    tmp_path, postgres_url, simulator, sim_control, receiver, wait_until
):
    """The poll process sends the requests; the worker applies them: one signed webhook."""
    port, run = free_port(), uuid.uuid4().hex
    sim_port = urlsplit(simulator.url).port
    _analyzing(sim_control, "p1")
    api = Api(f"http://127.0.0.1:{port}")
    procs = Processes(tmp_path)
    try:
        env = functools.partial(_env, postgres_url, simulator.url, port)
        worker, watch, poll_process = _watched_by_a_worker(
            procs, api, env, run, "worker", "worker", "p1", f"{receiver.url}/hooks/p1", wait_until
        )
        secret = watch["targets"][0]["secret"]
        command = _cmdline(poll_process)
        # The requests go out from the poll process (its keep-alive connection to the simulator),
        # none from the worker's own process.
        wait_until(
            lambda: _connections_to(poll_process, sim_port) >= 1,
            timeout=10,
            message="the poll process holds a connection to the simulator",
        )
        worker_connections = _connections_to(worker.pid, sim_port)
        marked = processes_with_marker(f"{run}-worker")

        pin = {"status": "ANALYZE_COMPLETED", "index_id": 7100}
        assert sim_control.put(f"/assets/ws/1/{watch['asset_id']}", json=pin).status_code == 200
        started = time.monotonic()
        wait_until(
            lambda: [d["state"] for d in api.watch(watch["id"])["deliveries"]] == ["succeeded"],
            timeout=15,
            message="the delivery succeeded",
        )
        delivered_after = time.monotonic() - started
        final = api.watch(watch["id"])
        assert procs.stop("worker") == 0
        assert procs.stop("web") == 0
        assert not _alive(poll_process)
    finally:
        procs.stop_all()
        api.close()
        kill_pids(processes_with_marker(f"{run}-worker"))  # leftovers of this run only, by pid

    print(
        f"\nprocess transport: poll process {poll_process} ({command!r}); worker's processes"
        f" {sorted(marked)}; webhook {delivered_after:.1f} s after completion;"
        f" {final['poll_count']} polls, {len(receiver.requests)} webhook request(s)"
    )
    assert "multiprocessing" in command
    assert worker_connections == 0
    assert poll_process in marked
    [delivered] = receiver.requests
    payload = Webhook(secret).verify(delivered.body, delivered.headers)
    [delivery] = final["deliveries"]
    assert delivered.path == "/hooks/p1"
    assert payload["type"] == "analysis.completed"
    assert payload["id"] == delivered.headers["webhook-id"] == delivery["event_id"]
    assert payload["data"]["watch"]["id"] == watch["id"]
    assert payload["data"]["analysis"]["status"] == "ANALYZE_COMPLETED"
    assert payload["data"]["analysis"]["index_id"] == 7100
    assert [a["status_code"] for a in delivery["attempts"]] == [200]
    assert final["state"] == "completed"
    output = procs.output("worker")
    assert f"poll process {poll_process} started" in output
    assert "ended unexpectedly" not in output
    assert "Traceback" not in output


@pytest.mark.timeout(90)
def test_sigterm_spares_the_poll_process_until_the_worker_stops(
    tmp_path, postgres_url, simulator, sim_control, wait_until
):
    """SIGTERM to the poll process alone: ignored, polls go on. SIGTERM to the worker: exit 0, and
    its poll process (and every other process of the worker) ends with it."""
    port, run = free_port(), uuid.uuid4().hex
    _analyzing(sim_control, "t1")
    api = Api(f"http://127.0.0.1:{port}")
    procs = Processes(tmp_path)
    try:
        env = functools.partial(_env, postgres_url, simulator.url, port)
        worker, watch, poll_process = _watched_by_a_worker(
            procs, api, env, run, "worker", "worker", "t1", "http://127.0.0.1:9/unused", wait_until
        )

        # 1. SIGTERM to the poll process alone: ignored, the worker keeps polling through it.
        before = _polls(api, watch["id"])
        os.kill(poll_process, signal.SIGTERM)
        signalled = time.monotonic()
        after = wait_until(
            lambda: (
                time.monotonic() - signalled >= 1.0
                and (polls := _polls(api, watch["id"])) >= before + 2
                and polls
            ),
            timeout=15,
            message="two more polls, and 1 s, after SIGTERM to the poll process",
        )
        survived = _alive(poll_process)
        still_children = _poll_processes(worker.pid)

        # 2. SIGTERM to the worker: exit 0, its poll process told to stop and gone.
        worker_processes = processes_with_marker(f"{run}-worker")
        sent = time.monotonic()
        code = procs.stop("worker", timeout=30)
        exited_after = time.monotonic() - sent
        wait_until(
            lambda: not processes_with_marker(f"{run}-worker"),
            timeout=10,
            message="no process of the worker left",
        )
        all_gone_after = time.monotonic() - sent
        assert procs.stop("web") == 0
    finally:
        procs.stop_all()
        api.close()
        kill_pids(processes_with_marker(f"{run}-worker"))  # leftovers of this run only, by pid

    print(
        f"\nSIGTERM to poll process {poll_process}: alive 1 s later {survived}, polls"
        f" {before} -> {after}; SIGTERM to the worker: exit {code} in {exited_after:.1f} s, its"
        f" {len(worker_processes)} processes gone in {all_gone_after:.1f} s"
    )
    assert survived
    assert still_children == {poll_process}  # the same process: not died and replaced
    assert after >= before + 2
    assert code == 0
    assert exited_after < 30
    assert poll_process in worker_processes
    assert not _alive(poll_process)
    output = procs.output("worker")
    assert "ended unexpectedly" not in output
    assert "did not stop; killing it" not in output  # it ended on the worker's "stop"
    assert "Traceback" not in output


@pytest.mark.timeout(90)
def test_sigkill_of_the_worker_ends_its_poll_process(
    tmp_path, postgres_url, simulator, sim_control, wait_until
):
    """kill -9 of the worker: its poll process sees the pipe close and ends within seconds; a new
    worker then polls the watch again (the killed one's leases run out)."""
    port, run = free_port(), uuid.uuid4().hex
    _analyzing(sim_control, "k1")
    api = Api(f"http://127.0.0.1:{port}")
    procs = Processes(tmp_path)
    try:
        env = functools.partial(_env, postgres_url, simulator.url, port)
        _, watch, poll_process = _watched_by_a_worker(
            procs, api, env, run, "worker-1", "w1", "k1", "http://127.0.0.1:9/unused", wait_until,
            polls=2,
        )  # fmt: skip
        worker_processes = processes_with_marker(f"{run}-w1")

        assert procs.stop("worker-1", signal.SIGKILL, timeout=10) == -signal.SIGKILL
        killed = time.monotonic()
        wait_until(
            lambda: not _alive(poll_process),
            timeout=10,
            message="the poll process ended after its worker was killed",
        )
        poll_process_gone_after = time.monotonic() - killed
        wait_until(
            lambda: not processes_with_marker(f"{run}-w1"),
            timeout=10,
            message="no process of the killed worker left",
        )
        all_gone_after = time.monotonic() - killed

        # A new worker takes over the watch once the killed one's lease (2 s) runs out.
        polls_at_kill = _polls(api, watch["id"])
        second = procs.worker("worker-2", env(f"{run}-w2"))
        wait_until(
            lambda: _polls(api, watch["id"]) >= polls_at_kill + 2,
            timeout=20,
            message="worker-2 polls the watch",
        )
        second_poll_process = _the_poll_process(second.pid, wait_until)
        assert procs.stop("worker-2") == 0
        wait_until(
            lambda: not processes_with_marker(f"{run}-w2"),
            timeout=10,
            message="no process of worker-2 left",
        )
        assert procs.stop("web") == 0
    finally:
        procs.stop_all()
        api.close()
        for role in ("w1", "w2"):
            kill_pids(processes_with_marker(f"{run}-{role}"))  # this run's leftovers, by pid

    print(
        f"\nSIGKILL of the worker: poll process {poll_process} gone after"
        f" {poll_process_gone_after:.1f} s, all {len(worker_processes)} of its processes after"
        f" {all_gone_after:.1f} s; worker-2's poll process {second_poll_process}"
    )
    assert poll_process in worker_processes
    assert poll_process_gone_after < 10
    assert second_poll_process != poll_process
    assert "Traceback" not in procs.output("worker-2")


@pytest.mark.timeout(60)
def test_a_sigterm_to_every_process_while_the_poll_process_starts_stops_the_worker(
    tmp_path, postgres_url, simulator, wait_until
):
    """As a platform stops a dyno just after it started: SIGTERM to every process of the worker
    while its poll process still imports (and does not ignore the signal yet). The worker starts no
    scheduler, exits 0, leaves nothing behind and calls none of it unexpected."""
    run = uuid.uuid4().hex
    procs = Processes(tmp_path)
    try:
        worker = procs.worker(
            "worker", _env(postgres_url, simulator.url, free_port(), f"{run}-worker")
        )
        wait_until(
            lambda: "poll process" in procs.output("worker"),
            timeout=20,
            message="the poll process is starting",
        )
        signalled = processes_with_marker(f"{run}-worker")
        for pid in signalled:
            os.kill(pid, signal.SIGTERM)
        code = worker.wait(timeout=30)
        wait_until(
            lambda: not processes_with_marker(f"{run}-worker"),
            timeout=10,
            message="no process of the worker left",
        )
    finally:
        procs.stop_all()
        kill_pids(processes_with_marker(f"{run}-worker"))  # leftovers of this run only, by pid

    output = procs.output("worker")
    assert code == 0
    assert worker.pid in signalled
    assert "stopping" in output
    assert re.search(r"worker \S+ started", output) is None  # no scheduler was started
    assert "ended unexpectedly" not in output
    assert "Traceback" not in output
