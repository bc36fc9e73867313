"""A malformed variable stops ``mi-bridge db upgrade`` with exit 2 and one line naming it.

The console-script cases run as parallel subprocesses (one module fixture) to keep the suite fast.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import ConfigError
from tests.watchtools import secret_of

MI_BRIDGE = str(Path(sys.executable).with_name("mi-bridge"))
_CONFIG_PREFIXES = ("BRIDGE_", "MI_", "NCP_", "SLACK_")
_CONFIG_NAMES = {"DATABASE_URL", "SECRET_KEY", "LOG_LEVEL", "PORT"}

SECRETLESS_WEBHOOK = json.dumps([{"type": "webhook", "url": "https://93.184.216.34/hook"}])
BAD_SECRET = "whsec_" + "x" * 10
BAD_SECRET_WEBHOOK = json.dumps(
    [{"type": "webhook", "url": "https://93.184.216.34/hook", "secret": BAD_SECRET}]
)
DEV = {"BRIDGE_ENV": "development"}
CASES = {
    "poll interval": ("BRIDGE_POLL_INTERVAL", {**DEV, "BRIDGE_POLL_INTERVAL": "often"}),
    "secretless default webhook": (
        "BRIDGE_DEFAULT_TARGETS",
        {**DEV, "BRIDGE_DEFAULT_TARGETS": SECRETLESS_WEBHOOK},
    ),
    "malformed default secret": (
        "BRIDGE_DEFAULT_TARGETS",
        {**DEV, "BRIDGE_DEFAULT_TARGETS": BAD_SECRET_WEBHOOK},
    ),
    "production secret": ("SECRET_KEY", {"BRIDGE_ENV": "production", "BRIDGE_API_TOKENS": "t"}),
    "short production secret": (
        "SECRET_KEY",
        {"BRIDGE_ENV": "production", "SECRET_KEY": "k" * 31, "BRIDGE_API_TOKENS": "t" * 24},
    ),
    "short production token": (
        "BRIDGE_API_TOKENS",
        {"BRIDGE_ENV": "production", "SECRET_KEY": "k" * 32, "BRIDGE_API_TOKENS": "t" * 23},
    ),
}


def clean_environment():
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith("MI_BRIDGE_TEST_")
        or not (name.startswith(_CONFIG_PREFIXES) or name in _CONFIG_NAMES)
    }


@pytest.fixture(scope="module")
def upgrade_results(tmp_path_factory):
    """``mi-bridge db upgrade`` run once per case, all at the same time: case -> (result, db path)."""
    running = {}
    for case, (_variable, variables) in CASES.items():
        folder = tmp_path_factory.mktemp("startup")
        database = folder / "bridge.db"
        env = {**clean_environment(), "DATABASE_URL": f"sqlite:///{database}", **variables}
        process = subprocess.Popen(
            [MI_BRIDGE, "db", "upgrade"],
            env=env,
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        running[case] = (process, database)
    results = {}
    for case, (process, database) in running.items():
        stdout, stderr = process.communicate(timeout=60)
        results[case] = (process.returncode, stdout, stderr, database)
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_variable_stops_db_upgrade_with_one_line(upgrade_results, case):
    variable = CASES[case][0]
    returncode, _stdout, stderr, database = upgrade_results[case]
    assert returncode == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"mi-bridge: configuration error: {variable}: ")
    assert not database.exists()  # stopped before touching the database


def test_a_secret_in_a_bad_variable_is_not_echoed(upgrade_results):
    stderr = upgrade_results["malformed default secret"][2]
    assert "BRIDGE_DEFAULT_TARGETS" in stderr
    assert BAD_SECRET not in stderr


# --- the same rules in-process (create_app) -------------------------------------------------------


def test_a_default_webhook_target_without_secret_is_a_config_error(app_factory):
    with pytest.raises(ConfigError) as raised:
        app_factory(BRIDGE_DEFAULT_TARGETS=SECRETLESS_WEBHOOK)
    assert raised.value.variable == "BRIDGE_DEFAULT_TARGETS"
    assert "secret" in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1


def test_default_targets_pass_the_address_guard(app_factory, resolver):
    resolver.table["intranet.test"] = ["10.0.0.8"]
    private = json.dumps(
        [{"type": "webhook", "url": "https://intranet.test/h", "secret": secret_of(32)}]
    )
    with pytest.raises(ConfigError) as raised:
        app_factory(BRIDGE_DEFAULT_TARGETS=private)
    assert raised.value.variable == "BRIDGE_DEFAULT_TARGETS"
    assert app_factory(BRIDGE_DEFAULT_TARGETS=private, BRIDGE_ALLOW_PRIVATE_URLS="true")


@pytest.mark.parametrize(
    "value",
    [
        "{}",
        '"webhook"',
        json.dumps([{"type": "pager", "number": "1"}]),
        json.dumps([{"type": "slack"}]),
        json.dumps([{"type": "slack", "channel": "C1"}] * 11),
    ],
)
def test_malformed_default_targets_are_config_errors(app_factory, value):
    with pytest.raises(ConfigError) as raised:
        app_factory(BRIDGE_DEFAULT_TARGETS=value)
    assert raised.value.variable == "BRIDGE_DEFAULT_TARGETS"
