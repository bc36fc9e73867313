"""The control API: asset, fault, generation and config resources, their validation, reset."""

import pytest

ASSET_VIEW_KEYS = {
    "workspace",
    "project_id",
    "asset_id",
    "status",
    "message",
    "index_id",
    "schedule",
    "requests",
    "in_flight",
    "max_in_flight",
    "message_field",
    "code_as_number",
}


def test_health(sim_control):
    response = sim_control.get("/health")
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_put_creates_then_replaces_an_asset(sim_control):
    created = sim_control.put("/assets/ws/1/a1", json={"wait_seconds": 1, "analyze_seconds": 2})
    assert created.status_code == 201
    view = created.json()
    assert set(view) == ASSET_VIEW_KEYS
    assert (view["workspace"], view["project_id"], view["asset_id"]) == ("ws", "1", "a1")
    assert view["status"] == "WAIT_ANALYZE"
    assert view["schedule"]["wait_seconds"] == 1.0
    assert view["schedule"]["analyze_seconds"] == 2.0
    assert view["schedule"]["outcome"] == "ANALYZE_COMPLETED"
    replaced = sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZE_FAIL", "message": "m"})
    assert replaced.status_code == 200
    view = replaced.json()
    assert (view["status"], view["message"], view["schedule"]) == ("ANALYZE_FAIL", "m", None)
    assert sim_control.get("/assets/ws/1/a1").json() == view


def test_empty_schedule_uses_the_default_schedule(sim_control):
    sim_control.put(
        "/config", json={"default_schedule": {"wait_seconds": 9, "outcome": "ANALYZE_CANCEL"}}
    ).raise_for_status()
    schedule = sim_control.put("/assets/ws/1/a1", json={}).json()["schedule"]
    assert (schedule["wait_seconds"], schedule["analyze_seconds"]) == (9.0, 5.0)
    assert schedule["outcome"] == "ANALYZE_CANCEL"


def test_list_and_delete_assets(sim_control):
    for asset_id in ("a1", "a2"):
        sim_control.put(f"/assets/ws/1/{asset_id}", json={"status": "ANALYZING"})
    listed = sim_control.get("/assets").json()["assets"]
    assert [view["asset_id"] for view in listed] == ["a1", "a2"]
    assert sim_control.delete("/assets/ws/1/a1").status_code == 204
    assert sim_control.get("/assets/ws/1/a1").status_code == 404
    assert sim_control.delete("/assets/ws/1/a1").json() == {"error": "no asset ws/1/a1"}
    assert [view["asset_id"] for view in sim_control.get("/assets").json()["assets"]] == ["a2"]


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("not json", "JSON object"),
        ([1, 2], "JSON object"),
        ({"wait_seconds": -1}, "wait_seconds"),
        ({"wait_seconds": "2"}, "wait_seconds"),
        ({"wait_seconds": True}, "wait_seconds"),
        ({"analyze_seconds": 1e12}, "analyze_seconds"),
        ({"outcome": "DONE"}, "outcome"),
        ({"outcome": "ANALYZING"}, "outcome"),
        ({"index_id": -1}, "index_id"),
        ({"index_id": 1.5}, "index_id"),
        ({"message": 5}, "message"),
        ({"status": ""}, "status"),
        ({"status": 5}, "status"),
        ({"status": "ANALYZING", "wait_seconds": 1}, "wait_seconds"),
        ({"message_field": "msg"}, "message_field"),
        ({"code_as_number": "yes"}, "code_as_number"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_asset_validation(sim_control, body, names):
    if isinstance(body, str):
        response = sim_control.put("/assets/ws/1/a1", data=body)
    else:
        response = sim_control.put("/assets/ws/1/a1", json=body)
    assert response.status_code == 400
    assert names in response.json()["error"]
    assert sim_control.get("/assets/ws/1/a1").status_code == 404


def test_fault_view_lists_every_field(sim_control):
    created = sim_control.post(
        "/faults", json={"kind": "rate_limit", "retry_after": "5", "asset_id": "a1", "count": 3}
    )
    assert created.status_code == 201
    assert created.json() == {
        "id": "flt_1",
        "kind": "rate_limit",
        "count": 3,
        "remaining": 3,
        "matched": 0,
        "asset_id": "a1",
        "generation": None,
        "status": 429,
        "error_code": "420",
        "message": "Rate Limited",
        "retry_after": "5",
    }
    second = sim_control.post("/faults", json={"kind": "slow", "generation": "index"}).json()
    assert (second["id"], second["delay_seconds"], second["generation"]) == ("flt_2", 1.0, "index")
    assert [f["id"] for f in sim_control.get("/faults").json()["faults"]] == ["flt_1", "flt_2"]


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({}, "kind"),
        ({"kind": "explode"}, "kind"),
        ({"kind": "http_error", "status": 200}, "status"),
        ({"kind": "http_error", "status": "503"}, "status"),
        ({"kind": "http_error", "count": 0}, "count"),
        ({"kind": "http_error", "count": True}, "count"),
        ({"kind": "http_error", "generation": "v3"}, "generation"),
        ({"kind": "http_error", "asset_id": 5}, "asset_id"),
        ({"kind": "http_error", "delay_seconds": 1}, "delay_seconds"),
        ({"kind": "rate_limit", "retry_after": "5\r\nX-Evil: 1"}, "retry_after"),
        ({"kind": "rate_limit", "retry_after": 5.5}, "retry_after"),
        ({"kind": "auth", "status": 500}, "status"),
        ({"kind": "auth", "retry_after": "5"}, "retry_after"),
        ({"kind": "service_error", "wrapped": "yes"}, "wrapped"),
        ({"kind": "service_error", "code": None}, "code"),
        ({"kind": "slow", "delay_seconds": -1}, "delay_seconds"),
        ({"kind": "hold", "timeout_seconds": "x"}, "timeout_seconds"),
        ({"kind": "malformed", "body": {"a": 1}}, "body"),
    ],
)
def test_fault_validation(sim_control, body, names):
    response = sim_control.post("/faults", json=body)
    assert response.status_code == 400
    assert names in response.json()["error"]
    assert sim_control.get("/faults").json() == {"faults": []}


