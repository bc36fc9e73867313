"""Several NCP accounts, without polling: ``NCP_CREDENTIALS`` parsing and its errors, fingerprints,
which account serves a workspace, the client's signing per workspace, and one token bucket per
account."""

from __future__ import annotations

import hashlib
import json

import pytest

from app.config import ConfigError, load_settings
from app.upstream.accounts import Accounts, accounts_of, fingerprint, make_account
from app.upstream.client import MediaIntelligenceClient
from app.upstream.signing import ACCESS_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from app.vocabulary import ApiGeneration
from app.worker.ratelimit import RateLimiter
from tests.fixtures import TEST_ACCESS_KEY, TEST_SECRET_KEY


def settings(credentials=None, **extra):
    values = {"BRIDGE_ENV": "development", **extra}
    if credentials is not None:
        values["NCP_CREDENTIALS"] = (
            credentials if isinstance(credentials, str) else json.dumps(credentials)
        )
    return load_settings(values, env_file=None)


def pair(access_key, secret_key="secret-of-" + "x"):
    return {"access_key": access_key, "secret_key": secret_key}


# --- fingerprints ----------------------------------------------------------------------------------


def test_a_fingerprint_is_the_first_8_hex_digits_of_the_sha256_of_the_access_key():
    assert fingerprint("AKIA-CMS-TEAM") == hashlib.sha256(b"AKIA-CMS-TEAM").hexdigest()[:8]
    assert fingerprint("AKIA-CMS-TEAM") == "e63e41fb"  # the README's example
    assert fingerprint("AKIA-CMS-TEAM") != fingerprint("AKIA-CMS-TEAM2")
    assert "AKIA" not in fingerprint("AKIA-CMS-TEAM")


def test_an_account_never_shows_its_secret_key():
    account = make_account("ak-visible", "sk-never-shown")
    assert "sk-never-shown" not in repr(account)
    assert "sk-never-shown" not in repr(Accounts.single("ak-visible", "sk-never-shown").default)


# --- which account serves a workspace --------------------------------------------------------------


def test_named_workspaces_get_their_pair_and_the_rest_the_default_pair():
    accounts = Accounts.from_settings(
        settings(
            {"ws-b": pair("ak-b", "sk-b"), "ws-c": pair("ak-b", "sk-b")},
            NCP_ACCESS_KEY="ak-a",
            NCP_SECRET_KEY="sk-a",
        )
    )
    assert accounts.account_for("ws-b").access_key == "ak-b"
    assert accounts.account_for("ws-b").secret_key == "sk-b"
    assert accounts.account_for("ws-c") == accounts.account_for("ws-b")  # one key, one account
    assert accounts.account_for("anything-else").access_key == "ak-a"
    assert accounts.several
    assert [a.fingerprint for a in accounts] == sorted([fingerprint("ak-a"), fingerprint("ak-b")])
    # With several accounts no account's health is the bridge-wide row.
    assert not any(account.bridge_wide for account in accounts)
    assert accounts.named_workspaces() == {"ws-b": fingerprint("ak-b"), "ws-c": fingerprint("ak-b")}


def test_star_serves_every_workspace_not_named_and_replaces_the_default_pair():
    accounts = Accounts.from_settings(
        settings(
            {"*": pair("ak-star", "sk-star"), "ws-b": pair("ak-b", "sk-b")},
            NCP_ACCESS_KEY="ak-unused",
            NCP_SECRET_KEY="sk-unused",
        )
    )
    assert accounts.account_for("ws-a").access_key == "ak-star"
    assert accounts.account_for("ws-b").access_key == "ak-b"
    assert "ak-unused" not in {account.access_key for account in accounts}


def test_star_alone_needs_no_ncp_access_key_and_is_a_single_account():
    accounts = Accounts.from_settings(settings({"*": pair("ak-star", "sk-star")}))
    assert accounts.account_for("ws").access_key == "ak-star"
    assert not accounts.several
    assert accounts.default.bridge_wide  # its health stays in the bridge_state row
    assert [a.fingerprint for a in accounts] == [fingerprint("ak-star")]


def test_without_ncp_credentials_the_one_pair_serves_everything_as_before():
    accounts = Accounts.from_settings(
        settings(NCP_ACCESS_KEY=TEST_ACCESS_KEY, NCP_SECRET_KEY=TEST_SECRET_KEY)
    )
    assert accounts.account_for("ws").access_key == TEST_ACCESS_KEY
    assert (accounts.several, accounts.default.bridge_wide) == (False, True)
    assert accounts.named_workspaces() == {}


def test_a_named_workspace_on_the_default_key_is_still_a_single_account():
    accounts = Accounts.from_settings(
        settings({"ws-b": pair("ak-a", "sk-a")}, NCP_ACCESS_KEY="ak-a", NCP_SECRET_KEY="sk-a")
    )
    assert not accounts.several
    assert accounts.named_workspaces() == {}


def test_no_key_at_all_lists_no_account_and_signs_with_empty_keys():
    accounts = Accounts.from_settings(settings())
    assert list(accounts) == []
    assert accounts.account_for("ws").access_key == ""
    assert not accounts.default.configured


def test_accounts_of_builds_once_per_settings_object():
    config = settings({"ws-b": pair("ak-b")}, NCP_ACCESS_KEY="ak-a", NCP_SECRET_KEY="sk-a")
    assert accounts_of(config) is accounts_of(config)
    assert accounts_of(config).account_for("ws-b").access_key == "ak-b"


