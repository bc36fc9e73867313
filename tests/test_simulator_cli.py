"""``mi-bridge simulator``: runs in the foreground, shows its keys masked, stops on SIGTERM."""

import os
import queue
import re
import signal
import subprocess
import sys
import threading

import requests
from click.testing import CliRunner

from app.simulator.cli import mask_secret, simulator_command
from app.upstream.signing import signed_headers

STATUS_PATH = "/api/v1/workspaces/ws/projects/1/assets/a1/index/status"


class RunningCommand:
    """The command in a child process, its output lines collected as they come."""

    def __init__(self, *args, env_overrides=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NCP_")}
        env.update(env_overrides or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.simulator", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for_line(self, pattern, timeout=15):
        """The first match of ``pattern`` in the output; fails after ``timeout`` s or at exit."""
        while True:
            line = self._queue.get(timeout=timeout)
            assert line is not None, "exited early:\n" + "\n".join(self.lines)
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def terminate(self, timeout=10):
        """SIGTERM, then the exit status and the rest of the output."""
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        self.process.stdout.close()
        return status

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process.stdout.close()


def test_runs_with_the_demo_pair_until_sigterm():
    command = RunningCommand("--port", "0")
    try:
        url = command.wait_for_line(r"listening on (http://127\.0\.0\.1:\d+)").group(1)
        assert requests.get(url + "/_sim/health", timeout=5).json() == {"ok": True}
        headers = signed_headers("GET", STATUS_PATH, "sim-access-key", "sim-secret-key")
        answer = requests.get(url + STATUS_PATH, headers=headers, timeout=5).json()
        assert answer["result"]["status"] == "WAIT_ANALYZE"  # auto-created
        command.wait_for_line("Press Ctrl-C")
        assert command.terminate() == 0
    finally:
        command.kill()
    output = "\n".join(command.lines)
    assert "sim-access-key  (the documented demo pair)" in output
    assert "sim-secret-key" not in output
    assert "****-key" in output
    assert output.endswith("Simulator stopped.")


def test_keys_from_the_environment_and_no_auto_create():
    command = RunningCommand(
        "--port",
        "0",
        "--no-auto-create",
        env_overrides={"NCP_ACCESS_KEY": "env-access", "NCP_SECRET_KEY": "env-secret-value-1234"},
    )
    try:
        url = command.wait_for_line(r"listening on (http://\S+)").group(1)
        headers = signed_headers("GET", STATUS_PATH, "env-access", "env-secret-value-1234")
        response = requests.get(url + STATUS_PATH, headers=headers, timeout=5)
        assert response.status_code == 404
        demo = signed_headers("GET", STATUS_PATH, "sim-access-key", "sim-secret-key")
        assert requests.get(url + STATUS_PATH, headers=demo, timeout=5).status_code == 401
        command.wait_for_line("Press Ctrl-C")
        assert command.terminate() == 0
    finally:
        command.kill()
    output = "\n".join(command.lines)
    assert "env-access  (from NCP_ACCESS_KEY/NCP_SECRET_KEY)" in output
    assert "****1234" in output
    assert "env-secret-value" not in output
    assert "404 until created" in output


def test_one_key_without_the_other_is_a_usage_error():
    result = CliRunner().invoke(
        simulator_command,
        ["--port", "0", "--access-key", "mine"],
        env={"NCP_ACCESS_KEY": None, "NCP_SECRET_KEY": None},
    )
    assert result.exit_code == 2
    assert "give both keys" in result.output


def test_busy_port_is_a_clear_error(simulator):
    result = CliRunner().invoke(
        simulator_command,
        ["--port", str(simulator.port)],
        env={"NCP_ACCESS_KEY": None, "NCP_SECRET_KEY": None},
    )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{simulator.port}" in result.output


def test_mask_secret_shows_at_most_the_last_four():
    assert mask_secret("sim-secret-key") == "****-key"
    assert mask_secret("short") == "****"
    assert mask_secret("") == "****"
