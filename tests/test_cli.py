"""The console script: Flask's commands work, and bad configuration ends it with one clear line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

MI_BRIDGE = str(Path(sys.executable).with_name("mi-bridge"))


def run_cli(*args, env_overrides, cwd):
    env = {**os.environ, **env_overrides}  # conftest already removed the developer's configuration
    return subprocess.run(
        [MI_BRIDGE, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_routes_lists_the_health_endpoint(tmp_path):
    result = run_cli("routes", env_overrides={"BRIDGE_ENV": "development"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "/healthz" in result.stdout


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"BRIDGE_ENV": "development", "BRIDGE_POLL_INTERVAL": "often"}, "BRIDGE_POLL_INTERVAL"),
        ({"BRIDGE_ENV": "staging"}, "BRIDGE_ENV"),
        ({"BRIDGE_ENV": "production", "BRIDGE_API_TOKENS": "t"}, "SECRET_KEY"),
    ],
)
def test_malformed_variable_stops_the_cli_with_one_line(tmp_path, overrides, variable):
    result = run_cli("routes", env_overrides=overrides, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"mi-bridge: configuration error: {variable}: ")
    assert "Traceback" not in result.stderr


def test_dotenv_in_the_working_directory_is_read(tmp_path):
    (tmp_path / ".env").write_text("BRIDGE_ENV=development\nBRIDGE_POLL_INTERVAL=nope\n")
    result = run_cli("routes", env_overrides={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "BRIDGE_POLL_INTERVAL" in result.stderr
