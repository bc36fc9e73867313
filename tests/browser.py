"""What the browser tests of the dashboard share: the app served on 127.0.0.1, a worker thread,
headless Chromium (Debian's ``chromium`` package, never a downloaded build) driven by Playwright,
an axe-core check (the ``axe.min.js`` shipped in ``axe-playwright-python``) and screenshots.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.servers import ServerThread

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
#: How long a browser expectation may wait for the page (a worker tick, a live update).
EXPECT_TIMEOUT_MS = 30_000  # shared, noisy machines; expectations return as soon as true
WORKER_TICK_SECONDS = 0.2
HEARTBEAT_EVERY_TICKS = 5


def launch_chromium(playwright: Any) -> Any:
    """Headless Chromium from the distribution; fails (never skips) when it is not installed."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class LiveServer:
    """``app`` served by werkzeug on 127.0.0.1 (a free port), one thread per request."""

    def __init__(self, app: Flask) -> None:
        self.server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        self._serving = ServerThread(self.server, poll_interval=0.5)
        self.url = self._serving.url

    def start(self) -> LiveServer:
        self._serving.start()
        return self

    def stop(self) -> None:
        self._serving.stop()


class WorkerThread:
    """The worker's ticks on a background thread: poll, deliver, and a heartbeat now and then.

    Ticks run every ``WORKER_TICK_SECONDS`` (the stop event's wait is the ticker, as APScheduler's
    interval is in the real worker). An exception ends the thread and fails the test.
    """

    def __init__(self, app: Flask) -> None:
        from app.worker.runtime import WorkerRuntime

        self.runtime = WorkerRuntime.from_app(app, kind="embedded")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-worker", daemon=True)

    def _run(self) -> None:
        from app.worker.delivery import deliver_once
        from app.worker.heartbeat import beat
        from app.worker.polling import poll_once

        ticks = 0
        while not self._stop.is_set():
            if ticks % HEARTBEAT_EVERY_TICKS == 0:
                beat(self.runtime)
            poll_once(self.runtime)
            deliver_once(self.runtime)
            ticks += 1
            self._stop.wait(WORKER_TICK_SECONDS)

    def start(self) -> WorkerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.runtime.stop.set()
        self._thread.join(timeout=20)
        self.runtime.close()


@contextlib.contextmanager
def desktop_page(browser: Any) -> Iterator[Any]:
    """A page in a fresh 1280x900 context, with the shared expectation timeout; closed after."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Any, base_url: str, token: str) -> None:
    """Sign in through the form (mouse and keyboard alike) and land on the watch list."""
    page.goto(base_url + "/login")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base_url + "/")


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the current page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} "
        f"at {[node['target'] for node in violation['nodes']][:3]}"
        for violation in results.response["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def fits_the_width(page: Any) -> bool:
    """True when the page needs no horizontal scrolling at the current viewport width."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot (the whole page, or what the viewport shows) as
    ``test-artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
