"""The simulator's workflow endpoints: import from Object Storage, analysis requests and their
options, index refusals, and the schedule clock the control API moves (no waiting)."""

import pytest

PROJECT = "/api/v1/workspaces/ws/projects/1"
IMPORT = f"{PROJECT}/assets/import/object-storage"
META = {"resolution": "1280x720", "durationMs": 90_000, "size": 2_000_000, "format": "MOV"}


def advance(sim_control, seconds):
    """Move the simulator's schedule clock forward."""
    response = sim_control.post("/clock/advance", json={"seconds": seconds})
    response.raise_for_status()
    return response.json()


def start_import(sim_upstream, key="videos/clip.mp4", bucket="media"):
    response = sim_upstream.request("POST", IMPORT, json={"key": key, "bucketName": bucket})
    assert response.status_code == 200, response.text
    asset_id = response.json()["result"]["assetId"]
    assert type(asset_id) is int  # an integer, not a string or a boolean
    return asset_id


def import_status(sim_upstream, asset_id):
    response = sim_upstream.request("GET", f"{PROJECT}/assets/{asset_id}/import-status")
    assert response.status_code == 200, response.text
    return response.json()["result"]


def analysis_status(sim_upstream, asset_id):
    return sim_upstream.status(str(asset_id)).json()["result"]["status"]


def request_index(sim_upstream, asset_id, **options):
    return sim_upstream.request("POST", f"{PROJECT}/assets/{asset_id}/index", json=options)


def workflow(sim_control, asset_id, workspace="ws", project_id="1"):
    response = sim_control.get(f"/assets/{workspace}/{project_id}/{asset_id}/workflow")
    response.raise_for_status()
    return response.json()


# --- the clock -----------------------------------------------------------------------------------


def test_advancing_the_clock_runs_a_schedule_without_waiting(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"wait_seconds": 60, "analyze_seconds": 60})
    before = sim_control.get("/clock").json()
    assert before["advanced_seconds"] == 0
    assert analysis_status(sim_upstream, "a1") == "WAIT_ANALYZE"
    moved = advance(sim_control, 61)
    assert moved["advanced_seconds"] == 61
    assert moved["now"] >= before["now"] + 61
    assert analysis_status(sim_upstream, "a1") == "ANALYZING"
    advance(sim_control, 60)
    assert analysis_status(sim_upstream, "a1") == "ANALYZE_COMPLETED"
    # A reset clears the world but never turns the clock back.
    sim_control.post("/reset").raise_for_status()
    assert sim_control.get("/clock").json()["advanced_seconds"] == 121


@pytest.mark.parametrize(
    ("body", "names"),
    [({}, "seconds"), ({"seconds": -1}, "seconds"), ({"seconds": "5"}, "seconds"), ({"x": 1}, "x")],
)
def test_clock_advance_validation(sim_control, body, names):
    response = sim_control.post("/clock/advance", json=body)
    assert response.status_code == 400
    assert names in response.json()["error"]
    assert sim_control.get("/clock").json()["advanced_seconds"] == 0


# --- import --------------------------------------------------------------------------------------


def test_import_of_a_declared_object_then_analysis_on_request(sim_control, sim_upstream):
    declared = sim_control.put(
        "/objects/media/videos/clip.mp4",
        json={
            "import_seconds": 3,
            "meta_data": META,
            "analysis": {"wait_seconds": 1, "analyze_seconds": 4, "index_id": 4321},
        },
    )
    assert declared.status_code == 201
    asset_id = start_import(sim_upstream)
    assert import_status(sim_upstream, asset_id) == {
        "assetId": str(asset_id),
        "uploadStatus": "IN_PROGRESS",
        "uploadResult": None,
        "metaData": None,
    }
    advance(sim_control, 3)
    done = import_status(sim_upstream, asset_id)
    assert (done["uploadStatus"], done["metaData"]) == ("COMPLETED", META)
    assert done["uploadResult"]
    # An imported asset waits for an analysis request, however long it sits.
    advance(sim_control, 3600)
    assert analysis_status(sim_upstream, asset_id) == "BEFORE_ANALYZE"
    options = {"sceneRange": "ALL", "analysisPersonCount": 3, "sourceLanguage": "ko"}
    started = request_index(sim_upstream, asset_id, **options)
    assert started.status_code == 200
    assert started.json()["result"]["status"] == "WAIT_ANALYZE"
    assert workflow(sim_control, asset_id)["last_index_body"] == options
    advance(sim_control, 1)
    assert analysis_status(sim_upstream, asset_id) == "ANALYZING"
    advance(sim_control, 4)
    result = sim_upstream.status(str(asset_id)).json()["result"]
    assert (result["status"], result["indexId"]) == ("ANALYZE_COMPLETED", 4321)


