"""The README's screenshots come from the running demo, and the demo shows nothing alarming.

``mi-bridge demo`` runs as a newcomer starts it; once every sample ended and every notification was
delivered, Chromium signs in and visits the pages the README shows. On each, the bridge-health
banner, the "Needs attention" count and the lists' trouble markers must be absent: the demo is the
first thing a user sees, and a red banner there would be a bug (it was: "No worker has been seen").

The screenshots land in ``test-artifacts/screenshots/readme-*.png``; ``scripts/readme-screenshots``
runs this test with ``MI_BRIDGE_TEST_README_SCREENSHOTS`` naming ``docs/screenshots`` to refresh the
README's copies.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.browser import EXPECT_TIMEOUT_MS, screenshot, sign_in

pytestmark = pytest.mark.slow

MI_BRIDGE = str(Path(sys.executable).with_name("mi-bridge"))
#: The pages the README shows, by screenshot name (None: the completed sample's watch page).
README_PAGES = {
    "watches": "/", "watch": None, "inbox": "/demo/inbox", "slack": "/demo/slack", "chat": "/demo/chat",
    "workflow": None,
}  # fmt: skip
#: What each page must show once the samples ended (the Korean Slack channel, the http target's
#: Japanese posts, signed with the demo's secret).
MUST_SHOW = {
    "slack": ("#demo-analyses-ko", "분석 완료 (ANALYZE_COMPLETED)"),
    "chat": ("signature verified", "clip-completes", "解析"),
}
ALARMING = {
    "the bridge-health banner": "[data-alert]",
    "the Needs attention count": "#attention-count",
    "a trouble marker in a list": "[data-trouble]",
    "a failing-upstream callout": "#last-error",
}


def _banner_value(text: str, label: str) -> str | None:
    match = re.search(rf"^\s*{label}\s+(\S+)", text, re.MULTILINE)
    return match.group(1) if match else None


def _settled(base_url: str, token: str) -> bool:
    """Every sample watch ended and every one of its deliveries succeeded."""
    headers = {"Authorization": f"Bearer {token}"}
    listing = requests.get(f"{base_url}/api/v1/watches", headers=headers, timeout=5).json()
    watches = listing["items"]
    if len(watches) < 6 or any(watch["state"] == "watching" for watch in watches):
        return False
    for watch in watches:
        detail = requests.get(
            f"{base_url}/api/v1/watches/{watch['id']}", headers=headers, timeout=5
        ).json()
        if any(delivery["state"] != "succeeded" for delivery in detail["deliveries"]):
            return False
    return True


@pytest.mark.timeout(180)
def test_the_running_demo_shows_nothing_alarming(browser, tmp_path, wait_until):
    log = tmp_path / "demo.log"
    with log.open("w") as sink:
        demo = subprocess.Popen(
            [MI_BRIDGE, "demo", "--port", "0", "--simulator-port", "0"],
            cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    context = None
    try:
        wait_until(lambda: "API token" in log.read_text(), timeout=60, message="the demo's banner")
        banner = log.read_text()
        base_url = (_banner_value(banner, "Dashboard") or "").rstrip("/")
        token = _banner_value(banner, "API token") or ""
        assert base_url.startswith("http://127.0.0.1:"), banner
        wait_until(lambda: _settled(base_url, token), timeout=120, message="the samples to end")
        items = requests.get(
            f"{base_url}/api/v1/watches", headers={"Authorization": f"Bearer {token}"}, timeout=5
        ).json()["items"]
        completed = next(watch["id"] for watch in items if watch["asset_id"] == "clip-completes")
        workflow = next(watch for watch in items if watch["workflow"] is not None)
        assert (workflow["state"], workflow["stage"]) == ("completed", "done")
        assert workflow["workflow"]["summary"]["status"] == "SUMMARIZE_COMPLETED"
        watch_pages = {"watch": completed, "workflow": workflow["id"]}
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        page = context.new_page()
        sign_in(page, base_url, token)
        taken = []
        for name, path in README_PAGES.items():
            page.goto(base_url + (path or f"/watches/{watch_pages[name]}"))
            for what, selector in ALARMING.items():
                assert page.locator(selector).count() == 0, f"{what} on the demo's {name} page"
            assert "{{" not in page.content(), f"an unrendered template marker on {name}"
            for text in MUST_SHOW.get(name, ()):
                assert text in page.content(), f"{text!r} missing on the demo's {name} page"
            taken.append(screenshot(page, f"readme-{name}", full_page=False))
    finally:
        if context is not None:
            context.close()
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=20)
        finally:
            if demo.poll() is None:
                demo.kill()
    assert "Traceback" not in log.read_text()
    assert all(path.stat().st_size > 10_000 for path in taken)
    destination = os.environ.get("MI_BRIDGE_TEST_README_SCREENSHOTS")
    if destination:
        for path in taken:
            shutil.copyfile(path, Path(destination) / path.name.removeprefix("readme-"))
