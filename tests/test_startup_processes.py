"""Starting the Procfile's processes for real: a bad variable stops ``web`` and ``worker`` with one
line, and the deployment smoke (``mi-bridge db upgrade``, then ``honcho start web worker``) serves a
ready bridge and stops every process on SIGTERM.

``tests/test_startup_config.py`` covers ``mi-bridge db upgrade`` (the ``release`` process).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.fixtures import API_TOKEN, TEST_ACCESS_KEY, TEST_SECRET_KEY
from tests.processes import (
    BIN,
    MARKER,
    REPO,
    Processes,
    answers,
    free_port,
    kill_pids,
    processes_with_marker,
    run_db_upgrade,
)

pytestmark = pytest.mark.slow

#: case -> (the variable the one line must name, the environment that breaks it)
BAD_VARIABLES = {
    "poll interval": ("BRIDGE_POLL_INTERVAL", {"BRIDGE_POLL_INTERVAL": "often"}),
    "port": ("PORT", {"PORT": "99999"}),
    "environment": ("BRIDGE_ENV", {"BRIDGE_ENV": "staging"}),
    "production secret key": ("SECRET_KEY", {"BRIDGE_ENV": "production", "SECRET_KEY": ""}),
    "retry schedule": ("BRIDGE_RETRY_SCHEDULE", {"BRIDGE_RETRY_SCHEDULE": "5,,300"}),
}
COMMANDS = {
    "worker": [str(BIN / "mi-bridge"), "worker"],
    "web": [str(BIN / "gunicorn"), "-c", str(REPO / "gunicorn.conf.py"), "app:create_app()"],
}
#: "Within a few seconds": generous for a loaded CI machine, far below any poll or retry timing.
STARTUP_BUDGET_SECONDS = 10


def _base_environment() -> dict[str, str]:
    """The test process's environment without the bridge's variables (the conftest removed them)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _start_and_wait(args: list[str], env: dict[str, str], cwd: Path) -> tuple:
    """Run one command to its end: (exit code, stdout, stderr, seconds from start to exit)."""
    started = time.monotonic()
    process = subprocess.Popen(
        args, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=STARTUP_BUDGET_SECONDS + 15)
    except subprocess.TimeoutExpired:  # it did not stop: the test's assertions will say so
        process.kill()
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return process.returncode, stdout, stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def startup_failures(tmp_path_factory):
    """Every (case, command), as many at once as there are CPUs: -> (code, out, err, s, db path)."""
    runs = {}
    for case, (_variable, variables) in BAD_VARIABLES.items():
        for command, args in COMMANDS.items():
            folder = tmp_path_factory.mktemp("startup")
            database = folder / "bridge.db"
            env = {
                **_base_environment(),
                "DATABASE_URL": f"sqlite:///{database}",
                "BRIDGE_ENV": "development",
                "SECRET_KEY": "a-secret",
                "BRIDGE_API_TOKENS": API_TOKEN,
                # Should gunicorn ever start anyway, it listens on loopback only.
                "GUNICORN_CMD_ARGS": f"--bind=127.0.0.1:{free_port()}",
                **variables,
            }
            runs[(case, command)] = (args, env, folder, database)
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        futures = {
            key: pool.submit(_start_and_wait, args, env, folder)
            for key, (args, env, folder, _database) in runs.items()
        }
        results = {key: (*future.result(), runs[key][3]) for key, future in futures.items()}
    times = sorted(round(result[3], 1) for result in results.values())
    print(f"\n{len(results)} bad starts, seconds from start to exit: {times}")
    return results


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD_VARIABLES))
def test_a_bad_variable_stops_the_process_with_one_line(startup_failures, case, command):
    """Non-zero exit within seconds, one stderr line naming the variable, no traceback."""
    variable = BAD_VARIABLES[case][0]
    code, stdout, stderr, seconds, database = startup_failures[(case, command)]
    assert code != 0, (stdout, stderr)
    assert seconds < STARTUP_BUDGET_SECONDS
    assert "Traceback" not in stderr + stdout
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"mi-bridge: configuration error: {variable}: "), lines[0]
    assert stdout == ""
    assert not database.exists()  # stopped before it touched the database


