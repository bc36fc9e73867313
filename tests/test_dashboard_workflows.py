"""Workflows on the dashboard (issue 23): the form starts one (import, analyse, summarise, a stalled
threshold) with the API's rules field by field, and the watch page and the list show its stages,
against the simulator tick by tick (as ``tests/test_workflows.py`` runs them).
"""

from __future__ import annotations

import html as html_module
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from werkzeug.datastructures import MultiDict

from app.dashboard.stages import stage_steps, timeline_items
from app.dashboard.watch_form import field_for_pointer, read_form
from tests.dashboardtools import field_errors, sign_in
from tests.workflowtools import (
    ANALYSIS,
    BUCKET,
    KEY,
    run_until_ended,
)
from tests.workflowtools import declare_object as declare

HOOK = "https://hooks.example.test/in"
DEFAULT_EVENTS = [
    "analysis.completed", "analysis.failed", "analysis.cancelled", "watch.expired", "watch.error",
]  # fmt: skip
MOMENT = re.compile(r'data-moment="([^"]+)"')
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def page_client(bridge):
    """A dashboard client of the ``bridge``, signed in; ``.csrf`` is its form token."""
    client = bridge.app.test_client()
    client.csrf = sign_in(client)
    return client


def declare_object(sim_control, key: str = KEY, **summary: str) -> None:
    analysis = {**ANALYSIS, "summary": {**ANALYSIS["summary"], **summary}}
    declare(sim_control, key, analysis=analysis)


def form_data(csrf: str, **fields: object) -> MultiDict:
    data = MultiDict(
        {"csrf_token": csrf, "workspace": "ws", "project_id": "1", "webhook_url": HOOK}
    )
    for event in fields.pop("events", DEFAULT_EVENTS):  # type: ignore[attr-defined]
        data.add("events", event)
    for name, value in fields.items():
        data[name] = value
    return data


def register_through_form(client, **fields: object) -> str:
    response = client.post("/watches/new", data=form_data(client.csrf, **fields))
    assert response.status_code == 303, field_errors(response.get_data(as_text=True))
    (watch_id,) = re.findall(
        r"/watches/(wch_[0-9A-Z]{26})/registered", response.headers["Location"]
    )
    return watch_id


def text_of(html: str, field: str) -> str:
    """The text of the element with ``data-field="field"`` (tags dropped, spaces collapsed)."""
    match = re.search(rf'<(\w+)[^>]* data-field="{field}"[^>]*>(.*?)</\1>', html, re.S)
    assert match, f"no {field} on the page"
    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", match.group(2))).split())


def steps_of(html: str) -> list[tuple[str, str]]:
    return re.findall(r'data-stage="([a-z]+)" data-step="([a-z]+)"', html)


# --- the form ------------------------------------------------------------------------------------


def test_the_form_registers_an_import_analyse_summarise_workflow(bridge, page_client):
    watch_id = register_through_form(
        page_client, import_bucket_name=BUCKET, import_key=KEY, analyze="1",
        analyze_options='{"sceneRange": "ALL", "analysisPersonCount": 2}', summarize="1",
        summarize_options="",
    )  # fmt: skip
    watch = bridge.watch(watch_id)
    assert (watch["stage"], watch["asset_id"], watch["api"]) == ("importing", None, "index")
    assert watch["workflow"] == {
        "import": {"bucket_name": BUCKET, "key": KEY, "status": None, "message": None,
                   "metadata": None},
        "analyze": {"sceneRange": "ALL", "analysisPersonCount": 2},
        "summarize": {},
        "summary": {"status": None, "message": None},
        "last_error": None,
    }  # fmt: skip
    assert {"asset.imported", "asset.import_failed", "summary.completed"} <= set(watch["events"])
    assert watch["stalled_after_seconds"] is None
    registered = page_client.get(f"/watches/{watch_id}/registered").get_data(as_text=True)
    assert f"(importing {KEY})" in registered
    assert "The bridge starts the work asked for" in registered