def test_the_import_log_lists_each_import(sim_control, sim_upstream):
    sim_control.put("/objects/media/a.mp4", json={}).raise_for_status()
    first = start_import(sim_upstream, key="a.mp4")
    second = start_import(sim_upstream, key="missing.mp4", bucket="other")
    assert first != second
    log = sim_control.get("/imports").json()
    assert [(i["bucket"], i["key"], i["asset_id"]) for i in log["imports"]] == [
        ("media", "a.mp4", first),
        ("other", "missing.mp4", second),
    ]
    entry = log["imports"][0]
    assert (entry["workspace"], entry["project_id"]) == ("ws", "1")
    assert entry["access_key"] == sim_upstream.access_key
    assert entry["body"] == {"key": "a.mp4", "bucketName": "media"}
    assert entry["at"] <= log["now"]
    sim_control.post("/reset").raise_for_status()
    assert sim_control.get("/imports").json()["imports"] == []


def test_an_undeclared_object_gets_an_id_and_reads_file_not_exist(sim_control, sim_upstream):
    asset_id = start_import(sim_upstream, key="nowhere.mp4")
    result = import_status(sim_upstream, asset_id)
    assert (result["uploadStatus"], result["metaData"]) == ("FILE_NOT_EXIST", None)
    assert result["uploadResult"]
    refused = request_index(sim_upstream, asset_id)
    assert (refused.status_code, refused.json()["code"]) == (400, "10001")
    assert analysis_status(sim_upstream, asset_id) == "BEFORE_ANALYZE"


@pytest.mark.parametrize("outcome", ["FAILED", "INVALID_METADATA", "FILE_NOT_EXIST"])
def test_import_outcomes_with_their_message_and_metadata(sim_control, sim_upstream, outcome):
    meta = {"resolution": "3840x2160", "durationMs": 1, "size": 1, "format": "AVI"}
    sim_control.put(
        "/objects/media/bad.avi",
        json={"import_seconds": 1, "outcome": outcome, "upload_result": "nope", "meta_data": meta},
    ).raise_for_status()
    asset_id = start_import(sim_upstream, key="bad.avi")
    assert import_status(sim_upstream, asset_id)["uploadStatus"] == "IN_PROGRESS"
    advance(sim_control, 1)
    result = import_status(sim_upstream, asset_id)
    assert result == {
        "assetId": str(asset_id),
        "uploadStatus": outcome,
        "uploadResult": "nope",
        "metaData": meta,
    }
    assert request_index(sim_upstream, asset_id).status_code == 400


def test_index_before_the_import_completed_is_refused(sim_control, sim_upstream):
    sim_control.put("/objects/media/slow.mp4", json={"import_seconds": 10}).raise_for_status()
    asset_id = start_import(sim_upstream, key="slow.mp4")
    early = request_index(sim_upstream, asset_id)
    assert early.status_code == 400
    assert early.json() == {"code": "10001", "message": "The asset's import is not completed."}
    advance(sim_control, 10)
    assert request_index(sim_upstream, asset_id).status_code == 200
    assert workflow(sim_control, asset_id)["index_requests"] == 2


@pytest.mark.parametrize(
    "body",
    [{"key": "a.mp4"}, {"bucketName": "media"}, {"key": "", "bucketName": "media"}, [1]],
)
def test_import_request_validation(sim_control, sim_upstream, body):
    response = sim_upstream.request("POST", IMPORT, json=body)
    assert (response.status_code, response.json()["code"]) == (400, "10001")
    assert sim_control.get("/imports").json()["imports"] == []


