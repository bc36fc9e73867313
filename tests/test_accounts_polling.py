"""Several NCP accounts against the simulator: account B answers 401 and 429 while account A's
watches are polled on time and complete; each account's health is told by fingerprint (``read_health``,
the dashboard banner, ``bridge.alert``), never by key; claims leave out a paused account's assets only.

The simulator knows two key pairs: the test pair for every workspace (account A, the bridge's
``NCP_ACCESS_KEY``) and ``ak-b`` for workspace ``ws-b`` only (account B, from ``NCP_CREDENTIALS``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.dashboard.health import bridge_alerts
from app.db import db
from app.health.readiness import read_health
from app.models import Asset, BridgeState, UpstreamAccount
from app.services import services
from app.upstream.accounts import Accounts, accounts_of, fingerprint, make_account
from app.worker.asset_claims import claim_due_assets, release
from tests.fixtures import TEST_ACCESS_KEY, TEST_SECRET_KEY, TICK_TIMINGS, simulator_config
from tests.test_alerts import Alerting, alert_config

ACCESS_B, SECRET_B = "ak-b", "sk-b-secret"
FP_A, FP_B = fingerprint(TEST_ACCESS_KEY), fingerprint(ACCESS_B)
CREDENTIALS = json.dumps({"ws-b": {"access_key": ACCESS_B, "secret_key": SECRET_B}})


@pytest.fixture
def two_accounts(app_factory, clock, simulator, sim_control, receiver, bridge_overrides):
    """The bridge with accounts A (workspace ``ws``) and B (``ws-b``), alerts to ``receiver``
    (and the module's ``bridge_overrides``)."""
    created = sim_control.put(
        f"/credentials/{ACCESS_B}", json={"secret_key": SECRET_B, "workspaces": ["ws-b"]}
    )
    assert created.status_code == 201
    app = app_factory(
        clock=clock, **simulator_config(simulator.url), **TICK_TIMINGS,
        **alert_config(receiver), NCP_CREDENTIALS=CREDENTIALS, **bridge_overrides,
    )  # fmt: skip
    bridge = Alerting(app, clock, simulator, sim_control, receiver=receiver)
    # The runtime builds its client with every configured account, as a worker's does.
    assert bridge.runtime.client.accounts.several
    yield bridge
    bridge.runtime.close()


def watch(bridge: Alerting, workspace: str, asset_id: str) -> str:
    """Pin (workspace, 1, asset_id) at ANALYZING and watch it."""
    pinned = bridge.control.put(f"/assets/{workspace}/1/{asset_id}", json={"status": "ANALYZING"})
    assert pinned.status_code in (200, 201)
    target = {"type": "webhook", "url": f"{bridge.receiver.url}/in/{asset_id}"}
    return bridge.register(asset_id, workspace=workspace, targets=[target])["id"]


def fault_b(bridge: Alerting, **spec: Any) -> None:
    """A fault on every endpoint, for requests signed with account B's key only."""
    bridge.fault(access_key=ACCESS_B, endpoint="any", **spec)


def requests_of(bridge: Alerting, workspace: str, asset_id: str) -> int:
    return bridge.control.get(f"/assets/{workspace}/1/{asset_id}").json()["requests"]


def asset_row(bridge: Alerting, workspace: str, asset_id: str) -> Asset:
    with bridge.db():
        return db.session.scalars(
            select(Asset).where(Asset.workspace == workspace, Asset.asset_id == asset_id)
        ).one()


def accounts_health(bridge: Alerting) -> dict[str, str]:
    with bridge.db():
        health = read_health(db.session, bridge.clock.now, accounts_of(services().settings))
        return {account.fingerprint: account.auth.value for account in health.accounts}


def no_key_in(text: str) -> bool:
    return all(secret not in text for secret in (ACCESS_B, SECRET_B, TEST_SECRET_KEY))


def test_a_429_pauses_its_account_only_and_the_other_is_polled_on_time(two_accounts):
    bridge = two_accounts
    a_watches = [watch(bridge, "ws", f"a{n}") for n in range(3)]
    b_watch = watch(bridge, "ws-b", "b1")
    fault_b(bridge, kind="rate_limit", retry_after="600", count=None)
    first = bridge.tick()
    assert first.polled == 4
    b_sent = requests_of(bridge, "ws-b", "b1")
    assert b_sent == 1
    with bridge.db():
        row = db.session.get(UpstreamAccount, FP_B)
        assert 599 <= (row.rate_limited_until - bridge.clock.now).total_seconds() <= 600
        assert (
            db.session.get(UpstreamAccount, FP_A) is None
            or not db.session.get(UpstreamAccount, FP_A).rate_limited_until
        )
        assert db.session.get(BridgeState, 1).rate_limited_until is None  # not bridge-wide
    # A watch of B registered during the pause is due at once, but B's assets are not claimed.
    late_b = watch(bridge, "ws-b", "b2")
    # For two minutes of ticks A's assets are polled as each falls due, B's never.
    for _ in range(12):
        due = min(asset_row(bridge, "ws", f"a{n}").next_poll_at for n in range(3))
        lateness = bridge.clock.now
        report = bridge.tick(advance=max(0.0, (due - lateness).total_seconds()) + 0.01)
        assert report.requests >= 1, "account A's due asset was not polled"
        for n in range(3):
            assert asset_row(bridge, "ws", f"a{n}").next_poll_at > bridge.clock.now  # none late
    assert requests_of(bridge, "ws-b", "b1") == b_sent
    assert requests_of(bridge, "ws-b", "b2") == 0
    # A's analyses finish during B's pause and are seen at the next due poll.
    for n in range(3):
        bridge.set_status(f"a{n}", "ANALYZE_COMPLETED", index_id=n + 1)
    due = max(asset_row(bridge, "ws", f"a{n}").next_poll_at for n in range(3))
    bridge.tick(advance=(due - bridge.clock.now).total_seconds() + 0.01)
    assert [bridge.watch(w)["state"] for w in a_watches] == ["completed"] * 3
    assert bridge.watch(b_watch)["state"] == "watching"
    assert requests_of(bridge, "ws-b", "b1") == b_sent
    # When B's pause ends, B is polled again.
    bridge.control.delete("/faults").raise_for_status()
    bridge.tick(advance=600)
    assert requests_of(bridge, "ws-b", "b1") == b_sent + 1
    assert requests_of(bridge, "ws-b", "b2") == 1
    assert bridge.watch(b_watch)["last_error"] is None
    assert bridge.watch(late_b)["status"] == "ANALYZING"


def test_a_401_fails_its_account_only_by_fingerprint(two_accounts):
    bridge = two_accounts
    a_watch = watch(bridge, "ws", "a1")
    b_watch = watch(bridge, "ws-b", "b1")
    fault_b(bridge, kind="auth", count=None)
    bridge.step()
    assert accounts_health(bridge) == {FP_A: "ok", FP_B: "failing"}
    with bridge.db():
        summary = read_health(db.session, bridge.clock.now, accounts_of(services().settings))
        assert summary.upstream_auth.value == "failing"  # any account failing
        assert summary.upstream_auth_detail.startswith(f"account {FP_B}: ")
        banner = bridge_alerts(db.session, bridge.clock.now)
    [auth] = [alert for alert in banner if alert.key == "upstream_auth"]
    assert auth.account == FP_B
    assert FP_B in auth.title
    assert FP_A not in auth.title
    assert no_key_in(auth.title + auth.detail)
    # The alert names B, once; A's watch completes meanwhile.
    [firing] = bridge.alerts("upstream_auth")
    assert firing["state"] == "firing"
    assert f"account {FP_B}" in firing["detail"]
    assert no_key_in(json.dumps(firing))
    assert bridge.readyz()["alerts"] == ["upstream_auth"]
    bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=7)
    bridge.step(1.1)
    assert bridge.watch(a_watch)["state"] == "completed"
    assert bridge.watch(b_watch)["last_error"]["kind"] == "auth"
    # B's keys work again: its next poll (slow after a 401: the 8 s cap) clears it by itself.
    bridge.control.delete("/faults").raise_for_status()
    bridge.step(9)
    assert accounts_health(bridge) == {FP_A: "ok", FP_B: "ok"}
    assert bridge.states("upstream_auth") == ["firing", "resolved"]
    assert bridge.watch(b_watch)["status"] == "ANALYZING"


