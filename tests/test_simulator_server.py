"""The simulator as a server: keep-alive, connection counts, concurrency, neighbours, lifecycle."""

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from app.simulator import SimulatorServer
from app.upstream.outcomes import PollOutcome
from app.upstream.signing import signed_headers
from app.vocabulary import ApiGeneration

PROJECT = "/api/v1/workspaces/ws/projects/1"
NOT_FOUND = {"error": {"errorCode": "300", "message": "Not Found"}}


def connections(sim_control):
    return sim_control.get("/stats").json()["connections"]


def test_a_keep_alive_session_is_one_connection(sim_control, signed_client_factory):
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZING"}).raise_for_status()
    before = connections(sim_control)
    first = signed_client_factory()
    for _ in range(5):
        response = first.status("a1")
        assert response.status_code == 200
        assert response.headers.get("Connection", "").lower() != "close"
    assert connections(sim_control) == before + 1
    signed_client_factory().status("a1").raise_for_status()
    assert connections(sim_control) == before + 2


def test_the_project_client_reuses_its_connection(sim_control, sim_client):
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZING"}).raise_for_status()
    before = connections(sim_control)
    results = [sim_client.get_status("ws", "1", "a1", g) for g in ApiGeneration for _ in range(3)]
    assert {r.outcome for r in results} == {PollOutcome.STATUS}
    assert connections(sim_control) == before + 1
    assert sim_control.get("/stats").json()["by_generation"] == {
        "video-assets": 3,
        "assets": 3,
        "index": 3,
    }


def test_connection_survives_error_answers(sim_control, sim_upstream):
    sim_control.post("/faults", json={"kind": "malformed"}).raise_for_status()
    before = connections(sim_control)
    codes = [sim_upstream.status(a).status_code for a in ("a1", "missing", "missing")]
    assert codes == [200, 404, 404]
    assert sim_upstream.request("GET", "/api/v1/nowhere", headers={}).status_code == 404
    assert connections(sim_control) == before + 1


def test_max_in_flight_per_asset_under_concurrent_requests(
    sim_control, signed_client_factory, wait_until
):
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZING"}).raise_for_status()
    sim_control.post("/faults", json={"kind": "hold", "count": None, "asset_id": "a1"})
    clients = [signed_client_factory() for _ in range(4)]
    with ThreadPoolExecutor(len(clients)) as pool:
        pending = [pool.submit(client.status, "a1") for client in clients]
        wait_until(lambda: sim_control.get("/assets/ws/1/a1").json()["in_flight"] == 4)
        assert sim_control.post("/release").json() == {"released": 4}
        assert [f.result(timeout=5).status_code for f in pending] == [200] * 4
    view = sim_control.get("/assets/ws/1/a1").json()
    assert (view["requests"], view["in_flight"], view["max_in_flight"]) == (4, 0, 4)
    assert sim_control.get("/stats").json()["max_in_flight_per_asset"] == 4


