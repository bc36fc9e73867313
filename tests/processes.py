"""Real OS processes for the multi-process tests: the venv's console scripts, output in files.

``Processes`` starts commands with ``<name>.out``/``<name>.err`` in a log folder and stops what is
left in a ``finally``; ``bridge_env`` is a process environment against the simulator with short
timings; ``gunicorn_args`` is the ``web`` process on 127.0.0.1; ``processes_with_marker`` finds
every process (children included) that inherited a test run's marker variable.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from tests.fixtures import API_TOKEN, AUTH, TEST_ACCESS_KEY, TEST_SECRET_KEY

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
#: The variable ``processes_with_marker`` looks for in ``/proc/<pid>/environ``.
MARKER = "MI_BRIDGE_TEST_RUN"


class Processes:
    """Processes a test started, each with ``<name>.out``/``<name>.err`` files in ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(
        self, name: str, args: list[str], env: dict[str, str], cwd: Path | None = None
    ) -> subprocess.Popen[bytes]:
        with (
            open(self.log_dir / f"{name}.out", "wb") as out,
            open(self.log_dir / f"{name}.err", "wb") as err,
        ):
            proc = subprocess.Popen(
                args, env=env, cwd=cwd or self.log_dir, stdin=subprocess.DEVNULL,
                stdout=out, stderr=err,
            )  # fmt: skip
        self.started[name] = proc
        return proc

    def worker(self, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        return self.start(name, [str(BIN / "mi-bridge"), "worker"], env)

    def web(self, name: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
        return self.start(name, gunicorn_args(port), env)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send ``sig`` (unless it already exited) and wait for the exit code."""
        proc = self.started[name]
        if proc.poll() is None:
            proc.send_signal(sig)
        return proc.wait(timeout=timeout)

    def output(self, name: str) -> str:
        return "".join(
            (self.log_dir / f"{name}.{kind}").read_text(errors="replace") for kind in ("out", "err")
        )

    def stop_all(self) -> None:
        """Stop whatever still runs (SIGTERM, then SIGKILL), and show each log's tail."""
        for name, proc in self.started.items():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
            print(f"--- {name} (exit {proc.returncode}), last lines:")
            print("\n".join(self.output(name).splitlines()[-15:]))


def bridge_env(database_url: str, simulator_url: str, **overrides: str) -> dict[str, str]:
    """A process environment for the bridge against the simulator, with short timings."""
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url,
        "BRIDGE_ENV": "development",
        "BRIDGE_API_TOKENS": API_TOKEN,
        "MI_API_URL": simulator_url,
        "NCP_ACCESS_KEY": TEST_ACCESS_KEY,
        "NCP_SECRET_KEY": TEST_SECRET_KEY,
        "MI_DEFAULT_API": "index",
        "BRIDGE_POLL_INTERVAL": "0.2",
        "BRIDGE_POLL_MAX_INTERVAL": "1",
        "BRIDGE_LEASE_SECONDS": "2",
        "LOG_LEVEL": "INFO",
        "BRIDGE_ALLOW_PRIVATE_URLS": "true",  # webhooks go to the test's receiver on 127.0.0.1
        **overrides,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn_args(port: int) -> list[str]:
    """The Procfile's ``web`` command with the repository's settings, bound to 127.0.0.1 only."""
    return [
        str(BIN / "gunicorn"), "-c", str(REPO / "gunicorn.conf.py"), "--no-control-socket",
        "-b", f"127.0.0.1:{port}", "app:create_app()",
    ]  # fmt: skip


def answers(url: str, expect: Callable[[requests.Response], bool] = lambda r: r.ok) -> bool:
    """True once ``url`` answers as ``expect`` wants; False while nothing listens or it disagrees."""
    try:
        return expect(requests.get(url, timeout=2))
    except requests.RequestException:  # not listening yet, or no gunicorn worker booted yet
        return False


def run_db_upgrade(env: dict[str, str], cwd: Path) -> None:
    """``mi-bridge db upgrade`` (the Procfile's ``release``), asserting it succeeds."""
    upgrade = subprocess.run(
        [str(BIN / "mi-bridge"), "db", "upgrade"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr


def processes_with_marker(value: str) -> dict[int, str]:
    """Every live process whose environment has ``MI_BRIDGE_TEST_RUN=value``: pid -> command line."""
    wanted = f"{MARKER}={value}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(
                line for line in (entry / "status").read_text().splitlines()
                if line.startswith("State:")
            )  # fmt: skip
        except (OSError, StopIteration):  # gone meanwhile, or not ours to read
            continue
        if "zombie" not in state:
            found[int(entry.name)] = command.strip()
    return found


def kill_pids(pids: dict[int, Any]) -> None:
    """SIGKILL these processes (leftovers of a test's own run, found by its marker)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.kill(pid, signal.SIGKILL)


def child_pids(parent: int) -> set[int]:
    """The live processes whose parent is ``parent`` (e.g. gunicorn's workers)."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after it
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            children.add(int(entry.name))
    return children


class Api:
    """The bridge's HTTP API served by a ``web`` process, with the test token."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers.update(AUTH)

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(self.base_url + path, params=params, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(self.base_url + "/api/v1/watches", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()

    def watch(self, watch_id: str) -> dict[str, Any]:
        return self.get(f"/api/v1/watches/{watch_id}")

    def close(self) -> None:
        self.http.close()
