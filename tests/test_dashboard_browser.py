"""The dashboard in headless Chromium, end to end: the app on 127.0.0.1 with a worker thread, the
simulator as Media Intelligence and a real webhook receiver.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from standardwebhooks import Webhook

from tests.browser import LiveServer, desktop_page, screenshot, sign_in
from tests.dashboardtools import API_TOKEN
from tests.receiver import Answer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


@pytest.fixture
def page(browser) -> Iterator[Any]:
    with desktop_page(browser) as page:
        yield page


def register_through_the_form(page: Any, base: str, hook_url: str) -> str:
    """Fill in and send the registration form; returns the generated secret shown once."""
    page.get_by_role("link", name="Register", exact=True).click()
    page.get_by_label("Workspace").fill("ws")
    page.get_by_label("Project id").fill("1")
    page.get_by_label("Asset id").fill("a1")
    page.get_by_label("Status endpoint generation").select_option("index")
    page.get_by_label("Webhook URL", exact=True).fill(hook_url)
    page.get_by_label("Labels").fill("cms_id=abc-123\nteam=video")
    page.get_by_role("button", name="Register the watch").click()
    expect(page.get_by_role("heading", name="Watch registered")).to_be_visible()
    secret = page.get_by_label(re.compile("Secret for")).input_value()
    assert secret.startswith("whsec_")
    return secret


def test_register_watch_complete_fail_retry_and_sign_out(
    page, served, sim_control, receiver, simulator
):
    base = served.url
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZING"}).raise_for_status()
    sign_in(page, base, API_TOKEN)
    secret = register_through_the_form(page, base, receiver.url + "/hook")

    page.get_by_role("link", name="All watches").click()
    row = page.locator("tr[data-watch-id]", has_text="a1")
    expect(row).to_contain_text("ANALYZING")  # the first poll, shown without a reload
    page.evaluate("window.__marker = 1")
    receiver.default = Answer(500, body=b"receiver is down")
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZE_COMPLETED", "index_id": 1001})
    expect(row.locator("[data-cell=state] .badge")).to_have_text("completed")
    # The notification of a completed watch died (the receiver answers 500): the list says so.
    expect(row.locator("[data-trouble=dead-deliveries]")).to_have_text("⚠ 1 dead")
    expect(row).to_contain_text("ANALYZE_COMPLETED")
    expect(page.locator('[data-state="completed"] .tabs__count')).to_have_text("1")
    assert page.evaluate("window.__marker") == 1, "the page navigated instead of updating"
    page.emulate_media(reduced_motion="reduce")  # no change highlight in the picture
    screenshot(page, "live-watches-1280")

    row.get_by_role("link", name="a1").click()
    delivery = page.locator(".delivery").first
    expect(delivery.locator("[data-field=delivery-state]")).to_have_text("dead")
    expect(delivery.locator("tbody tr")).to_have_count(2)  # the schedule (0.5 s) ran out
    expect(delivery).to_contain_text("receiver is down")

    receiver.default = Answer(200)
    delivery.get_by_role("button", name=re.compile("Retry")).click()
    expect(page.locator(".flash--success")).to_contain_text("queued again")
    page.evaluate("window.__marker = 2")
    expect(delivery.locator("[data-field=delivery-state]")).to_have_text("succeeded")
    expect(delivery.locator("tbody tr")).to_have_count(3)
    expect(page.locator("#live-status")).to_contain_text("nothing more will change")
    assert page.evaluate("window.__marker") == 2, "the page navigated instead of updating"
    bodies = {request.body for request in receiver.requests}
    ids = {request.headers["webhook-id"] for request in receiver.requests}
    assert (len(receiver.requests), len(bodies), len(ids)) == (3, 1, 1)
    payload = Webhook(secret).verify(receiver.requests[-1].body, receiver.requests[-1].headers)
    assert payload["data"]["analysis"]["index_id"] == 1001
    expect(page.locator("#region-timeline")).to_contain_text("ANALYZE_COMPLETED")
    expect(page.locator("#region-timeline")).to_contain_text("final status")
    expect(page.locator("[data-field=detection-lag]")).to_contain_text(re.compile(r"\d+ m?s"))

    page.get_by_role("button", name="Send a test notification").click()
    expect(page.locator(".flash--success")).to_contain_text(
        re.compile(r"Test delivered to webhook http://127\.0\.0\.1:\d+/hook: HTTP 200 in")
    )
    screenshot(page, "live-watch-1280")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto(base + "/deliveries")
    expect(page).to_have_url(re.compile(r"/login\?next=/deliveries$"))


def test_keyboard_only_sign_in_and_cookie_flags(page, served):
    page.goto(served.url + "/login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    expect(page.locator(".skip-link")).to_be_in_viewport()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus must be visible"
    for _ in range(5):
        if page.evaluate("document.activeElement.id") == "token":
            break
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(API_TOKEN)
    page.keyboard.press("Enter")
    page.wait_for_url(served.url + "/")
    expect(page.get_by_role("heading", name="Watches", exact=True)).to_be_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link
    assert page.evaluate("document.activeElement.id") == "main"
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "mi_bridge_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["secure"] is False  # plain HTTP here; Secure over HTTPS: test_dashboard_auth


def test_a_form_post_without_csrf_token_is_refused(page, served, bridge_app, sim_control, receiver):
    from tests.dashboardtools import seed_watch

    sim_control.put("/assets/ws/1/a9", json={"status": "ANALYZING"}).raise_for_status()
    target = {"type": "webhook", "url": receiver.url + "/hook"}
    watch_id = seed_watch(bridge_app, "a9", targets=[target])
    sign_in(page, served.url, API_TOKEN)
    refused = page.request.post(f"{served.url}/watches/{watch_id}/stop", form={"x": "1"})
    assert refused.status == 400
    assert "could not be accepted" in refused.text()
    assert page.request.post(f"{served.url}/logout").status == 400
    page.goto(f"{served.url}/watches/{watch_id}")
    expect(page.locator("[data-field=state]")).to_contain_text("watching")


def test_the_form_shows_the_apis_message_for_a_private_url(page, app_factory):
    app = app_factory()  # BRIDGE_ALLOW_PRIVATE_URLS is false
    server = LiveServer(app).start()
    try:
        sign_in(page, server.url, API_TOKEN)
        page.goto(server.url + "/watches/new")
        for label, value in (("Workspace", "ws"), ("Project id", "1"), ("Asset id", "a1")):
            page.get_by_label(label).fill(value)
        page.get_by_label("Webhook URL", exact=True).fill("http://127.0.0.1:8080/hook")
        page.get_by_role("button", name="Register the watch").click()
        message = "resolves to a loopback address: 127.0.0.1"
        expect(page.locator("#webhook_url-error-1")).to_have_text(message)
        expect(page.get_by_label("Webhook URL", exact=True)).to_have_attribute(
            "aria-invalid", "true"
        )
        expect(page.locator("#error-summary")).to_be_focused()
        expect(page.get_by_label("Webhook URL", exact=True)).to_have_value(
            "http://127.0.0.1:8080/hook"
        )
        body = {"workspace": "ws", "project_id": "1", "asset_id": "a1",
                "targets": [{"type": "webhook", "url": "http://127.0.0.1:8080/hook"}]}  # fmt: skip
        api = app.test_client().post(
            "/api/v1/watches", json=body, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert [e["detail"] for e in api.get_json()["errors"]] == [message]
        screenshot(page, "register-errors-1280")
    finally:
        server.stop()