def test_a_stalled_threshold_subscribes_analysis_stalled(bridge, page_client):
    watch_id = register_through_form(page_client, asset_id="a-slow", stalled_after_seconds="30")
    watch = bridge.watch(watch_id)
    assert watch["stalled_after_seconds"] == 30
    assert watch["events"] == [*DEFAULT_EVENTS, "analysis.stalled"]
    assert watch["workflow"] is None  # a threshold alone starts no work
    page = page_client.get(f"/watches/{watch_id}").get_data(as_text=True)
    assert text_of(page, "stalled-after").startswith("30 s of an unchanged status")


def test_bad_options_and_a_bad_bucket_are_field_errors(page_client):
    response = page_client.post("/watches/new", data=form_data(
        page_client.csrf, import_bucket_name="Not_A_Bucket", import_key="k\u0001",
        analyze="1", analyze_options='{"sceneRange": ALL}',
        summarize_options='["x"]', stalled_after_seconds="0.5",
    ))  # fmt: skip
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    shown = field_errors(page)
    assert set(shown) == {
        "import_bucket_name", "import_key", "analyze_options", "summarize_options",
        "stalled_after_seconds",
    }  # fmt: skip
    assert shown["import_bucket_name"][0].startswith("must be an Object Storage bucket name")
    assert shown["import_key"] == ["must not contain control characters (a newline, a tab...)"]
    (bad_json,) = shown["analyze_options"]
    assert bad_json.startswith('must be a JSON object, e.g. {"sceneRange": "ALL"}: Expecting value')
    assert "(line 1, column 16)" in bad_json
    assert shown["summarize_options"] == [
        "tick “Request a scene summary after it” to send these options, or clear them"]  # fmt: skip
    assert 'id="analyze_options" name="analyze_options"' in page
    assert 'aria-describedby="analyze_options-hint analyze_options-error-1"' in page
    assert "{&#34;sceneRange&#34;: ALL}" in page  # kept as typed, for correction
    assert re.search(r'id="analyze" name="analyze" value="1" checked', page)
    assert '<a href="#import_bucket_name">' in page  # the summary links to the field


def test_the_apis_workflow_refusals_land_on_their_fields(page_client):
    def errors(**fields: object) -> dict[str, list[str]]:
        response = page_client.post("/watches/new", data=form_data(page_client.csrf, **fields))
        assert response.status_code == 422
        return field_errors(response.get_data(as_text=True))

    assert errors() == {"asset_id": ["required"]}
    assert errors(asset_id="a1", import_bucket_name=BUCKET, import_key=KEY) == {
        "asset_id": ["give exactly one of asset_id and import"]}  # fmt: skip
    assert errors(import_bucket_name=BUCKET) == {"import_key": ["required"]}
    assert errors(import_bucket_name=BUCKET, import_key=KEY, summarize="1") == {
        "summarize_options": ["an imported asset needs analyze first"]}  # fmt: skip
    assert errors(asset_id="a1", analyze="1", analyze_options='["ALL"]') == {
        "analyze_options": [
            "must be an object of options (passed to NCP as given; {} for none)"]}  # fmt: skip
    assert errors(asset_id="a1", analyze="1", analyze_options='{"x": NaN}') == {
        "analyze_options": ['must be a JSON object, e.g. {"sceneRange": "ALL"}: NaN is not JSON']
    }