def test_rate_limit_alerts_are_per_account(two_accounts):
    bridge = two_accounts
    watch(bridge, "ws", "a1")
    watch(bridge, "ws-b", "b1")
    fault_b(bridge, kind="rate_limit", retry_after="900", count=1)
    bridge.step()
    [firing] = bridge.alerts("upstream_rate_limited")
    assert f"account {FP_B}" in firing["detail"]
    assert FP_A not in firing["detail"]
    with bridge.db():
        banner = bridge_alerts(db.session, bridge.clock.now)
        [row] = db.session.scalars(
            select(UpstreamAccount).where(UpstreamAccount.rate_limited_until.is_not(None))
        )
        assert row.fingerprint == FP_B
    [paused] = [alert for alert in banner if alert.key == "rate_limited"]
    assert (paused.account, paused.remaining) == (FP_B, timedelta(seconds=900))
    bridge.step(901)
    assert bridge.states("upstream_rate_limited") == ["firing", "resolved"]


def test_readyz_names_both_accounts_by_fingerprint(two_accounts):
    bridge = two_accounts
    watch(bridge, "ws", "a1")
    watch(bridge, "ws-b", "b1")
    fault_b(bridge, kind="auth", count=None)
    bridge.step()
    body = bridge.readyz()
    assert body["accounts"] == {FP_A: "ok", FP_B: "failing"}
    assert body["upstream_auth"] == "failing"
    assert no_key_in(json.dumps(body))


