"""What operators see of the real processes: ``/metrics`` served by gunicorn counting what a separate
``mi-bridge worker`` did, and production logs of both processes (JSON only, no secret anywhere).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from app.upstream.generations import status_path
from app.upstream.signing import sign
from app.vocabulary import ApiGeneration
from tests.fake_slack import TOKEN as SLACK_TOKEN
from tests.fixtures import API_TOKEN, TEST_ACCESS_KEY, TEST_SECRET_KEY
from tests.processes import Api, Processes, answers, bridge_env, free_port
from tests.receiver import Answer

pytestmark = pytest.mark.slow

WATCH_STATES = ("watching", "completed", "failed", "cancelled", "expired", "stopped", "error")


def _watch(asset_id: str, *targets: dict) -> dict:
    return {
        "workspace": "ws", "project_id": "1", "asset_id": asset_id, "api": "index",
        "targets": list(targets),
    }  # fmt: skip


def _states(api: Api, watch: dict) -> tuple[str, list[str]]:
    current = api.watch(watch["id"])
    return current["state"], [d["state"] for d in current["deliveries"]]


def _scrape(base_url: str, token: str = API_TOKEN) -> dict[tuple[str, tuple], float]:
    """``/metrics`` parsed by prometheus_client: (sample name, sorted labels) -> value."""
    response = requests.get(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


# --- /metrics across processes ----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_metrics_of_web_count_what_the_worker_process_did(
    tmp_path, postgres_url, simulator, sim_control, receiver, fake_slack, wait_until
):
    """Polls by outcome match the simulator's own count; deliveries, watches and workers match too."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = bridge_env(
        postgres_url, simulator.url, PORT=str(port), WEB_CONCURRENCY="2",
        BRIDGE_RETRY_SCHEDULE="1", BRIDGE_LEASE_SECONDS="5",
    )  # fmt: skip
    known = ("m1", "m2", "m3")
    for asset_id, spec in {
        "m1": {"status": "ANALYZING"},  # completes when the test says so
        "m2": {"wait_seconds": 0.3, "analyze_seconds": 0.6, "outcome": "ANALYZE_COMPLETED"},
        "m3": {"status": "ANALYZING"},  # still watching at the end
    }.items():
        assert sim_control.put(f"/assets/ws/1/{asset_id}", json=spec).status_code == 201
    faults = [
        {"kind": "http_error", "status": 503, "asset_id": "m1"},  # transient
        {"kind": "auth", "asset_id": "m3"},  # 401
    ]
    for fault in faults:
        assert sim_control.post("/faults", json=fault).status_code == 201
    receiver.answer(Answer(500, body=b"try again"))  # the first webhook attempt fails, then 1 s
    hook = {"type": "webhook", "url": f"{receiver.url}/in"}
    api = Api(base)
    procs = Processes(tmp_path)
    try:
        procs.web("web", env, port)
        procs.worker("worker", env)
        wait_until(lambda: answers(f"{base}/healthz"), timeout=30, message="web serves")
        watches = {
            "m1": api.register(_watch("m1", hook)),
            "m2": api.register(
                _watch("m2", {"type": "slack_webhook", "url": fake_slack.webhook_url("metrics")})
            ),
            "m3": api.register(_watch("m3", hook)),
            "missing": api.register(_watch("missing", hook)),  # 404 from index: error
        }
        wait_until(lambda: api.watch(watches["m1"]["id"])["history"], timeout=15, message="m1 seen")
        pin = {"status": "ANALYZE_COMPLETED", "index_id": 11}
        assert sim_control.put("/assets/ws/1/m1", json=pin).status_code == 200
        expected = {
            "m1": ("completed", ["succeeded"]),
            "m2": ("completed", ["succeeded"]),
            "m3": ("watching", []),
            "missing": ("error", ["succeeded"]),  # watch.error
        }
        wait_until(
            lambda: {a: _states(api, w) for a, w in watches.items()} == expected,
            timeout=30,
            message="the watches and deliveries reached their ends",
        )
        wait_until(
            lambda: all(f["remaining"] == 0 for f in sim_control.get("/faults").json()["faults"]),
            timeout=15,
            message="both faults were met",
        )
        assert procs.stop("worker") == 0  # its last heartbeat holds its final counters
        found = _scrape(base)
        unauthorized = requests.get(f"{base}/metrics", timeout=10)
        assert procs.stop("web") == 0
    finally:
        procs.stop_all()
        api.close()

    stats = sim_control.get("/stats").json()
    per_asset = {a: sim_control.get(f"/assets/ws/1/{a}").json()["requests"] for a in known}
    fired = {f["kind"]: f["matched"] for f in sim_control.get("/faults").json()["faults"]}
    upstream = {
        "status": sum(per_asset.values()) - sum(fired.values()),
        "transient": fired["http_error"],
        "auth": fired["auth"],
        "not_found": stats["requests"] - sum(per_asset.values()),  # the unknown asset
    }
    polls = {
        labels[0][1]: value
        for (name, labels), value in found.items()
        if name == "mi_bridge_polls_total"
    }
    deliveries = {
        dict(labels)["outcome"] + "|" + dict(labels)["target_type"]: value
        for (name, labels), value in found.items()
        if name == "mi_bridge_deliveries_total"
    }
    states = {state: found[("mi_bridge_watches", (("state", state),))] for state in WATCH_STATES}
    print(
        f"\n/metrics after the worker stopped: polls {polls} (simulator: {upstream}, total"
        f" {stats['requests']}); deliveries {deliveries}; watches {states}; workers alive"
        f" {found[('mi_bridge_workers_alive', ())]}"
    )
    assert unauthorized.status_code == 401
    assert upstream == {"status": upstream["status"], "transient": 1, "auth": 1, "not_found": 1}
    assert polls == upstream
    assert found[("mi_bridge_poll_duration_seconds_count", ())] == stats["requests"]
    assert deliveries == {
        "retry|webhook": 1,
        "succeeded|webhook": 2,  # m1's analysis.completed, missing's watch.error
        "succeeded|slack_webhook": 1,
    }
    assert len(receiver.requests) == 3
    assert len(fake_slack.webhook_posts("metrics")) == 1
    assert states == {
        "watching": 1, "completed": 2, "failed": 0, "cancelled": 0, "expired": 0,
        "stopped": 0, "error": 1,
    }  # fmt: skip
    assert found[("mi_bridge_workers_alive", ())] == 1
    assert found[("mi_bridge_delivery_queue_depth", ())] == 0
    assert found[("mi_bridge_detection_lag_seconds_count", ())] == 2


