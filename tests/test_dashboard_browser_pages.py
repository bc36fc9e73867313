"""The dashboard's pages in headless Chromium: state tabs, search and pages, stopping a watch,
retrying from "needs attention", accessibility (axe-core) and layout at 375 px and 1280 px.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from app.dashboard.listing import PAGE_SIZE
from app.db import db
from app.models import Target
from tests.browser import (
    EXPECT_TIMEOUT_MS,
    LiveServer,
    fits_the_width,
    screenshot,
    serious_violations,
    sign_in,
)
from tests.dashboardtools import API_TOKEN, dead_delivery, seed_watch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

WIDTHS = {"phone": 375, "desktop": 1280}


@pytest.fixture
def seeded(app_factory) -> dict[str, Any]:
    """An app with a page and a bit of watches, a dead delivery and a disabled target."""
    app = app_factory()
    batch = [seed_watch(app, f"clip-{n:02d}", labels={"batch": "b1"}) for n in range(PAGE_SIZE)]
    news = seed_watch(
        app, "news-5678", workspace="newsroom",
        labels={"cms_id": "abc-123", "<b>note</b>": "{{7*7}}"},
    )  # fmt: skip
    done = seed_watch(app, "done-1", state="completed", status="ANALYZE_COMPLETED")
    failed = seed_watch(app, "broken-1", state="failed", status="ANALYZE_FAIL",
                        message="영상 파싱 실패")  # fmt: skip
    dead = dead_delivery(app, failed, error="HTTP 500 from the receiver")
    gone = dead_delivery(app, done, state="failed", error="target disabled: HTTP 410")
    with app.app_context():
        target = db.session.query(Target).filter_by(watch_id=done).one()
        target.disabled, target.disabled_reason = True, "the receiver answered 410 Gone"
        db.session.commit()
    return {"app": app, "batch": batch, "news": news, "failed": failed, "dead": dead, "gone": gone}


@pytest.fixture
def site(seeded) -> Iterator[str]:
    server = LiveServer(seeded["app"]).start()
    yield server.url
    server.stop()


def new_page(browser: Any, width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 800}, reduced_motion="reduce")
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    return context.new_page()


def test_state_tabs_search_and_pages(browser, site, seeded):
    page = new_page(browser, 1280)
    sign_in(page, site, API_TOKEN)
    rows = page.locator("tbody tr[data-watch-id]")
    expect(page.locator('[data-state="all"] .tabs__count')).to_have_text(str(PAGE_SIZE + 3))
    expect(page.locator('[data-state="watching"] .tabs__count')).to_have_text(str(PAGE_SIZE + 1))
    expect(page.locator('[data-state="failed"] .tabs__count')).to_have_text("1")
    expect(rows).to_have_count(PAGE_SIZE)
    expect(page.locator(".pager__where")).to_have_text("Page 1 of 2")
    screenshot(page, "watches-top-1280", full_page=False)

    page.get_by_role("link", name=re.compile("Older")).click()
    expect(page).to_have_url(re.compile(r"\?page=2$"))
    expect(rows).to_have_count(3)
    page.get_by_role("link", name=re.compile("Newer")).click()
    expect(rows).to_have_count(PAGE_SIZE)

    page.get_by_role("link", name=re.compile(r"^Failed")).click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("broken-1")
    expect(page.locator('[data-state="failed"]')).to_have_attribute("aria-current", "page")

    page.get_by_role("link", name=re.compile(r"^All")).click()
    search = page.get_by_label(re.compile("^Search by"))
    search.fill("cms_id=abc")
    search.press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("news-5678")
    expect(rows.first).to_contain_text("<b>note</b>={{7*7}}")  # shown as text, not markup
    expect(page.locator('[data-state="all"] .tabs__count')).to_have_text("1")
    search.fill("NEWSROOM")
    search.press("Enter")
    expect(rows).to_have_count(1)
    page.get_by_role("link", name="Clear").click()
    expect(rows).to_have_count(PAGE_SIZE)


def test_stop_a_watch_and_retry_from_needs_attention(browser, site, seeded):
    page = new_page(browser, 1280)
    sign_in(page, site, API_TOKEN)
    page.goto(f"{site}/watches/{seeded['news']}")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Stop watching").click()
    expect(page.locator(".flash--success")).to_contain_text("Stopped")
    expect(page.locator("[data-field=state]")).to_contain_text("stopped")
    expect(page.get_by_role("button", name="Stop watching")).to_have_count(0)

    page.get_by_role("link", name="Needs attention").click()
    rows = page.locator("tr[data-delivery-id]")
    expect(rows).to_have_count(2)
    expect(page.get_by_text("the receiver answered 410 Gone")).to_be_visible()
    screenshot(page, "deliveries-before-retry-1280")
    rows.filter(has_text="HTTP 500 from the receiver").get_by_role("button").click()
    expect(page.locator(".flash--success")).to_contain_text(f"Delivery {seeded['dead']} is queued")
    expect(page).to_have_url(f"{site}/deliveries")
    expect(rows).to_have_count(1)


def visit_main_pages(page: Any, site: str, seeded: dict[str, Any]) -> Iterator[str]:
    """Open each main page in turn (signed in at the second); yields a name for each."""
    page.goto(site + "/login")
    yield "login"
    sign_in(page, site, API_TOKEN)
    yield "watches"
    page.goto(f"{site}/watches/{seeded['failed']}")
    yield "watch"
    page.goto(site + "/watches/new")
    page.get_by_label("Asset id").fill("not valid!")
    page.get_by_role("button", name="Register the watch").click()
    expect(page.locator("#error-summary")).to_be_focused()
    yield "register"
    page.goto(site + "/deliveries")
    yield "deliveries"


@pytest.mark.parametrize("device", list(WIDTHS))
def test_main_pages_are_accessible_and_fit_the_screen(browser, site, seeded, device):
    page = new_page(browser, WIDTHS[device])
    for name in visit_main_pages(page, site, seeded):
        problems = serious_violations(page)
        assert not problems, f"{name} at {WIDTHS[device]} px:\n" + "\n".join(problems)
        assert fits_the_width(page), f"{name} scrolls sideways at {WIDTHS[device]} px"
        expect(page.locator("main#main")).to_be_visible()
        screenshot(page, f"{name}-{WIDTHS[device]}")