def test_claims_leave_out_a_paused_accounts_assets_only(any_bridge):
    """The claim's filter (a CASE of the named workspaces, NOT IN the paused fingerprints), on
    SQLite and PostgreSQL."""
    bridge = any_bridge
    for workspace, asset_id in (("ws", "a1"), ("ws-b", "b1"), ("ws-c", "c1")):
        bridge.control.put(f"/assets/{workspace}/1/{asset_id}", json={"status": "ANALYZING"})
        bridge.register(asset_id, workspace=workspace)
    accounts = Accounts(
        make_account("ak-a", "sk-a"),
        {"ws-b": make_account(ACCESS_B, SECRET_B), "ws-c": make_account("ak-c", "sk-c")},
    )
    now = bridge.clock.now

    def claimed() -> list[str]:
        with bridge.db():
            claims = claim_due_assets(db.session, "t", now, 30, 100, accounts=accounts)
            release(db.session, "t", [claim.pk for claim in claims])
            db.session.commit()
            return sorted(claim.asset_id for claim in claims)

    def pause(fp: str, seconds: float) -> None:
        with bridge.db():
            row = db.session.get(UpstreamAccount, fp) or UpstreamAccount(fingerprint=fp)
            row.upstream_auth = "unknown"
            row.rate_limited_until = now + timedelta(seconds=seconds)
            db.session.add(row)
            db.session.commit()

    assert claimed() == ["a1", "b1", "c1"]
    pause(FP_B, 60)
    assert claimed() == ["a1", "c1"]
    pause(fingerprint("ak-a"), 60)  # the default account: every workspace not named
    assert claimed() == ["c1"]
    pause(FP_B, -1)  # B's pause is over
    assert claimed() == ["b1", "c1"]
    # The bridge-wide row does not pause anyone when several accounts are configured...
    with bridge.db():
        state = db.session.get(BridgeState, 1) or BridgeState(id=1, upstream_auth="unknown")
        state.rate_limited_until = now + timedelta(seconds=60)
        db.session.add(state)
        db.session.commit()
        assert claim_due_assets(db.session, "t2", now, 30, 100, accounts=accounts)
        db.session.rollback()
        # ...and it pauses everything for a single account, as before accounts existed.
        single = Accounts.single("ak-a", "sk-a")
        assert claim_due_assets(db.session, "t3", now, 30, 100, accounts=single) == []
        db.session.rollback()