def test_the_form_body_and_pointers_of_a_workflow():
    form = read_form(MultiDict({
        "workspace": "ws", "project_id": "1", "import_bucket_name": " media-in ",
        "import_key": "videos/a.mp4", "analyze": "1", "analyze_options": "\n",
        "summarize": "1", "summarize_options": '{"lang": "ko"}', "stalled_after_seconds": "90",
    }), ["analysis.completed", "analysis.stalled"])  # fmt: skip
    assert form.errors == {}
    assert {key: form.body[key] for key in ("import", "analyze", "summarize", "events")} == {
        "import": {"bucket_name": "media-in", "key": "videos/a.mp4"},
        "analyze": {}, "summarize": {"lang": "ko"},
        "events": ["analysis.completed", "analysis.stalled"],  # not added twice
    }  # fmt: skip
    assert form.body["stalled_after_seconds"] == 90
    assert [field_for_pointer(p, []) for p in (
        "#/import", "#/import/bucket_name", "#/import/key", "#/analyze", "#/analyze/x",
        "#/summarize", "#/stalled_after_seconds",
    )] == [
        "import_bucket_name", "import_bucket_name", "import_key", "analyze_options",
        "analyze_options", "summarize_options", "stalled_after_seconds",
    ]  # fmt: skip


# --- the watch page and the list -----------------------------------------------------------------


def test_the_watch_page_shows_the_stages_of_a_workflow_run_to_its_end(
    bridge, page_client, sim_control, sim_advance
):
    declare_object(sim_control)
    watch_id = register_through_form(
        page_client, import_bucket_name=BUCKET, import_key=KEY, analyze="1",
        analyze_options='{"sceneRange": "ALL"}', summarize="1",
    )  # fmt: skip
    before = page_client.get(f"/watches/{watch_id}").get_data(as_text=True)
    assert text_of(before, "stage") == "importing"
    assert steps_of(before) == [("importing", "current"), ("analyzing", "next"),
                                ("summarizing", "next"), ("done", "next")]  # fmt: skip
    assert MOMENT.findall(before) == [f"Importing {BUCKET}/{KEY}"]
    assert f'<h1>Asset <code class="asset-name">(importing {KEY})</code></h1>' in before
    assert text_of(before, "summary-status") == "not requested yet"

    ended = run_until_ended(bridge, sim_advance, watch_id)
    assert (ended["state"], ended["stage"]) == ("completed", "done")
    page = page_client.get(f"/watches/{watch_id}").get_data(as_text=True)
    assert text_of(page, "stage") == "done"
    assert steps_of(page) == [("importing", "passed"), ("analyzing", "passed"),
                              ("summarizing", "passed"), ("done", "current")]  # fmt: skip
    assert f'<h1>Asset <code class="asset-name">{ended["asset_id"]}</code></h1>' in page
    assert text_of(page, "import-object") == f"{BUCKET}/{KEY}"
    imported = ended["workflow"]["import"]
    assert imported["message"]
    assert text_of(page, "import-status") == f"COMPLETED {imported['message']}"
    assert text_of(page, "analyze-options") == '{"sceneRange": "ALL"}'
    assert text_of(page, "summary-status") == "SUMMARIZE_COMPLETED"
    assert 'id="workflow-error"' not in page
    # The timeline: the moments in order, with the analysis's statuses between them.
    timeline = page[page.index('id="timeline-title"') : page.index("<h3>Detection</h3>")]
    assert MOMENT.findall(timeline) == [
        "Imported", "Analysis requested", "Summary requested", "Summary completed"]  # fmt: skip
    order = [timeline.index(text) for text in (
        'data-moment="Imported"', f"as asset {ended['asset_id']}", 'data-moment="Analysis requested"',
        "<code>ANALYZE_COMPLETED</code>", 'data-moment="Summary requested"',
        'data-moment="Summary completed"', "Ended",
    )]  # fmt: skip
    assert order == sorted(order)
    assert "final status" in timeline  # the analysis ended before the summary did
    live = page_client.get(f"/watches/{watch_id}/live")
    assert 'id="region-workflow"' in live.get_data(as_text=True)


