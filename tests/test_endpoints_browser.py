"""The endpoint pages in headless Chromium (issue 21): rotating a secret from the page shows it once,
replaying from the page sends dead deliveries to the real receiver again; the pages pass axe-core
and fit a 375 px screen.

The app runs on 127.0.0.1 with a worker thread, the simulator as Media Intelligence and a webhook
receiver on 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from standardwebhooks import Webhook

from app.db import db
from app.models import Delivery, Endpoint
from tests.browser import (
    EXPECT_TIMEOUT_MS,
    desktop_page,
    fits_the_width,
    screenshot,
    serious_violations,
    sign_in,
)
from tests.dashboardtools import API_TOKEN
from tests.fixtures import AUTH, wait_until
from tests.receiver import Answer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

#: How long the worker thread may take to poll, deliver and retry (shared, noisy machines).
WORK_TIMEOUT = 30.0


@pytest.fixture
def page(browser) -> Iterator[Any]:
    with desktop_page(browser) as page:
        yield page


def create_endpoint(app, **body: Any) -> dict[str, Any]:
    answer = app.test_client().post("/api/v1/endpoints", json=body, headers=AUTH)
    assert answer.status_code == 201, answer.json
    return answer.json


def stored_secret(app, name: str) -> str | None:
    with app.app_context():
        return db.session.query(Endpoint).filter_by(name=name).one().secret


def delivery_states(app) -> list[tuple[str, int]]:
    with app.app_context():
        return [(d.state, d.attempt_count) for d in db.session.query(Delivery)]


def test_rotating_from_the_page_shows_the_new_secret_once(page, served, bridge_app, receiver):
    base = served.url
    first = create_endpoint(bridge_app, name="cms", type="webhook", url=receiver.url + "/hook",
                            description="<b>the CMS</b>")  # fmt: skip
    sign_in(page, base, API_TOKEN)
    page.get_by_role("link", name="Endpoints").click()
    row = page.locator("tr[data-endpoint=cms]")
    expect(row).to_contain_text("<b>the CMS</b>")  # text, not markup
    row.get_by_role("link", name="cms").click()
    expect(page.get_by_role("heading", name="Endpoint cms")).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rotate the secret").click()
    expect(page.locator(".flash--success")).to_contain_text("Secret rotated")
    field = page.get_by_label("New signing secret for cms")
    secret = field.input_value()
    assert secret.startswith("whsec_")
    assert secret != first["secret"]
    assert secret == stored_secret(bridge_app, "cms")
    assert secret not in page.url
    screenshot(page, "endpoint-rotated-1280")

    page.reload()
    expect(page.locator("#secret-shown-once")).to_be_visible()
    expect(page.get_by_label("New signing secret for cms")).to_have_count(0)
    assert secret not in page.content()


def test_replay_from_the_page_sends_dead_deliveries_again(
    page, served, bridge_app, receiver, sim_control
):
    base = served.url
    created = create_endpoint(bridge_app, name="cms", type="webhook", url=receiver.url + "/hook")
    receiver.default = Answer(500, body=b"receiver is down")
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZE_COMPLETED", "index_id": 1001})
    body = {"workspace": "ws", "project_id": "1", "asset_id": "a1",
            "targets": [{"endpoint": "cms"}]}  # fmt: skip
    registered = bridge_app.test_client().post("/api/v1/watches", json=body, headers=AUTH)
    assert registered.status_code == 201, registered.json
    # the schedule (one retry after 0.5 s) runs out: the delivery is dead after two attempts
    wait_until(lambda: delivery_states(bridge_app) == [("dead", 2)], WORK_TIMEOUT, "dead")

    sign_in(page, base, API_TOKEN)
    page.goto(f"{base}/endpoints/cms")
    expect(page.locator("[data-field=dead]")).to_have_text("1")
    delivery = page.locator("#endpoint-deliveries tbody tr")
    expect(delivery).to_have_count(1)
    expect(delivery.locator("[data-field=delivery-state]")).to_have_text("dead")
    expect(delivery).to_contain_text("HTTP 500")
    expect(delivery.get_by_role("link", name="a1")).to_have_attribute(
        "href", f"/watches/{registered.json['id']}"
    )

    receiver.default = Answer(200)
    page.get_by_label("Which ended deliveries").select_option("dead")
    page.get_by_role("button", name="Replay", exact=True).click()
    expect(page.locator(".flash--success")).to_contain_text("1 delivery queued")
    wait_until(lambda: delivery_states(bridge_app) == [("succeeded", 3)], WORK_TIMEOUT, "resent")
    ids = {request.headers["webhook-id"] for request in receiver.requests}
    assert (len(receiver.requests), len(ids)) == (3, 1)  # the same event, sent again
    payload = Webhook(created["secret"]).verify(
        receiver.requests[-1].body, receiver.requests[-1].headers
    )
    assert payload["data"]["analysis"]["index_id"] == 1001
    page.reload()
    expect(delivery.locator("[data-field=delivery-state]")).to_have_text("succeeded")
    expect(page.locator("[data-field=dead]")).to_have_text("0")


@pytest.mark.parametrize("width", [375, 1280])
def test_the_endpoint_pages_are_accessible_and_fit_the_screen(browser, served, bridge_app, width):
    create_endpoint(bridge_app, name="cms", type="webhook",
                    url="http://127.0.0.1:9/hooks/" + "very-long-path-segment/" * 6,
                    description="Where the newsroom CMS hears about finished analyses")  # fmt: skip
    create_endpoint(bridge_app, name="chat", type="slack_webhook",
                    url="http://127.0.0.1:9/services/T000/B000/XXsecretXX")  # fmt: skip
    context = browser.new_context(viewport={"width": width, "height": 800}, reduced_motion="reduce")
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    try:
        page = context.new_page()
        sign_in(page, served.url, API_TOKEN)
        for name, path in (("endpoints", "/endpoints"), ("endpoint", "/endpoints/cms"),
                           ("endpoint-slack-webhook", "/endpoints/chat"),
                           ("register-with-endpoints", "/watches/new")):  # fmt: skip
            page.goto(served.url + path)
            expect(page.locator("main#main")).to_be_visible()
            problems = serious_violations(page)
            assert not problems, f"{name} at {width} px:\n" + "\n".join(problems)
            assert fits_the_width(page), f"{name} scrolls sideways at {width} px"
            assert "XXsecretXX" not in page.content()
            screenshot(page, f"{name}-{width}")
        page.goto(served.url + "/endpoints/cms")
        page.get_by_label("Rate limit, requests per second (optional)").fill("fast")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#rate_limit_per_second")).to_have_attribute("aria-invalid", "true")
        assert not serious_violations(page)
        assert fits_the_width(page), f"the refused edit scrolls sideways at {width} px"
        assert re.search(r"/endpoints/cms/edit$", page.url)
    finally:
        context.close()
