"""The simulator's scene summaries: requested after a completed analysis, scheduled, cancelled."""

import pytest

from tests.test_simulator_workflows import PROJECT, advance, analysis_status, workflow


def summary_status(sim_upstream, asset_id):
    response = sim_upstream.request("GET", f"{PROJECT}/assets/{asset_id}/scene-summary/status")
    assert response.status_code == 200, response.text
    return response.json()["result"]


def request_summary(sim_upstream, asset_id, **options):
    return sim_upstream.request("POST", f"{PROJECT}/assets/{asset_id}/scene-summary", json=options)


def cancel_summary(sim_upstream, asset_id):
    return sim_upstream.request("POST", f"{PROJECT}/assets/{asset_id}/scene-summary/cancel")


def completed_asset(sim_control, asset_id="a1", **spec):
    sim_control.put(f"/assets/ws/1/{asset_id}", json={"status": "ANALYZE_COMPLETED", **spec})


def test_a_summary_runs_its_default_schedule(sim_control, sim_upstream):
    completed_asset(sim_control)
    assert summary_status(sim_upstream, "a1") == {
        "status": "BEFORE_SUMMARIZE",
        "summarizeStatusMessage": None,
    }
    options = {"sceneIds": ["s1", "s2"], "language": "ko"}
    started = request_summary(sim_upstream, "a1", **options)
    assert started.status_code == 200
    assert started.json()["result"] == {"assetId": "a1", "status": "WAIT_SUMMARIZE"}
    assert summary_status(sim_upstream, "a1")["status"] == "WAIT_SUMMARIZE"
    advance(sim_control, 1)
    assert summary_status(sim_upstream, "a1")["status"] == "SUMMARIZING"
    advance(sim_control, 2)
    assert summary_status(sim_upstream, "a1") == {
        "status": "SUMMARIZE_COMPLETED",
        "summarizeStatusMessage": None,
    }
    summary = workflow(sim_control, "a1")["summary"]
    assert (summary["requests"], summary["last_body"]) == (1, options)


def test_a_summary_needs_a_completed_analysis(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"wait_seconds": 5, "analyze_seconds": 5})
    for analysis in ("WAIT_ANALYZE", "ANALYZING"):
        refused = request_summary(sim_upstream, "a1")
        assert refused.status_code == 400
        assert refused.json()["code"] == "10001"
        assert analysis in refused.json()["message"]
        advance(sim_control, 5)
    advance(sim_control, 1)
    assert analysis_status(sim_upstream, "a1") == "ANALYZE_COMPLETED"
    assert request_summary(sim_upstream, "a1").status_code == 200
    assert workflow(sim_control, "a1")["summary"]["requests"] == 3


@pytest.mark.parametrize("analysis", ["ANALYZE_FAIL", "ANALYZE_CANCEL", "BEFORE_ANALYZE"])
def test_no_summary_of_an_analysis_that_did_not_complete(sim_control, sim_upstream, analysis):
    sim_control.put("/assets/ws/1/a1", json={"status": analysis})
    assert request_summary(sim_upstream, "a1").status_code == 400
    assert summary_status(sim_upstream, "a1")["status"] == "BEFORE_SUMMARIZE"


def test_one_summary_at_a_time_then_again(sim_control, sim_upstream):
    completed_asset(sim_control, summary={"wait_seconds": 0, "summarize_seconds": 4})
    assert request_summary(sim_upstream, "a1").json()["result"]["status"] == "SUMMARIZING"
    busy = request_summary(sim_upstream, "a1")
    assert (busy.status_code, busy.json()["code"]) == (409, "10409")
    advance(sim_control, 4)
    assert summary_status(sim_upstream, "a1")["status"] == "SUMMARIZE_COMPLETED"
    assert request_summary(sim_upstream, "a1", again=True).status_code == 200
    assert summary_status(sim_upstream, "a1")["status"] == "SUMMARIZING"


@pytest.mark.parametrize(
    ("outcome", "message", "expected_message"),
    [
        ("SUMMARIZE_FAIL", None, "Scene summary failure."),
        ("SUMMARIZE_FAIL", "VLM 오류", "VLM 오류"),
        ("SUMMARIZE_CANCELED", None, None),
    ],
)
def test_summary_outcomes(sim_control, sim_upstream, outcome, message, expected_message):
    summary = {"wait_seconds": 2, "summarize_seconds": 3, "outcome": outcome, "message": message}
    completed_asset(sim_control, summary=summary)
    request_summary(sim_upstream, "a1").raise_for_status()
    advance(sim_control, 4.9)
    assert summary_status(sim_upstream, "a1")["status"] == "SUMMARIZING"
    advance(sim_control, 0.1)
    assert summary_status(sim_upstream, "a1") == {
        "status": outcome,
        "summarizeStatusMessage": expected_message,
    }