def test_a_failing_call_and_a_failed_import_show_on_the_page(bridge, page_client, sim_advance):
    bridge.fault(endpoint="import", count=1, kind="http_error", status=503)
    watch_id = register_through_form(
        page_client, import_bucket_name=BUCKET, import_key="missing.mp4", analyze="1"
    )
    bridge.tick()  # the import call answers 503: retried later
    assert bridge.watch(watch_id)["workflow"]["last_error"]
    trouble = page_client.get(f"/watches/{watch_id}").get_data(as_text=True)
    assert 'id="workflow-error"' in trouble
    assert "503" in text_of(trouble, "workflow-last-error")

    ended = run_until_ended(bridge, sim_advance, watch_id)
    assert (ended["state"], ended["reason"]) == ("failed", "import_failed")
    page = page_client.get(f"/watches/{watch_id}").get_data(as_text=True)
    assert steps_of(page) == [("importing", "ended"), ("analyzing", "skipped"), ("done", "current")]
    assert text_of(page, "import-status").startswith("FILE_NOT_EXIST")
    assert MOMENT.findall(page) == ["Import failed"]
    assert 'id="workflow-error"' not in page  # a later call succeeded
    assert "Waiting for the first answer" not in page  # nothing was ever polled


def test_a_failed_summary_shows_its_message(bridge, page_client, sim_control, sim_advance):
    declare_object(sim_control, outcome="SUMMARIZE_FAIL", message="요약 실패")
    watch_id = register_through_form(
        page_client, import_bucket_name=BUCKET, import_key=KEY, analyze="1", summarize="1",
        summarize_options='{"lang": "ko"}',
    )  # fmt: skip
    assert run_until_ended(bridge, sim_advance, watch_id)["reason"] == "summary_failed"
    page = page_client.get(f"/watches/{watch_id}").get_data(as_text=True)
    assert text_of(page, "summary-status") == "SUMMARIZE_FAIL 요약 실패"
    assert text_of(page, "summarize-options") == '{"lang": "ko"}'
    assert steps_of(page)[-2:] == [("summarizing", "ended"), ("done", "current")]
    assert MOMENT.findall(page)[-2:] == ["Summary requested", "Summary failed"]
    assert 'timeline__item--trouble" data-moment="Summary failed"' in page


def test_the_list_shows_the_object_an_import_brings(bridge, page_client):
    watch_id = register_through_form(page_client, import_bucket_name=BUCKET, import_key=KEY)
    plain_id = register_through_form(page_client, asset_id="a-plain")
    listing = page_client.get("/").get_data(as_text=True)
    row = re.search(rf'<tr data-watch-id="{watch_id}">.*?</tr>', listing, re.S)
    assert row, "the importing watch is not listed"
    assert f'class="asset-name">(importing {KEY})</a>' in row.group(0)
    assert 'data-cell="stage">importing</span>' in row.group(0)
    found = page_client.get("/", query_string={"q": "show-01"}).get_data(as_text=True)
    assert watch_id in found
    assert plain_id not in found
    plain = re.search(rf'<tr data-watch-id="{plain_id}">.*?</tr>', listing, re.S)
    assert plain
    assert 'class="asset-name">a-plain</a>' in plain.group(0)
    assert 'data-cell="stage"' not in plain.group(0)  # a plain watch has no stage to tell


# --- the pure parts ------------------------------------------------------------------------------


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def workflow_row(**fields):
    values = {"import_bucket": None, "import_key": None, "analyze_options": None,
              "summarize_options": None, "imported_asset_id": None, "import_status": None,
              "import_message": None, "summary_status": None, "summary_message": None,
              "last_error": None}  # fmt: skip
    return SimpleNamespace(**{**values, **fields})


def watch_row(**fields):
    values = {"state": "watching", "stage": None, "created_at": T0, "polls_from": None,
              "finished_at": None, "updated_at": T0, "history": [], "api": "index"}  # fmt: skip
    return SimpleNamespace(**{**values, **fields})


