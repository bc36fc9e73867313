"""Visible trouble in headless Chromium: a watch whose upstream fails, and "Needs attention" with a
dead delivery and deliveries held by failing Slack credentials. The live product (the app on
127.0.0.1 with a worker thread, the simulator, a real receiver and the fake Slack) is what the
README's screenshots are taken from (``test-artifacts/screenshots/``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import LiveServer, WorkerThread, desktop_page, screenshot, sign_in
from tests.dashboardtools import API_TOKEN
from tests.fake_slack import TOKEN
from tests.fixtures import AUTH
from tests.receiver import Answer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
def page(browser) -> Iterator[Any]:
    with desktop_page(browser) as page:
        yield page


@pytest.fixture
def served(app_factory, simulator, fake_slack) -> Iterator[tuple[LiveServer, Any]]:
    app = app_factory(
        MI_API_URL=simulator.url, NCP_ACCESS_KEY="test-access-key",
        NCP_SECRET_KEY="test-secret-key", MI_DEFAULT_API="index", BRIDGE_POLL_INTERVAL="0.2",
        BRIDGE_POLL_MAX_INTERVAL="1", BRIDGE_RETRY_SCHEDULE="0.5", BRIDGE_LEASE_SECONDS="5",
        BRIDGE_ALLOW_PRIVATE_URLS="true", SLACK_API_URL=fake_slack.api_url, SLACK_BOT_TOKEN=TOKEN,
    )  # fmt: skip
    server = LiveServer(app).start()
    worker = WorkerThread(app).start()
    yield server, app
    worker.stop()
    server.stop()


def register(app: Any, asset_id: str, targets: list[dict[str, Any]]) -> str:
    body = {"workspace": "media", "project_id": "1042", "asset_id": asset_id, "targets": targets}
    body["labels"] = {"cms_id": f"cms-{asset_id}"}
    response = app.test_client().post("/api/v1/watches", json=body, headers=AUTH)
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_a_failing_upstream_and_needs_attention_as_people_see_them(
    page, served, sim_control, receiver, fake_slack, wait_until
):
    server, app = served
    base = server.url
    sim_control.put("/assets/media/1042/lecture-0412", json={"status": "ANALYZING"})
    sim_control.post(
        "/faults", json={"kind": "http_error", "status": 503, "asset_id": "lecture-0412",
                         "count": 10_000},
    ).raise_for_status()  # fmt: skip
    failing = register(app, "lecture-0412", [{"type": "webhook", "url": f"{receiver.url}/hook"}])
    sign_in(page, base, API_TOKEN)

    row = page.locator(f'tr[data-watch-id="{failing}"]')
    expect(row.locator("[data-trouble=poll-error]")).to_contain_text("transient 503")
    row.get_by_role("link", name="lecture-0412").click()
    callout = page.locator("#last-error")
    expect(callout).to_contain_text("HTTP 503")
    expect(callout).to_contain_text(re.compile(r"The last [3-9] polls failed"))
    request_id = page.locator("[data-field=last-error-request-id]")
    expect(request_id).to_have_text(re.compile(r"^[0-9a-f-]{36}$"))
    expect(page.get_by_text("No answer yet")).to_be_visible()
    page.emulate_media(reduced_motion="reduce")
    screenshot(page, "watch-failing-upstream")

    # A receiver that always fails, and Slack refusing the bot token.
    receiver.route = {"/down": Answer(500, body=b"internal error")}
    sim_control.put("/assets/media/1042/promo-77", json={"status": "ANALYZE_COMPLETED"})
    register(app, "promo-77", [{"type": "webhook", "url": f"{receiver.url}/down"}])
    fake_slack.revoke()
    sim_control.put("/assets/media/1042/keynote-3", json={"status": "ANALYZE_COMPLETED"})
    register(app, "keynote-3", [{"type": "slack", "channel": "general"}])

    page.get_by_role("link", name="Needs attention").click()

    def counted_two() -> bool:  # the page does not update itself: look again, as a person would
        page.reload()
        count = page.locator("#attention-count")
        return count.count() == 1 and count.inner_text() == "2"

    wait_until(counted_two, 30, "Needs attention counts the dead and the held delivery")
    expect(page.locator("#held")).to_contain_text("Slack rejects the bridge's bot token")
    expect(page.locator("[data-held-delivery-id]")).to_have_count(1)
    dead = page.locator("tr[data-delivery-id]")
    expect(dead).to_have_count(1)
    expect(dead).to_contain_text("answered HTTP 500")
    expect(dead).to_contain_text("gave up")
    screenshot(page, "needs-attention")