def test_sequential_requests_never_overlap(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZING"}).raise_for_status()
    for generation in ApiGeneration:
        sim_upstream.status("a1", generation).raise_for_status()
    view = sim_control.get("/assets/ws/1/a1").json()
    assert (view["requests"], view["max_in_flight"]) == (3, 1)


def test_one_asset_is_shared_by_all_generations(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZE_COMPLETED", "index_id": 9})
    bodies = [sim_upstream.status("a1", generation).json() for generation in ApiGeneration]
    assert (
        bodies
        == [
            {
                "code": "0",
                "message": "success",
                "result": {
                    "status": "ANALYZE_COMPLETED",
                    "analyzeStatusMessage": None,
                    "indexId": 9,
                },
            }
        ]
        * 3
    )


def test_message_field_and_numeric_code_quirks(sim_control, sim_upstream, sim_client):
    sim_control.put(
        "/assets/ws/1/a1",
        json={
            "status": "ANALYZE_FAIL",
            "message": "키워드 인코딩 실패",
            "message_field": "analysisStatusMessage",
            "code_as_number": True,
        },
    ).raise_for_status()
    body = sim_upstream.status("a1").json()
    assert body == {
        "code": 0,
        "message": "success",
        "result": {"status": "ANALYZE_FAIL", "analysisStatusMessage": "키워드 인코딩 실패"},
    }
    result = sim_client.get_status("ws", "1", "a1", ApiGeneration.INDEX)
    assert (result.status, result.message) == ("ANALYZE_FAIL", "키워드 인코딩 실패")


def test_unknown_status_is_served_as_pinned(sim_control, sim_client):
    sim_control.put("/assets/ws/1/a1", json={"status": "REINDEXING"}).raise_for_status()
    result = sim_client.get_status("ws", "1", "a1", ApiGeneration.INDEX)
    assert (result.outcome, result.status) == (PollOutcome.STATUS, "REINDEXING")


def test_unknown_asset_without_auto_create_is_404(sim_upstream, sim_control):
    response = sim_upstream.status("missing")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert sim_control.get("/assets/ws/1/missing").status_code == 404
    # Traffic to an unknown id is still counted; the asset does not appear.
    assert sim_control.get("/assets").json() == {"assets": []}


def test_auto_create_makes_unknown_assets_on_first_request(sim_control, sim_upstream):
    sim_control.put("/config", json={"auto_create": True}).raise_for_status()
    result = sim_upstream.status("fresh", workspace="w2", project_id="7").json()["result"]
    assert result == {"status": "WAIT_ANALYZE", "analyzeStatusMessage": None}
    view = sim_control.get("/assets/w2/7/fresh").json()
    assert view["schedule"]["wait_seconds"] == 2.0
    assert view["requests"] == 1


def test_deleted_asset_is_404_or_recreated(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZE_CANCEL"}).raise_for_status()
    assert sim_control.delete("/assets/ws/1/a1").status_code == 204
    assert sim_upstream.status("a1").status_code == 404
    sim_control.put("/config", json={"auto_create": True}).raise_for_status()
    assert sim_upstream.status("a1").json()["result"]["status"] == "WAIT_ANALYZE"


def test_request_index_restarts_and_conflicts_while_running(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"status": "ANALYZE_FAIL"}).raise_for_status()
    started = sim_upstream.request("POST", f"{PROJECT}/assets/a1/index")
    assert started.status_code == 200
    assert started.json()["result"] == {"assetId": "a1", "status": "WAIT_ANALYZE"}
    assert sim_upstream.status("a1").json()["result"]["status"] == "WAIT_ANALYZE"
    again = sim_upstream.request("POST", f"{PROJECT}/assets/a1/index")
    assert again.status_code == 409
    assert again.json()["code"] != "0"


def test_cancel_only_while_waiting_or_analysing(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"wait_seconds": 60}).raise_for_status()
    cancelled = sim_upstream.request("POST", f"{PROJECT}/assets/a1/index/cancel")
    assert cancelled.json()["result"]["status"] == "ANALYZE_CANCEL"
    assert sim_upstream.status("a1").json()["result"]["status"] == "ANALYZE_CANCEL"
    assert sim_upstream.request("POST", f"{PROJECT}/assets/a1/index/cancel").status_code == 409
    assert sim_upstream.request("POST", f"{PROJECT}/assets/missing/index/cancel").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"analysisPersonCount": 11},
        {"analysisPersonCount": -1},
        {"analysisPersonCount": "3"},
        {"analysisPersonCount": True},
    ],
)
def test_deprecated_analyze_validates_person_count(sim_control, sim_upstream, body):
    sim_control.put("/assets/ws/1/a1", json={"status": "BEFORE_ANALYZE"}).raise_for_status()
    response = sim_upstream.request("POST", f"{PROJECT}/assets/a1/analyze", json=body)
    assert (response.status_code, response.json()) == (
        400,
        {"code": "10001", "message": "Invalid Request."},
    )


def test_deprecated_analyze_starts_an_analysis(sim_control, sim_upstream):
    sim_control.put("/assets/ws/1/a1", json={"status": "BEFORE_ANALYZE"}).raise_for_status()
    response = sim_upstream.request(
        "POST", f"{PROJECT}/assets/a1/analyze", json={"analysisPersonCount": 10}
    )
    assert response.json()["result"]["status"] == "WAIT_ANALYZE"