@pytest.mark.parametrize(
    ("name", "body", "status", "names"),
    [
        ("v3", {"enabled": False}, 404, "v3"),
        ("assets", {}, 400, "enabled"),
        ("assets", {"enabled": "no"}, 400, "enabled"),
        ("assets", {"enabled": False, "status_code": 500}, 400, "status_code"),
        ("assets", {"enabled": False, "status_code": 404.0}, 400, "status_code"),
        ("assets", {"enabled": False, "why": "retired"}, 400, "why"),
    ],
)
def test_generation_validation(sim_control, name, body, status, names):
    response = sim_control.put(f"/generations/{name}", json=body)
    assert response.status_code == status
    assert names in response.json()["error"]
    assert sim_control.get("/generations").json()["assets"] == {"enabled": True, "status_code": 404}


def test_config_defaults_and_partial_update(sim_control):
    assert sim_control.get("/config").json() == {
        "auto_create": False,  # the fixture's choice
        "clock_offset_seconds": 0.0,
        "default_schedule": {
            "wait_seconds": 2.0,
            "analyze_seconds": 5.0,
            "outcome": "ANALYZE_COMPLETED",
            "message": None,
            "index_id": None,
        },
    }
    updated = sim_control.put(
        "/config", json={"clock_offset_seconds": -30, "default_schedule": {"analyze_seconds": 1}}
    ).json()
    assert updated["clock_offset_seconds"] == -30.0
    assert updated["default_schedule"]["analyze_seconds"] == 1.0
    assert updated["default_schedule"]["wait_seconds"] == 2.0
    assert updated["auto_create"] is False


def test_default_schedule_applies_to_auto_created_assets(sim_control, sim_upstream):
    sim_control.put(
        "/config",
        json={
            "auto_create": True,
            "default_schedule": {
                "wait_seconds": 0,
                "analyze_seconds": 0,
                "outcome": "ANALYZE_FAIL",
                "message": "person extraction failure",
            },
        },
    ).raise_for_status()
    assert sim_upstream.status("new").json()["result"] == {
        "status": "ANALYZE_FAIL",
        "analyzeStatusMessage": "person extraction failure",
    }


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"auto_create": 1}, "auto_create"),
        ({"clock_offset_seconds": "x"}, "clock_offset_seconds"),
        ({"clock_offset_seconds": 1.7e12}, "clock_offset_seconds"),
        ({"default_schedule": 5}, "default_schedule"),
        ({"default_schedule": {"outcome": "X"}}, "outcome"),
        ({"default_schedule": {"status": "X"}}, "status"),
        ({"verbose": True}, "verbose"),
    ],
)
def test_config_validation(sim_control, body, names):
    response = sim_control.put("/config", json=body)
    assert response.status_code == 400
    assert names in response.json()["error"]
    assert sim_control.get("/config").json()["auto_create"] is False


def test_reset_returns_to_the_starting_state(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZING"})
    sim_control.post("/faults", json={"kind": "http_error", "count": None})
    sim_control.put("/generations/index", json={"enabled": False})
    sim_control.put("/config", json={"auto_create": True, "clock_offset_seconds": 5})
    sim_upstream.status("a1", workspace="x")
    assert sim_control.post("/reset").json() == {"ok": True}
    assert sim_control.get("/assets").json() == {"assets": []}
    assert sim_control.get("/faults").json() == {"faults": []}
    assert sim_control.get("/generations").json()["index"]["enabled"] is True
    config = sim_control.get("/config").json()
    assert (config["auto_create"], config["clock_offset_seconds"]) == (False, 0.0)
    stats = sim_control.get("/stats").json()
    assert stats == {
        "connections": 0,
        "requests": 0,
        "by_generation": {"video-assets": 0, "assets": 0, "index": 0},
        "auth_failures": 0,
        "max_in_flight_per_asset": 0,
        "held": 0,
    }
    sim_control.post("/faults", json={"kind": "auth"})
    # The keys survive a reset: the fault, not the signature, refuses this request.
    assert sim_upstream.status("a1").status_code == 401
    assert sim_control.get("/stats").json()["auth_failures"] == 0


def test_release_with_nothing_held(sim_control):
    assert sim_control.post("/release").json() == {"released": 0}


def test_unknown_control_path_and_method_answer_json(sim_control):
    missing = sim_control.get("/nothing-here")
    assert missing.status_code == 404
    assert "error" in missing.json()
    wrong_method = sim_control.post("/health")
    assert wrong_method.status_code == 405
    assert "error" in wrong_method.json()