def test_imported_ids_skip_ids_in_use(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/700001", json={"status": "ANALYZING"}).raise_for_status()
    asset_id = start_import(sim_upstream)
    assert asset_id == 700002
    assert analysis_status(sim_upstream, 700001) == "ANALYZING"


def test_import_status_of_assets_not_imported(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZING"}).raise_for_status()
    assert import_status(sim_upstream, "a1")["uploadStatus"] == "COMPLETED"
    missing = sim_upstream.request("GET", f"{PROJECT}/assets/zz/import-status")
    assert missing.status_code == 404


def test_objects_are_listed_redeclared_and_deleted(sim_control, sim_upstream):
    path = "/objects/media/deep/path/clip.mp4"
    assert sim_control.put(path, json={"outcome": "FAILED"}).status_code == 201
    again = sim_control.put(path, json={"import_seconds": 0})
    assert again.status_code == 200
    (listed,) = sim_control.get("/objects").json()["objects"]
    assert (listed["bucket"], listed["key"], listed["outcome"]) == (
        "media",
        "deep/path/clip.mp4",
        "COMPLETED",
    )
    assert sim_control.delete(path).status_code == 204
    assert sim_control.delete(path).status_code == 404
    asset_id = start_import(sim_upstream, key="deep/path/clip.mp4")
    assert import_status(sim_upstream, asset_id)["uploadStatus"] == "FILE_NOT_EXIST"


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"outcome": "IN_PROGRESS"}, "outcome"),
        ({"import_seconds": -1}, "import_seconds"),
        ({"meta_data": [1]}, "meta_data"),
        ({"analysis": {"colour": "red"}}, "analysis: unknown field 'colour'"),
        ({"analysis": {"outcome": "DONE"}}, "analysis: outcome"),
        ({"bucket": "b"}, "bucket"),
    ],
)
def test_object_validation(sim_control, body, names):
    response = sim_control.put("/objects/media/x.mp4", json=body)
    assert response.status_code == 400
    assert names in response.json()["error"]
    assert sim_control.get("/objects").json() == {"objects": []}


# --- analysis requests ---------------------------------------------------------------------------


def test_a_scheduled_asset_starts_on_its_own_unless_it_awaits_an_index_request(
    sim_control, sim_upstream
):
    sim_control.put("/assets/ws/1/own", json={"wait_seconds": 0, "analyze_seconds": 5})
    sim_control.put(
        "/assets/ws/1/waits",
        json={
            "wait_seconds": 0,
            "analyze_seconds": 5,
            "outcome": "ANALYZE_FAIL",
            "await_index": True,
        },
    )
    assert analysis_status(sim_upstream, "own") == "ANALYZING"
    assert analysis_status(sim_upstream, "waits") == "BEFORE_ANALYZE"
    advance(sim_control, 100)
    assert analysis_status(sim_upstream, "waits") == "BEFORE_ANALYZE"
    assert request_index(sim_upstream, "waits").json()["result"]["status"] == "ANALYZING"
    advance(sim_control, 5)
    assert analysis_status(sim_upstream, "waits") == "ANALYZE_FAIL"
    # Analysed again: the same plan once more.
    assert request_index(sim_upstream, "waits").status_code == 200
    assert analysis_status(sim_upstream, "waits") == "ANALYZING"


def test_index_options_are_kept_as_sent(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"status": "BEFORE_ANALYZE"}).raise_for_status()
    view = workflow(sim_control, "a1")
    assert (view["index_requests"], view["last_index_body"]) == (0, None)
    options = {
        "sceneRange": {"start": 0, "end": 120},
        "minSceneDurationSec": 2,
        "maxSceneDurationSec": 30,
        "analysisPersonCount": 4,
        "sourceLanguage": "en",
        "futureOption": [True],
    }
    assert request_index(sim_upstream, "a1", **options).status_code == 200
    conflict = request_index(sim_upstream, "a1", sourceLanguage="ja")
    assert conflict.status_code == 409
    view = workflow(sim_control, "a1")
    assert view["index_requests"] == 2
    assert view["last_index_body"] == {"sourceLanguage": "ja"}
    sim_control.put("/assets/ws/1/a2", json={"status": "BEFORE_ANALYZE"}).raise_for_status()
    deprecated = sim_upstream.request(
        "POST", f"{PROJECT}/assets/a2/analyze", json={"analysisPersonCount": 2}
    )
    assert deprecated.status_code == 200
    assert workflow(sim_control, "a2")["last_index_body"] == {"analysisPersonCount": 2}