def test_cancel_only_while_waiting_or_summarizing(sim_control, sim_upstream):
    completed_asset(sim_control)
    early = cancel_summary(sim_upstream, "a1")
    assert (early.status_code, early.json()["code"]) == (409, "10409")
    request_summary(sim_upstream, "a1").raise_for_status()
    cancelled = cancel_summary(sim_upstream, "a1")
    assert cancelled.json()["result"] == {"assetId": "a1", "status": "SUMMARIZE_CANCELED"}
    advance(sim_control, 60)
    assert summary_status(sim_upstream, "a1")["status"] == "SUMMARIZE_CANCELED"
    assert cancel_summary(sim_upstream, "a1").status_code == 409


def test_a_new_analysis_forgets_the_summary(sim_control, sim_upstream):
    completed_asset(sim_control)
    request_summary(sim_upstream, "a1").raise_for_status()
    advance(sim_control, 3)
    assert summary_status(sim_upstream, "a1")["status"] == "SUMMARIZE_COMPLETED"
    sim_upstream.request("POST", f"{PROJECT}/assets/a1/index").raise_for_status()
    assert summary_status(sim_upstream, "a1")["status"] == "BEFORE_SUMMARIZE"


def test_the_whole_workflow_import_analyse_summarise(sim_control, sim_upstream):
    sim_control.put(
        "/objects/media/show.mp4",
        json={
            "import_seconds": 1,
            "analysis": {"wait_seconds": 1, "analyze_seconds": 1, "summary": {"wait_seconds": 0}},
        },
    ).raise_for_status()
    imported = sim_upstream.request(
        "POST",
        f"{PROJECT}/assets/import/object-storage",
        json={"key": "show.mp4", "bucketName": "media"},
    )
    asset_id = imported.json()["result"]["assetId"]
    advance(sim_control, 1)
    assert request_summary(sim_upstream, asset_id).status_code == 400  # not analysed yet
    sim_upstream.request("POST", f"{PROJECT}/assets/{asset_id}/index").raise_for_status()
    advance(sim_control, 2)
    assert analysis_status(sim_upstream, asset_id) == "ANALYZE_COMPLETED"
    assert request_summary(sim_upstream, asset_id).json()["result"]["status"] == "SUMMARIZING"
    advance(sim_control, 2)
    assert summary_status(sim_upstream, asset_id)["status"] == "SUMMARIZE_COMPLETED"


def test_summary_endpoints_of_unknown_assets_are_404(sim_upstream):
    assert request_summary(sim_upstream, "zz").status_code == 404
    assert cancel_summary(sim_upstream, "zz").status_code == 404
    missing = sim_upstream.request("GET", f"{PROJECT}/assets/zz/scene-summary/status")
    assert missing.json() == {"error": {"errorCode": "300", "message": "Not Found"}}


def test_summary_faults(sim_control, sim_upstream):
    completed_asset(sim_control)
    sim_control.post(
        "/faults", json={"kind": "service_error", "endpoint": "summary", "status": 400}
    ).raise_for_status()
    sim_control.post("/faults", json={"kind": "malformed", "endpoint": "summary-status"})
    assert request_summary(sim_upstream, "a1").status_code == 400
    assert workflow(sim_control, "a1")["summary"]["requests"] == 0
    malformed = sim_upstream.request("GET", f"{PROJECT}/assets/a1/scene-summary/status")
    assert malformed.headers["Content-Type"].startswith("text/html")
    assert request_summary(sim_upstream, "a1").status_code == 200


@pytest.mark.parametrize(
    ("summary", "names"),
    [
        ({"outcome": "SUMMARIZE_CANCEL"}, "outcome"),
        ({"summarize_seconds": -1}, "summarize_seconds"),
        ({"analyze_seconds": 1}, "analyze_seconds"),
        ([], "summary"),
    ],
)
def test_summary_schedule_validation(sim_control, summary, names):
    response = sim_control.put("/assets/ws/1/a1", json={"summary": summary})
    assert response.status_code == 400
    assert names in response.json()["error"]