# --- production logs --------------------------------------------------------------------------------


def _log_lines(log_dir: Path, names: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """(file, line number, text) of every non-empty line the processes wrote."""
    lines = []
    for name in names:
        for stream in ("out", "err"):
            path = log_dir / f"{name}.{stream}"
            for number, text in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if text.strip():
                    lines.append((path.name, number, text))
    return lines


def _logger_of(line: str) -> str:
    """The ``logger`` field of a JSON log line, or what the line is when it is not JSON."""
    try:
        return str(json.loads(line).get("logger"))
    except (ValueError, AttributeError):
        return "not JSON"


def _ncp_signatures(paths: list[str], since_ms: int, until_ms: int) -> set[str]:
    """Every signature v2 the worker can have sent for these paths in this time window."""
    return {
        sign("GET", path, str(ms), TEST_ACCESS_KEY, TEST_SECRET_KEY)
        for path in paths
        for ms in range(since_ms, until_ms + 1)
    }


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_production_logs_are_json_and_carry_no_secret(
    tmp_path, postgres_url, simulator, sim_control, receiver, fake_slack, wait_until
):
    """A full cycle with webhook, Slack and Slack-webhook targets at DEBUG, error paths included."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Production wants tokens of at least 24 characters (the suite's API_TOKEN is shorter).
    first_token = "first-api-token-" + secrets.token_hex(8)
    second_token = "second-api-token-" + secrets.token_hex(8)
    auth = {"Authorization": f"Bearer {first_token}"}
    secret_key = "flask-secret-" + secrets.token_hex(16)
    whsec = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    hook_name = "Xq" + secrets.token_hex(10)  # the credential part of an incoming-webhook URL
    slack_hook = fake_slack.webhook_url(hook_name)
    env = bridge_env(
        postgres_url, simulator.url, PORT=str(port), WEB_CONCURRENCY="2",
        BRIDGE_ENV="production", SECRET_KEY=secret_key,
        BRIDGE_API_TOKENS=f"{first_token},{second_token}", LOG_LEVEL="DEBUG",
        SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_API_URL=fake_slack.api_url,
        BRIDGE_RETRY_SCHEDULE="1", BRIDGE_LEASE_SECONDS="5",
    )  # fmt: skip
    for asset_id in ("p1", "p2"):
        assert sim_control.put(f"/assets/ws/1/{asset_id}", json={"status": "ANALYZING"}).ok
    assert sim_control.post("/faults", json={"kind": "auth", "asset_id": "p2"}).ok  # upstream 401
    targets = [
        {"type": "webhook", "url": f"{receiver.url}/in", "secret": whsec},
        {"type": "slack", "channel": "general"},
        {"type": "slack_webhook", "url": slack_hook},
    ]
    api = Api(base)
    api.http.headers.update(auth)
    procs = Processes(tmp_path)
    since_ms = time.time_ns() // 1_000_000
    try:
        procs.web("web", env, port)
        procs.worker("worker", env)
        wait_until(lambda: answers(f"{base}/healthz"), timeout=30, message="web serves")
        # Error paths: a wrong token on the API and on /metrics, an invalid registration, and a
        # client that puts a real token where it does not belong (the URL) besides the header.
        wrong = {"Authorization": "Bearer not-a-valid-token"}
        assert requests.get(f"{base}/api/v1/watches", headers=wrong, timeout=10).status_code == 401
        assert requests.get(f"{base}/metrics", headers=wrong, timeout=10).status_code == 401
        misplaced = f"{base}/api/v1/watches/{second_token}?access_token={second_token}"
        assert requests.get(misplaced, headers=auth, timeout=10).status_code == 404
        # A NUL byte PostgreSQL refuses to store: if it gets past validation, the failed INSERT's
        # traceback (SQL parameters included: the target's secret) must be logged redacted.
        nul = {"type": "webhook", "url": f"{receiver.url}/in\u0000x", "secret": whsec}
        nul_answer = requests.post(
            f"{base}/api/v1/watches", json=_watch("p9", nul), headers=auth, timeout=10
        ).status_code
        invalid = _watch("p1", {"type": "webhook", "url": f"{receiver.url}/in", "secret": "whsec_"})
        response = requests.post(f"{base}/api/v1/watches", json=invalid, headers=auth, timeout=10)
        assert response.status_code == 422
        watch = api.register(_watch("p1", *targets))
        other = api.register(_watch("p2", targets[0]))
        wait_until(lambda: api.watch(watch["id"])["history"], timeout=15, message="p1 polled")
        pin = {"status": "ANALYZE_COMPLETED", "index_id": 21}
        assert sim_control.put("/assets/ws/1/p1", json=pin).status_code == 200
        wait_until(
            lambda: _states(api, watch) == ("completed", ["succeeded"] * 3),
            timeout=30,
            message="p1 completed and all three targets were notified",
        )
        wait_until(
            lambda: (
                api.watch(other["id"])["poll_count"] >= 1
                and sim_control.get("/faults").json()["faults"][0]["remaining"] == 0
            ),
            timeout=15,
            message="p2 met the upstream 401 and was polled again",
        )
        readiness = requests.get(f"{base}/readyz", timeout=10).json()
        assert requests.get(f"{base}/metrics", headers=auth, timeout=10).status_code == 200
        assert procs.stop("worker") == 0
        assert procs.stop("web") == 0
    finally:
        procs.stop_all()
        api.close()
    until_ms = time.time_ns() // 1_000_000

    lines = _log_lines(tmp_path, ("web", "worker"))
    not_json, loggers, messages = [], set(), []
    for where, number, text in lines:
        try:
            record = json.loads(text)
            assert isinstance(record, dict)
        except (ValueError, AssertionError):
            not_json.append(f"{where}:{number}: {text[:160]}")
            continue
        loggers.add(record.get("logger"))
        messages.append(str(record.get("message")))
    webhook_signatures = set()
    for request in receiver.requests:
        for value in request.headers["webhook-signature"].split():
            webhook_signatures |= {value, value.partition(",")[2]}
    paths = [status_path(ApiGeneration.INDEX, "ws", "1", a) for a in ("p1", "p2")]
    ncp_signatures = _ncp_signatures(paths, since_ms, until_ms)
    database_password = urlsplit(postgres_url).password or "(none)"
    secrets_by_name = {
        "NCP secret key": TEST_SECRET_KEY,
        "Slack bot token": SLACK_TOKEN,
        "API token": first_token,
        "second API token": second_token,
        "SECRET_KEY": secret_key,
        "whsec_ secret": whsec,
        "whsec_ secret (base64 part)": whsec.removeprefix("whsec_"),
        "slack_webhook path": urlsplit(slack_hook).path,
        "slack_webhook credential": hook_name,
        "database password": f":{database_password}@",
        **{f"webhook-signature {value[:12]}...": value for value in webhook_signatures},
    }
    leaks = []
    for where, number, text in lines:
        named = [name for name, value in secrets_by_name.items() if value in text]
        signed = [s for s in re.findall(r"[A-Za-z0-9+/]{43}=", text) if s in ncp_signatures]
        if signed:
            named.append("x-ncp-apigw-signature-v2 value")
        if named:
            leaks.append(f"{where}:{number} ({_logger_of(text)}): {named}: {text[:300]}")
    print(
        f"\nproduction logs: {len(lines)} lines from {sorted(map(str, loggers))};"
        f" {len(not_json)} not JSON; {len(leaks)} with a secret; checked"
        f" {len(webhook_signatures)} webhook and {len(ncp_signatures)} candidate NCP signatures;"
        f" readyz {readiness}; a URL with a NUL byte was answered {nul_answer}"
    )
    assert len(receiver.requests) == 1  # p1's completion; p2 is still watching
    assert fake_slack.webhook_posts(hook_name)
    assert fake_slack.messages("general")
    assert readiness["slack_auth"] == "ok"
    assert leaks == [], "\n".join(leaks)
    assert not_json == [], "\n".join(not_json)
    assert len(lines) > 20  # DEBUG: the check saw real output
    assert "GET /api/v1/watches 401" in messages  # the error paths were logged too
    assert "GET /metrics 401" in messages
