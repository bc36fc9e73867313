"""`mi-bridge demo --for N` runs unattended from a bare working directory and checks its samples."""

import subprocess
import sys
from pathlib import Path

import pytest

MI_BRIDGE = str(Path(sys.executable).with_name("mi-bridge"))


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_demo_runs_unattended_and_every_sample_reaches_its_end(tmp_path):
    result = subprocess.run(
        [MI_BRIDGE, "demo", "--for", "90", "--port", "0", "--simulator-port", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=140,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All 4 sample analyses reached their expected ends." in result.stdout
    for outcome in (
        "ANALYZE_COMPLETED",
        "ANALYZE_FAIL",
        "ANALYZE_CANCEL",
        "transient",
        "rate_limited",
    ):
        assert outcome in result.stdout