def test_list_assets_of_a_project_by_page(sim_control, sim_upstream):
    for asset_id in ("a1", "a2", "a3"):
        sim_control.put(f"/assets/ws/1/{asset_id}", json={"status": "ANALYZING"})
    sim_control.put("/assets/ws/2/other", json={"status": "ANALYZING"})
    page = sim_upstream.request("GET", f"{PROJECT}/assets", params={"pageNum": 2, "pageSize": 2})
    assert page.json()["result"] == {
        "totalCount": 3,
        "pageNum": 2,
        "pageSize": 2,
        "content": [{"assetId": "a3", "status": "ANALYZING", "analyzeStatusMessage": None}],
    }
    default = sim_upstream.request("GET", f"{PROJECT}/assets").json()["result"]
    assert [a["assetId"] for a in default["content"]] == ["a1", "a2", "a3"]
    for bad in ({"pageNum": 0}, {"pageSize": "many"}, {"pageSize": 5000}):
        assert sim_upstream.request("GET", f"{PROJECT}/assets", params=bad).status_code == 400


def test_stats_count_upstream_requests_only(sim_control, sim_upstream):
    sim_upstream.status("missing")
    requests.get(sim_upstream.base_url + f"{PROJECT}/assets", timeout=5)  # unsigned
    sim_control.get("/health")
    stats = sim_control.get("/stats").json()
    assert (stats["requests"], stats["auth_failures"]) == (2, 1)
    assert stats["by_generation"]["index"] == 1


def test_stop_frees_held_requests_and_closes_connections(wait_until):
    server = SimulatorServer(access_key="k", secret_key="s").start()
    url = server.url
    control = requests.Session()
    try:
        control.put(f"{server.url}/_sim/assets/ws/1/a1", json={"status": "ANALYZING"}, timeout=5)
        control.post(f"{server.url}/_sim/faults", json={"kind": "hold", "timeout_seconds": 600})
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(_signed_status, server.url, "k", "s")
            wait_until(lambda: server.state.stats()["held"] == 1)
            started = time.monotonic()
            server.stop()
            assert time.monotonic() - started < 3
            assert pending.result(timeout=5).status_code == 200
    finally:
        control.close()
        server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_sim/health", timeout=2)


def _signed_status(url, access_key, secret_key):
    path = "/api/v1/workspaces/ws/projects/1/assets/a1/index/status"
    return requests.get(
        url + path, headers=signed_headers("GET", path, access_key, secret_key), timeout=10
    )


def test_a_busy_port_raises_oserror_on_start(simulator):
    with pytest.raises(OSError, match="in use"):
        SimulatorServer(port=simulator.port).start()


def test_start_twice_is_refused_and_stop_is_idempotent():
    server = SimulatorServer().start()
    try:
        with pytest.raises(RuntimeError):
            server.start()
    finally:
        server.stop()
        server.stop()


def test_context_manager_serves_and_stops():
    with SimulatorServer() as server:
        url = server.url
        assert requests.get(f"{url}/_sim/health", timeout=5).json() == {"ok": True}
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) != 0


def raw_exchange(simulator, payload):
    """Send bytes on one fresh TCP connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", simulator.port), timeout=5) as connection:
        connection.sendall(payload)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
        return received.decode()


def test_pipelined_requests_after_a_body_are_all_answered(simulator, sim_control):
    """Werkzeug's handler answers one, discards the rest and closes; ours answers both."""
    body = b'{"status": "ANALYZING"}'
    payload = (
        b"PUT /_sim/assets/ws/1/a1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
        + b"GET /_sim/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    received = raw_exchange(simulator, payload)
    assert received.startswith("HTTP/1.1 201")
    assert "HTTP/1.1 200" in received
    assert received.endswith('{"ok":true}\n')
    assert sim_control.get("/assets/ws/1/a1").json()["status"] == "ANALYZING"


def test_http_1_0_gets_its_answer_and_a_closed_connection(simulator):
    received = raw_exchange(simulator, b"GET /_sim/health HTTP/1.0\r\n\r\n")
    assert received.startswith("HTTP/1.1 200")
    assert "Connection: close" in received


def test_chunked_request_body_is_refused_with_411(simulator):
    payload = (
        b"PUT /_sim/config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n"
    )
    received = raw_exchange(simulator, payload)
    assert received.startswith("HTTP/1.1 411")
    assert "Connection: close" in received