def test_an_index_body_that_is_not_an_object_is_refused(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"status": "BEFORE_ANALYZE"}).raise_for_status()
    response = sim_upstream.request("POST", f"{PROJECT}/assets/a1/index", data="[1, 2]")
    assert (response.status_code, response.json()["code"]) == (400, "10001")
    assert analysis_status(sim_upstream, "a1") == "BEFORE_ANALYZE"


def test_index_refusal_refuses_every_index_request(sim_control, sim_upstream):
    refusal = {"status": 400, "code": "10014", "message": "Nothing selected to analyse."}
    sim_control.put(
        "/assets/ws/1/a1", json={"status": "BEFORE_ANALYZE", "index_refusal": refusal}
    ).raise_for_status()
    for _ in range(2):
        response = request_index(sim_upstream, "a1", sceneRange="ALL")
        assert (response.status_code, response.json()) == (
            400,
            {"code": "10014", "message": "Nothing selected to analyse."},
        )
    assert analysis_status(sim_upstream, "a1") == "BEFORE_ANALYZE"
    view = workflow(sim_control, "a1")
    assert view["index_refusal"] == refusal
    assert view["index_requests"] == 2


def test_an_imported_asset_can_carry_an_index_refusal(sim_control, sim_upstream):
    sim_control.put(
        "/objects/media/a.mp4",
        json={"import_seconds": 0, "analysis": {"index_refusal": {"status": 403, "code": 7}}},
    ).raise_for_status()
    asset_id = start_import(sim_upstream, key="a.mp4")
    response = request_index(sim_upstream, asset_id)
    assert (response.status_code, response.json()["code"]) == (403, "7")


@pytest.mark.parametrize(
    ("refusal", "names"),
    [
        ({"status": 200}, "status"),
        ({"code": ""}, "code"),
        ({"message": 5}, "message"),
        ({"why": "x"}, "why"),
        ("no", "index_refusal"),
    ],
)
def test_index_refusal_validation(sim_control, refusal, names):
    response = sim_control.put("/assets/ws/1/a1", json={"index_refusal": refusal})
    assert response.status_code == 400
    assert names in response.json()["error"]


def test_index_faults_target_the_index_endpoint_only(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"status": "BEFORE_ANALYZE"}).raise_for_status()
    rule = sim_control.post(
        "/faults", json={"kind": "rate_limit", "endpoint": "index", "retry_after": "2"}
    ).json()
    assert rule["endpoint"] == "index"
    assert sim_upstream.status("a1").status_code == 200  # polls do not consume it
    throttled = request_index(sim_upstream, "a1")
    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2")
    assert analysis_status(sim_upstream, "a1") == "BEFORE_ANALYZE"
    assert request_index(sim_upstream, "a1").status_code == 200
    assert workflow(sim_control, "a1")["index_requests"] == 1  # the faulted one never arrived


def test_import_faults(sim_control, sim_upstream):
    sim_control.post("/faults", json={"kind": "http_error", "endpoint": "import"})
    failed = sim_upstream.request("POST", IMPORT, json={"key": "a", "bucketName": "b"})
    assert failed.status_code == 503
    assert sim_control.get("/imports").json()["imports"] == []
    start_import(sim_upstream, key="a", bucket="b")
    assert len(sim_control.get("/imports").json()["imports"]) == 1


def test_fault_endpoint_validation(sim_control):
    response = sim_control.post("/faults", json={"kind": "auth", "endpoint": "somewhere"})
    assert response.status_code == 400
    assert "endpoint" in response.json()["error"]
