"""Several key pairs: each allowed for some workspaces, refused elsewhere (401, errorCode 210), and
fault rules aimed at one access key while another account is fine."""

import pytest
from click.testing import CliRunner

from app.simulator.cli import parse_extra_key, simulator_command
from tests.fixtures import TEST_ACCESS_KEY, SignedClient
from tests.test_simulator_cli import RunningCommand

PERMISSION_DENIED = {"error": {"errorCode": "210", "message": "Permission Denied"}}
AUTH_FAILED = {"error": {"errorCode": "200", "message": "Authentication Failed"}}


@pytest.fixture
def account_b(simulator, sim_control):
    """A second key pair, allowed for workspace "ws-b" only, and a client signing with it."""
    created = sim_control.put(
        "/credentials/ak-b", json={"secret_key": "sk-b", "workspaces": ["ws-b"]}
    )
    assert created.status_code == 201
    client = SignedClient(simulator.url, "ak-b", "sk-b")
    yield client
    client.close()


def pin(sim_control, workspace, asset_id="a1"):
    sim_control.put(f"/assets/{workspace}/1/{asset_id}", json={"status": "ANALYZING"})


def test_a_key_works_only_for_its_workspaces(sim_control, sim_upstream, account_b):
    pin(sim_control, "ws")
    pin(sim_control, "ws-b")
    assert account_b.status("a1", workspace="ws-b").status_code == 200
    refused = account_b.status("a1", workspace="ws")
    assert (refused.status_code, refused.json()) == (401, PERMISSION_DENIED)
    # The first pair was given without workspaces: it may use every one.
    assert sim_upstream.status("a1", workspace="ws-b").status_code == 200
    assert sim_control.get("/stats").json()["auth_failures"] == 1


def test_the_scope_covers_every_upstream_endpoint(sim_control, account_b):
    import_path = "/api/v1/workspaces/ws/projects/1/assets/import/object-storage"
    response = account_b.request("POST", import_path, json={"key": "k", "bucketName": "b"})
    assert (response.status_code, response.json()) == (401, PERMISSION_DENIED)
    assert sim_control.get("/imports").json()["imports"] == []


def test_credentials_are_listed_without_secrets_with_their_counts(
    sim_control, sim_upstream, account_b
):
    pin(sim_control, "ws-b")
    account_b.status("a1", workspace="ws-b")
    account_b.status("a1", workspace="ws")
    listed = sim_control.get("/credentials").json()["credentials"]
    assert listed == [
        {"access_key": TEST_ACCESS_KEY, "workspaces": ["*"], "requests": 0},
        {"access_key": "ak-b", "workspaces": ["ws-b"], "requests": 2},
    ]
    assert "sk-b" not in sim_control.get("/credentials").text


def test_changing_and_removing_a_key_pair(sim_control, account_b):
    pin(sim_control, "ws")
    changed = sim_control.put("/credentials/ak-b", json={"secret_key": "sk-b", "workspaces": ["*"]})
    assert changed.status_code == 200
    assert changed.json()["workspaces"] == ["*"]
    assert account_b.status("a1", workspace="ws").status_code == 200
    assert sim_control.delete("/credentials/ak-b").status_code == 204
    assert sim_control.delete("/credentials/ak-b").status_code == 404
    gone = account_b.status("a1", workspace="ws")
    assert (gone.status_code, gone.json()) == (401, AUTH_FAILED)


def test_key_pairs_survive_a_reset(sim_control, account_b):
    sim_control.post("/reset").raise_for_status()
    pin(sim_control, "ws-b")
    assert account_b.status("a1", workspace="ws-b").status_code == 200


def test_faults_aimed_at_one_access_key(sim_control, sim_upstream, account_b):
    """Account B answers 401 then 429 on every endpoint; the test key's account is untouched."""
    pin(sim_control, "ws")
    pin(sim_control, "ws-b")
    for kind in ("auth", "rate_limit"):
        rule = sim_control.post(
            "/faults", json={"kind": kind, "access_key": "ak-b", "endpoint": "any"}
        ).json()
        assert rule["access_key"] == "ak-b"
    assert sim_upstream.status("a1").status_code == 200
    assert account_b.status("a1", workspace="ws-b").status_code == 401
    assert sim_upstream.status("a1").status_code == 200
    throttled = account_b.request("POST", "/api/v1/workspaces/ws-b/projects/1/assets/a1/index")
    assert throttled.status_code == 429
    assert account_b.status("a1", workspace="ws-b").status_code == 200
    faults = sim_control.get("/faults").json()["faults"]
    assert [(f["matched"], f["remaining"]) for f in faults] == [(1, 0), (1, 0)]


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({}, "secret_key"),
        ({"secret_key": ""}, "secret_key"),
        ({"secret_key": "s", "workspaces": []}, "workspaces"),
        ({"secret_key": "s", "workspaces": "ws"}, "workspaces"),
        ({"secret_key": "s", "workspaces": [""]}, "workspaces"),
        ({"secret_key": "s", "scope": "all"}, "scope"),
    ],
)
def test_credentials_validation(sim_control, body, names):
    response = sim_control.put("/credentials/ak-x", json=body)
    assert response.status_code == 400
    assert names in response.json()["error"]
    assert [c["access_key"] for c in sim_control.get("/credentials").json()["credentials"]] == [
        TEST_ACCESS_KEY
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ak:sk", ("ak", "sk", ["*"])),
        ("ak:sk:ws-a,ws-b", ("ak", "sk", ["ws-a", "ws-b"])),
        ("ak:sk:*", ("ak", "sk", ["*"])),
    ],
)
def test_parse_extra_key(value, expected):
    assert parse_extra_key(value) == expected


@pytest.mark.parametrize("value", ["ak", "ak:", ":sk", "ak:sk:,"])
def test_a_malformed_extra_key_is_a_usage_error(value):
    result = CliRunner().invoke(
        simulator_command,
        ["--port", "0", "--extra-key", value],
        env={"NCP_ACCESS_KEY": None, "NCP_SECRET_KEY": None},
    )
    assert result.exit_code == 2
    assert "--extra-key" in result.output


def test_the_command_accepts_extra_key_pairs():
    command = RunningCommand("--port", "0", "--extra-key", "ak-two:secret-two-5678:ws-two")
    try:
        url = command.wait_for_line(r"listening on (http://\S+)").group(1)
        command.wait_for_line("Press Ctrl-C")
        client = SignedClient(url, "ak-two", "secret-two-5678")
        try:
            assert client.status("a1", workspace="ws-two").status_code == 200  # auto-created
            assert client.status("a1", workspace="ws").json() == PERMISSION_DENIED
        finally:
            client.close()
        assert command.terminate() == 0
    finally:
        command.kill()
    output = "\n".join(command.lines)
    assert "ak-two  (secret ****5678; workspaces ws-two)" in output
    assert "secret-two" not in output