# --- the deployment smoke: release, then honcho with the Procfile --------------------------------


def _smoke_environment(tmp_path: Path, database_url: str, simulator_url: str, port: int, run: str):
    return {
        **_base_environment(),
        MARKER: run,  # every process of this run inherits it: see processes_with_marker
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # the venv, as if activated
        "PORT": str(port),
        # The Procfile's gunicorn reads gunicorn.conf.py (0.0.0.0:$PORT); tests stay on loopback.
        "GUNICORN_CMD_ARGS": f"--bind=127.0.0.1:{port}",
        "DATABASE_URL": database_url,
        "BRIDGE_ENV": "production",
        "SECRET_KEY": "smoke-secret-key-of-at-least-32-characters",
        "BRIDGE_API_TOKENS": "smoke-api-token-of-at-least-24-characters",
        "MI_API_URL": simulator_url,
        "NCP_ACCESS_KEY": TEST_ACCESS_KEY,
        "NCP_SECRET_KEY": TEST_SECRET_KEY,
        "BRIDGE_INSTANCE_PATH": str(tmp_path / "instance"),
    }


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    "database", [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
)
def test_release_then_honcho_serves_ready_and_stops_on_sigterm(
    tmp_path, request, simulator, wait_until, database
):
    """``mi-bridge db upgrade && honcho start web worker``: /readyz 200, SIGTERM stops everything."""
    if database == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{tmp_path}/bridge.db"
    port, run = free_port(), uuid.uuid4().hex
    base = f"http://127.0.0.1:{port}"
    env = _smoke_environment(tmp_path, database_url, simulator.url, port, run)
    run_db_upgrade(env, tmp_path)
    no_dotenv = tmp_path / "empty.env"  # a developer's own .env in the repository stays out
    no_dotenv.write_text("")
    procs = Processes(tmp_path)
    started = time.monotonic()
    try:
        honcho = procs.start(
            "honcho", [str(BIN / "honcho"), "-e", str(no_dotenv), "start", "web", "worker"],
            env, cwd=REPO,
        )  # fmt: skip
        wait_until(
            lambda: answers(f"{base}/readyz", lambda r: r.status_code == 200),
            timeout=30,
            message="web answers /readyz 200 (a worker heartbeat is recent)",
        )
        ready_after = time.monotonic() - started
        readiness = requests.get(f"{base}/readyz", timeout=5).json()
        ours = processes_with_marker(run)
        sent = time.monotonic()
        honcho.send_signal(signal.SIGTERM)
        honcho.wait(timeout=30)
        wait_until(lambda: not processes_with_marker(run), timeout=30 - (time.monotonic() - sent))
        stopped_after = time.monotonic() - sent
    finally:
        procs.stop_all()
        kill_pids(processes_with_marker(run))  # leftovers of this run only, by pid
    output = procs.output("honcho")
    print(
        f"\nhoncho on {database}: /readyz 200 after {ready_after:.1f} s; SIGTERM stopped"
        f" {len(ours)} processes in {stopped_after:.1f} s (honcho exit {honcho.returncode})"
    )
    assert readiness["database"] == "ok"
    assert readiness["worker_last_seen"] is not None
    commands = " | ".join(ours.values())
    assert "gunicorn" in commands
    assert "mi-bridge worker" in commands
    assert stopped_after < 30
    assert "Traceback" not in output
    # Both stopped by themselves: honcho SIGKILLs whatever still runs 5 s after its SIGTERM. (The
    # rc honcho reports is its `sh -c` wrapper's, killed by the same SIGTERM: it says nothing.)
    assert "SIGKILL" not in output
    assert "Shutting down: Master" in output  # gunicorn's graceful exit
    assert re.search(r"worker\.1 +\| .*worker \S+ stopped", output), output[-3000:]
