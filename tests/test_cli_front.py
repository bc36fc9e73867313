"""``mi-bridge --help`` and ``--version`` on a machine with no configuration at all: no variables, no
``.env``, an empty working directory. They must answer, not fail on the missing configuration."""

from __future__ import annotations

import os
import subprocess
from importlib import metadata

from tests.processes import BIN

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
    assert {"db", "demo", "worker", "watch", "simulator", "housekeep", "run"} <= listed


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
