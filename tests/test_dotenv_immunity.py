"""The suite does not depend on the developer's ``.env``: a sample of it passes from a working directory
whose ``.env`` holds hostile values (what ``cp .env.example .env`` and some editing leave behind).

The app reads ``.env`` from the working directory, so running the tests from a directory holding one
is exactly what running them from a checkout with one is, without touching the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Values that break tests that would read them: private URLs allowed, production rules, another
#: database, default targets, another generation, slow polls, silenced logs, immediate retention.
HOSTILE_DOTENV = """\
BRIDGE_ENV=production
SECRET_KEY=x
BRIDGE_API_TOKENS=someone-elses-token
DATABASE_URL=postgresql://nobody:nothing@127.0.0.1:9/nowhere
BRIDGE_ALLOW_PRIVATE_URLS=true
BRIDGE_DEFAULT_TARGETS=[{"type": "webhook", "url": "https://example.invalid/hook"}]
MI_DEFAULT_API=assets
MI_API_URL=http://127.0.0.1:9
NCP_ACCESS_KEY=wrong
NCP_SECRET_KEY=wrong
SLACK_BOT_TOKEN=xoxb-wrong
BRIDGE_POLL_INTERVAL=999
BRIDGE_POLL_MAX_INTERVAL=999
BRIDGE_RETRY_SCHEDULE=999
BRIDGE_RETENTION_DAYS=0.0001
BRIDGE_ALERT_TARGETS=[{"type": "slack_webhook", "url": "https://example.invalid/a"}]
LOG_LEVEL=CRITICAL
"""

#: A sample across the API, validation, the dashboard, the worker's ticks, deliveries and the CLI.
SAMPLE = [
    "tests/test_api_watches.py",
    "tests/test_api_validation.py",
    "tests/test_dashboard_pages.py",
    "tests/test_worker_ticks.py",
    "tests/test_delivery_webhooks.py",
    "tests/test_address_guard.py",
    "tests/test_watch_cli.py",
]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_hostile_dotenv_in_the_working_directory_changes_no_test(tmp_path):
    (tmp_path / ".env").write_text(HOSTILE_DOTENV, encoding="utf-8")
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PYTEST_")  # this run's own bookkeeping
    }
    run = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
            "-c", str(REPO / "pyproject.toml"), "--rootdir", str(REPO),
            *(str(REPO / path) for path in SAMPLE),
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    tail = "\n".join(run.stdout.splitlines()[-25:])
    assert run.returncode == 0, f"with a hostile .env in the working directory:\n{tail}"
    assert " passed" in tail
    assert "failed" not in tail
