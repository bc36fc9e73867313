"""The README's simulator examples, run against a real `mi-bridge simulator` so they cannot rot."""

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

README = Path(__file__).resolve().parent.parent / "README.md"
BIN = Path(sys.executable).parent
DOC_ADDRESS = "127.0.0.1:8090"


def simulator_examples() -> list[str]:
    """The ```sh blocks between the simulator-examples markers, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("<!-- simulator-examples:start -->")[1].split(
        "<!-- simulator-examples:end -->"
    )[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def expectations(block: str) -> list[str]:
    return [line.split("# =>", 1)[1].strip() for line in block.splitlines() if "# =>" in line]


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def cli_env():
    # conftest already removed the developer's configuration from os.environ
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


@pytest.fixture
def simulator_process(cli_env, tmp_path, wait_until):
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "mi-bridge"), "simulator", "--port", str(port)],
        env=cli_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def healthy():
        try:
            return requests.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1).ok
        except requests.ConnectionError:
            return False

    try:
        wait_until(healthy, timeout=20, message="the simulator answers /_sim/health")
        yield port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()  # and read its pipe to the end, so no open pipe outlives this test
            output, _ = process.communicate()
            raise AssertionError(f"the simulator ignored Ctrl-C for 15 s:\n{output}") from None
    assert process.returncode == 0, output
    assert "sim-access-key" in output  # it says which demo keys it accepts
    assert "sim-secret-key" not in output  # ...and masks the secret


def test_readme_has_simulator_examples():
    blocks = simulator_examples()
    assert len(blocks) >= 5
    assert all(DOC_ADDRESS in block or "mi-bridge" in block for block in blocks)


def test_readme_simulator_examples_run(simulator_process, cli_env, tmp_path):
    address = f"127.0.0.1:{simulator_process}"
    for block in simulator_examples():
        script = "set -euo pipefail\n" + block.replace(DOC_ADDRESS, address)
        result = subprocess.run(
            ["bash", "-c", script],
            env=cli_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (
            f"{block}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
        for expected in expectations(block):
            assert squeeze(expected) in squeeze(result.stdout), f"{block}\n{result.stdout}"
