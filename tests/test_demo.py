"""`mi-bridge demo --for N` runs unattended from a bare working directory and checks its samples."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MI_BRIDGE = str(Path(sys.executable).with_name("mi-bridge"))
EXPECTED_ENDS = {
    "clip-completes": "completed",
    "clip-fails": "failed",
    "clip-cancelled": "cancelled",
    "clip-flaky-upstream": "completed",
    "clip-legacy-api": "completed",
    "clip-imported": "completed",  # imported, analysed and summarised by the bridge
}


@pytest.mark.timeout(150)
def test_demo_runs_unattended_and_every_sample_reaches_its_end(tmp_path):
    result = subprocess.run(
        [MI_BRIDGE, "demo", "--for", "90", "--port", "0", "--simulator-port", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=140, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All 6 sample watches reached their expected ends" in result.stdout
    lines = result.stdout.splitlines()
    for asset_id, state in EXPECTED_ENDS.items():
        assert any(line.split() == [asset_id, state] for line in lines), asset_id
    assert "API token" in result.stdout
    assert (tmp_path / "instance" / "demo" / "mi-bridge.db").exists()  # under the working directory


@pytest.mark.timeout(90)
def test_ctrl_c_stops_the_demo_cleanly(tmp_path, wait_until):
    import signal

    output = tmp_path / "demo.log"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [MI_BRIDGE, "demo", "--port", "0", "--simulator-port", "0"],
            cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: "API token" in output.read_text(), timeout=60, message="the banner")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in output.read_text()