def test_the_stages_of_a_plain_watch_and_of_a_summary_that_failed():
    plain = watch_row(state="completed", finished_at=at(9))
    assert [(s.stage, s.state) for s in stage_steps(plain, None)] == [
        ("analyzing", "passed"), ("done", "current")]  # fmt: skip
    summarize = workflow_row(summarize_options={})
    failed = watch_row(state="failed", stage="summarizing", finished_at=at(9))
    assert [(s.stage, s.state) for s in stage_steps(failed, summarize)] == [
        ("analyzing", "passed"), ("summarizing", "ended"), ("done", "current")]  # fmt: skip


def test_a_summary_only_watch_shows_its_analysis_from_registration():
    change = SimpleNamespace(status="ANALYZE_COMPLETED", api="index", observed_at=at(5),
                             message=None, index_id=3)  # fmt: skip
    watch = watch_row(stage="summarizing", history=[change])
    workflow = workflow_row(summarize_options={"lang": "ko"}, summary_status="SUMMARIZING")
    items = timeline_items(watch, workflow, [], now=at(20))
    described = [getattr(item, "what", None) or item.status for item in items]
    assert described == [None, "ANALYZE_COMPLETED", "Summary requested", "Summarizing"]
    assert items[1].final  # the analysis ended when the summary began
    assert items[-1].ongoing
    assert items[-1].detail == "status SUMMARIZING"


# --- layout in a browser -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("width", [375, 1280])
def test_workflow_pages_are_accessible_and_fit_the_screen(
    browser, bridge, page_client, sim_control, sim_advance, width
):
    from playwright.sync_api import expect

    from tests.browser import (
        EXPECT_TIMEOUT_MS,
        LiveServer,
        fits_the_width,
        screenshot,
        serious_violations,
    )
    from tests.browser import sign_in as sign_in_browser
    from tests.fixtures import API_TOKEN

    long_key = "videos/" + "a-very-long-object-key-without-breaks-" * 6 + ".mp4"
    declare_object(sim_control)
    done = register_through_form(
        page_client, import_bucket_name=BUCKET, import_key=KEY, analyze="1",
        analyze_options='{"sceneRange": "ALL"}', summarize="1",
    )  # fmt: skip
    run_until_ended(bridge, sim_advance, done)
    importing = register_through_form(page_client, import_bucket_name=BUCKET, import_key=long_key)
    server = LiveServer(bridge.app).start()
    context = browser.new_context(viewport={"width": width, "height": 800}, reduced_motion="reduce")
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in_browser(page, server.url, API_TOKEN)
        expect(page.locator(f'tr[data-watch-id="{importing}"]')).to_contain_text("(importing")
        for name, path in (("list", "/"), ("done", f"/watches/{done}"),
                           ("importing", f"/watches/{importing}")):  # fmt: skip
            page.goto(server.url + path)
            expect(page.locator("main#main")).to_be_visible()
            assert not serious_violations(page), (name, serious_violations(page))
            assert fits_the_width(page), f"{name} scrolls sideways at {width} px"
            screenshot(page, f"workflow-{name}-{width}")
        expect(page.locator('[aria-current="step"]')).to_have_text(re.compile("importing"))
        page.goto(server.url + "/watches/new")
        page.get_by_label("Bucket").fill("Bad_Bucket")
        page.get_by_label("Object key").fill(KEY)
        page.get_by_label("Request an analysis").check()
        page.get_by_label("Options of the analysis request (JSON, optional)").fill("{oops")
        page.get_by_label("Report a stalled analysis after N seconds (optional)").fill("0")
        page.get_by_role("button", name="Register the watch").click()
        expect(page.locator("#error-summary")).to_be_focused()
        expect(page.locator("#analyze_options-error-1")).to_contain_text("must be a JSON object")
        expect(page.locator("#import_bucket_name-error-1")).to_be_visible()
        expect(page.locator("#stalled_after_seconds-error-1")).to_be_visible()
        assert not serious_violations(page), serious_violations(page)
        assert fits_the_width(page), f"the form scrolls sideways at {width} px"
        screenshot(page, f"workflow-register-{width}")
    finally:
        context.close()
        server.stop()
