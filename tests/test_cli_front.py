"""The command line's front door, as real processes in an empty working directory.

``mi-bridge --help`` and ``--version`` on a machine with no configuration at all (no variables, no
``.env``) must answer, not fail on the missing configuration; ``run`` listens on ``PORT``, runs the
embedded worker when configured and says where it serves; ``run`` and ``demo`` on a taken port end
with one line, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
from importlib import metadata

import pytest
from sqlalchemy import select

from app.db import db
from app.models import WorkerHeartbeat
from tests.processes import BIN, Processes, answers, free_port

#: What configures the bridge; the processes here start from none of it.
_CONFIG_PREFIXES = ("BRIDGE_", "MI_", "NCP_", "SLACK_", "DATABASE_URL", "SECRET_KEY", "FLASK_")


def bare(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_PREFIXES)}
    return subprocess.run(
        [str(BIN / "mi-bridge"), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_help_needs_no_configuration_and_lists_every_command(tmp_path):
    run = bare(tmp_path, "--help")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    listed = {line.split()[0] for line in run.stdout.split("Commands:")[1].splitlines() if line}
    assert {"db", "demo", "worker", "watch", "endpoint", "simulator", "housekeep", "run"} <= listed


def test_version_is_the_bridges_own(tmp_path):
    run = bare(tmp_path, "--version")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"mi-bridge {metadata.version('mi-bridge')}"
    assert "Flask" not in run.stdout


def test_a_command_that_needs_configuration_says_which_in_one_line(tmp_path):
    run = bare(tmp_path, "watch", "list")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "mi-bridge: configuration error: SECRET_KEY: required when BRIDGE_ENV=production"
    ]


def test_db_help_needs_no_configuration(tmp_path):
    run = bare(tmp_path, "db", "--help")
    assert run.returncode == 0, run.stderr
    assert "upgrade" in run.stdout


# --- mi-bridge run ---------------------------------------------------------------------------------


def configured(tmp_path, **variables: str) -> dict[str, str]:
    """The bare environment plus a development bridge on the test's (migrated) ``bridge.db``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_PREFIXES)}
    return {
        **env,
        "PYTHONUNBUFFERED": "1",
        "BRIDGE_ENV": "development",
        "DATABASE_URL": f"sqlite:///{tmp_path}/bridge.db",
        **variables,
    }


def test_run_serves_on_port_with_the_embedded_worker_and_says_where(app, tmp_path, wait_until):
    port = free_port()
    empty = tmp_path / "empty"
    empty.mkdir()
    env = configured(tmp_path, PORT=str(port), BRIDGE_EMBEDDED_WORKER="true")
    procs = Processes(tmp_path)
    url = f"http://127.0.0.1:{port}/"
    try:
        procs.start("run", [str(BIN / "mi-bridge"), "run"], env, cwd=empty)
        wait_until(lambda: url in procs.output("run"), 30, "the URL printed")
        # Ready means the database answers and a worker beat: the embedded one, nothing else runs.
        wait_until(lambda: answers(f"{url}readyz"), 30, "ready, with the embedded worker")
        assert procs.stop("run") == 0  # SIGTERM, like Ctrl-C
    finally:
        procs.stop_all()
    assert procs.output("run").splitlines()[0] == (
        f"mi-bridge: serving {url} with the embedded worker (Ctrl-C stops both)"
    )
    assert "Traceback" not in procs.output("run")
    with app.app_context():
        assert db.session.scalars(select(WorkerHeartbeat.kind)).all() == ["embedded"]


def test_run_on_a_taken_port_says_so_in_one_line(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        run = subprocess.run(
            [str(BIN / "mi-bridge"), "run"], cwd=tmp_path, env=configured(tmp_path, PORT=str(port)),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: it is already in use"
        " (choose another port with --port or PORT)"
    ]


# --- mi-bridge demo --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "what"), [("--simulator-port", "the simulator"), ("--port", "the web app")]
)
def test_demo_on_a_taken_port_says_so_in_one_line(tmp_path, option, what):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        ports = {"--port": "0", "--simulator-port": "0", option: str(port)}
        run = bare(tmp_path, "demo", *(item for pair in ports.items() for item in pair))
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port} for {what}: it is already in use"
        f" (choose another port with {option}; 0 picks a free one)"
    ]
    assert not (tmp_path / "instance").exists()  # nothing was started