# --- NCP_CREDENTIALS errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("{not json", "not valid JSON"),
        ('["ws", "ak", "sk"]', "expected a JSON object"),
        ({"bad workspace": pair("ak")}, "'bad workspace' is not a workspace name"),
        ({"..": pair("ak")}, "'..' is not a workspace name"),
        ({"*x": pair("ak")}, "'*x' is not a workspace name"),
        ({"ws": {"access_key": "ak"}}, '"ws": expected {"access_key": "...", "secret_key": "..."}'),
        ({"ws": {**pair("ak"), "region": "KR"}}, '"ws": expected'),
        ({"ws": "ak:sk"}, '"ws": expected'),
        ({"ws": pair("ak", "")}, '"ws": secret_key must be a non-empty string'),
        ({"ws": pair("a k", "sk")}, '"ws": access_key must be a non-empty string'),
        ({"ws": {"access_key": 7, "secret_key": "sk"}}, '"ws": access_key must be'),
    ],
)
def test_malformed_credentials_name_the_variable_and_the_workspace(value, says):
    with pytest.raises(ConfigError) as caught:
        settings(value)
    message = str(caught.value)
    assert caught.value.variable == "NCP_CREDENTIALS"
    assert message.startswith("configuration error: NCP_CREDENTIALS: ")
    assert says in message


def test_errors_never_quote_a_secret_key():
    secret = "sk-must-not-leak-1234"
    for value in (
        '{"ws": {"access_key": "ak", "secret_key": "' + secret + '"',  # cut short: bad JSON
        {"ws": {"access_key": "a k", "secret_key": secret}},
        {"ws": pair("ak", secret), "ws-2": pair("ak", secret + "-other")},
    ):
        with pytest.raises(ConfigError) as caught:
            settings(value)
        assert secret not in str(caught.value)


def test_one_access_key_with_two_secret_keys_is_refused():
    with pytest.raises(ConfigError, match='"ws-2" uses the access key of "ws-1" with another'):
        settings({"ws-1": pair("ak", "sk-1"), "ws-2": pair("ak", "sk-2")})
    with pytest.raises(ConfigError, match="NCP_ACCESS_KEY uses the access key of"):
        settings({"ws-1": pair("ak", "sk-1")}, NCP_ACCESS_KEY="ak", NCP_SECRET_KEY="sk-other")


def test_an_empty_value_means_no_extra_accounts_and_secrets_stay_masked():
    assert settings("  ").ncp_credentials == {}
    config = settings({"ws-b": pair("ak-b", "sk-b-hidden")})
    assert config.ncp_credentials["ws-b"].secret_key.get_secret_value() == "sk-b-hidden"
    assert "sk-b-hidden" not in repr(config)
    assert "sk-b-hidden" not in str(config.model_dump())


# --- the client signs with the workspace's account -------------------------------------------------


def test_signed_headers_use_the_workspaces_key_pair_and_the_base_path():
    accounts = Accounts(make_account("ak-a", "sk-a"), {"ws-b": make_account("ak-b", "sk-b")})
    with MediaIntelligenceClient("http://127.0.0.1:9/prefix", accounts=accounts) as client:
        target = "/api/v1/workspaces/ws-b/projects/1/assets/5/index?x=1"
        headers = client.signed_headers("ws-b", "POST", target)
        assert client.account_for("ws-b").fingerprint == fingerprint("ak-b")
        assert client.account_for("ws-a").access_key == "ak-a"
    assert headers[ACCESS_KEY_HEADER] == "ak-b"
    expected = sign("POST", "/prefix" + target, headers[TIMESTAMP_HEADER], "ak-b", "sk-b")
    assert headers[SIGNATURE_HEADER] == expected
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("mi-bridge/")


def test_the_one_pair_form_of_the_client_still_works():
    with MediaIntelligenceClient("http://127.0.0.1:9", "ak-only", "sk-only") as client:
        headers = client.signed_headers("any-ws", "GET", "/x")
        assert not client.accounts.several
    assert headers[ACCESS_KEY_HEADER] == "ak-only"
    assert headers[SIGNATURE_HEADER] == sign(
        "GET", "/x", headers[TIMESTAMP_HEADER], "ak-only", "sk-only"
    )


def test_each_workspace_is_polled_with_its_own_keys_against_the_simulator(simulator, sim_control):
    created = sim_control.put(
        "/credentials/ak-b", json={"secret_key": "sk-b", "workspaces": ["ws-b"]}
    )
    assert created.status_code == 201
    for workspace in ("ws", "ws-b"):
        sim_control.put(
            f"/assets/{workspace}/1/a1", json={"status": "ANALYZING"}
        ).raise_for_status()
    accounts = Accounts(
        make_account(TEST_ACCESS_KEY, TEST_SECRET_KEY), {"ws-b": make_account("ak-b", "sk-b")}
    )
    with MediaIntelligenceClient(simulator.url, accounts=accounts) as client:
        for workspace in ("ws", "ws-b"):
            result = client.get_status(workspace, "1", "a1", ApiGeneration.INDEX)
            assert result.status == "ANALYZING", result
    counts = {
        c["access_key"]: c["requests"]
        for c in sim_control.get("/credentials").json()["credentials"]
    }
    assert counts == {TEST_ACCESS_KEY: 1, "ak-b": 1}
    assert sim_control.get("/stats").json()["auth_failures"] == 0


# --- MI_MAX_RPS per account ------------------------------------------------------------------------


def test_each_account_has_its_own_token_bucket():
    limiter = RateLimiter(per_second=1.0)
    assert limiter._take_or_wait("a") == 0
    assert limiter._take_or_wait("a") > 0.5  # "a" spent its token: about a second to wait
    assert limiter._take_or_wait("b") == 0  # "b" is not slowed by "a"
    assert limiter._take_or_wait("b") > 0.5
