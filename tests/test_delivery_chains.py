"""Chains: a claim leases a lane's head with the lane's next deliveries and the worker sends them one
after another (``app.worker.delivery_claims``, "Chains"; ``app.outbox.sending.send_chain``), through
a real receiver on 127.0.0.1, on SQLite and PostgreSQL: a burst to one endpoint drains in a few
claims and in its order; a receiver that fails mid-chain is sent nothing more of it; a follower
that is not free ends the chain; a rate-limited endpoint's followers get successive send slots; a
chain sends no follower once half its budget is spent."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.fixtures import AUTH
from tests.receiver import Answer


@pytest.fixture
def bridge_overrides():
    # A 60 s lease: a chain's budget (half of it) never ends a chain here, however slow the machine.
    return {
        "BRIDGE_ALLOW_PRIVATE_URLS": "true",
        "BRIDGE_RETRY_SCHEDULE": "1,2",
        "BRIDGE_LEASE_SECONDS": "60",
    }


def burst(bridge, receiver, count, **endpoint_fields):
    """``count`` analyses completed for watches of one endpoint (one event each); the deliveries'
    seqs in lane order."""
    from app.db import db
    from app.models import Delivery

    answer = bridge.client.post(
        "/api/v1/endpoints",
        headers=AUTH,
        json={"name": "cms", "type": "webhook", "url": receiver.url + "/in", **endpoint_fields},
    )
    assert answer.status_code == 201, answer.json
    assets = [f"a{i:02d}" for i in range(count)]
    for asset_id in assets:
        bridge.set_status(asset_id, "ANALYZING")
        bridge.register(asset_id, targets=[{"endpoint": "cms"}], events=["analysis.completed"])
    bridge.tick()
    for asset_id in assets:
        bridge.set_status(asset_id, "ANALYZE_COMPLETED", index_id=7)
    bridge.tick(advance=1.2)
    with bridge.db():
        seqs = list(db.session.scalars(select(Delivery.seq).order_by(Delivery.seq)))
    assert len(seqs) == count
    return seqs


def arrived_events(receiver):
    return [request.headers["webhook-id"] for request in receiver.requests]


def event_ids_in_lane_order(bridge):
    from app.db import db
    from app.models import Delivery

    with bridge.db():
        return list(db.session.scalars(select(Delivery.event_id).order_by(Delivery.seq)))


def deliveries(bridge):
    """``(seq, state, attempt_count, lease_owner)`` of every delivery, in seq order."""
    from app.db import db
    from app.models import Delivery

    with bridge.db():
        rows = db.session.execute(
            select(
                Delivery.seq, Delivery.state, Delivery.attempt_count, Delivery.lease_owner
            ).order_by(Delivery.seq)
        )
        return [tuple(row) for row in rows]


def deliver(bridge, advance=0.0):
    """Move the bridge's clock by ``advance``, then run one delivery tick of its worker."""
    from app.worker.delivery import deliver_once

    bridge.clock.advance(advance)
    return deliver_once(bridge.runtime)


def claim(bridge, limit=16, followers=31):
    """One claim by worker "w1" at the bridge's time, committed: the chains' seqs."""
    from app.db import db
    from app.worker.delivery_claims import claim_due_deliveries

    with bridge.db():
        session = db.session()
        chains = claim_due_deliveries(session, "w1", bridge.clock(), 60, limit, followers)
        session.commit()
    return chains


def test_a_burst_to_one_endpoint_drains_in_chains_and_in_its_order(
    any_bridge, receiver, monkeypatch
):
    """40 deliveries to one endpoint: one tick sends them all, in one claim (a chain of 32) and its
    lane's continuation (the other 8), in lane order, each once; before chains, a claim took one."""
    from app.worker import delivery

    bridge = any_bridge
    burst(bridge, receiver, 40)
    claims = []

    def counted(name):
        original = getattr(delivery, name)

        def claim(*args, **kwargs):
            chains = original(*args, **kwargs)
            if chains:
                claims.append((name, [len(chain) for chain in chains]))
            return chains

        monkeypatch.setattr(delivery, name, claim)

    counted("claim_due_deliveries")
    counted("claim_continuations")
    report = deliver(bridge)
    assert report.sent == 40
    assert claims == [("claim_due_deliveries", [32]), ("claim_continuations", [8])]
    assert arrived_events(receiver) == event_ids_in_lane_order(bridge)
    assert {(state, attempts, owner) for _, state, attempts, owner in deliveries(bridge)} == {
        ("succeeded", 1, None)
    }


def test_an_endpoint_gone_mid_chain_is_sent_nothing_more(any_bridge, receiver):
    """The third of six answers 410 (the endpoint is disabled, that delivery held for it): the chain
    stops there, the three after it are given back unattempted and then held, never sent."""
    bridge = any_bridge
    seqs = burst(bridge, receiver, 6)
    receiver.script = [Answer(200), Answer(200), Answer(410)]
    deliver(bridge)
    assert arrived_events(receiver) == event_ids_in_lane_order(bridge)[:3]
    rows = deliveries(bridge)
    assert [(state, attempts) for _, state, attempts, _ in rows] == [
        ("succeeded", 1), ("succeeded", 1), ("pending", 1),
        ("pending", 0), ("pending", 0), ("pending", 0),
    ]  # fmt: skip
    assert [owner for *_, owner in rows] == [None] * len(seqs)
    deliver(bridge, advance=5)
    assert len(receiver.requests) == 3


def test_a_failure_mid_chain_gives_the_rest_back_for_the_next_claim(any_bridge, receiver):
    """The second of five answers 500: the chain stops; the next claim (same tick) finds the third
    as the lane's head and sends the rest in order; the second is retried later."""
    bridge = any_bridge
    burst(bridge, receiver, 5)
    receiver.script = [Answer(200), Answer(500)]
    deliver(bridge)
    order = event_ids_in_lane_order(bridge)
    assert arrived_events(receiver) == order
    assert [(state, attempts) for _, state, attempts, _ in deliveries(bridge)] == [
        ("succeeded", 1), ("pending", 1), ("succeeded", 1), ("succeeded", 1), ("succeeded", 1),
    ]  # fmt: skip
    deliver(bridge, advance=2.5)
    assert arrived_events(receiver) == [*order, order[1]]


def test_a_follower_that_is_not_free_ends_the_chain(any_bridge, receiver):
    """Of six, the fourth is leased by another worker: the chain is the first three, and the ones
    after the gap are left unleased (they may not go before the fourth was attempted)."""
    from app.db import db
    from app.models import Delivery

    bridge = any_bridge
    seqs = burst(bridge, receiver, 6)
    with bridge.db():
        db.session.execute(
            update(Delivery)
            .where(Delivery.seq == seqs[3])
            .values(lease_owner="w2", lease_expires_at=bridge.clock() + timedelta(seconds=5))
        )
        db.session.commit()
    chains = claim(bridge)
    assert [[c.seq for c in chain] for chain in chains] == [seqs[:3]]
    assert [owner for *_, owner in deliveries(bridge)] == ["w1", "w1", "w1", "w2", None, None]


def test_a_lane_is_continued_only_once_all_of_its_last_chain_was_attempted(any_bridge, receiver):
    """A chain of the first three was sent, but the third's attempt is not recorded (its lease was
    lost): no continuation. Once it is, the continuation is the other three."""
    from app.db import db
    from app.models import Delivery
    from app.worker.delivery_claims import claim_continuations

    bridge = any_bridge
    seqs = burst(bridge, receiver, 6)

    def attempted(*which):
        with bridge.db():
            db.session.execute(
                update(Delivery)
                .where(Delivery.seq.in_(which))
                .values(state="succeeded", first_attempted_at=bridge.clock(), attempt_count=1)
            )
            db.session.commit()

    def continuation():
        with bridge.db():
            session = db.session()
            lane = session.scalar(select(Delivery.lane).where(Delivery.seq == seqs[0]))
            chains = claim_continuations(
                session, "w1", bridge.clock(), 60, {lane: (seqs[0], seqs[2])}, 32
            )
            session.commit()
        return [[claim.seq for claim in chain] for chain in chains]

    attempted(seqs[0], seqs[1])
    assert continuation() == []
    attempted(seqs[2])
    assert continuation() == [seqs[3:]]


def test_a_rate_limited_endpoints_chain_gets_successive_send_slots(any_bridge, receiver):
    """At 2 per second with a 1 s horizon, a chain of four keeps three (slots 0, 0.5 and 1 s away)
    and gives the fourth back."""
    bridge = any_bridge
    seqs = burst(bridge, receiver, 4, rate_limit_per_second=2)
    chains = claim(bridge)
    assert [[(c.seq, c.wait) for c in chain] for chain in chains] == [
        [(seqs[0], 0.0), (seqs[1], 0.5), (seqs[2], 1.0)]
    ]
    assert [owner for *_, owner in deliveries(bridge)] == ["w1", "w1", "w1", None]


def test_a_chain_sends_no_follower_once_half_its_budget_is_spent(bridge, receiver):
    """With a 2 s budget, the first answer held for 1.2 s: the chain returns it sent and the other
    two unsent."""
    import dataclasses

    from app.outbox.sending import send_chain

    burst(bridge, receiver, 3)
    (chain,) = claim(bridge)
    receiver.script = [Answer(hold=True)]
    releaser = threading.Timer(1.2, receiver.release)
    releaser.start()
    try:
        context = dataclasses.replace(bridge.runtime.notifier_context, budget=2.0)
        outcome = send_chain(context, chain)
    finally:
        releaser.cancel()
    assert [(claim.seq, result.outcome.value) for claim, result in outcome.sent] == [
        (chain[0].seq, "succeeded")
    ]
    assert [claim.seq for claim in outcome.unsent] == [chain[1].seq, chain[2].seq]
    assert len(receiver.requests) == 1


def test_a_claim_that_fails_mid_tick_still_records_what_is_in_flight(
    any_bridge, receiver, monkeypatch
):
    """The tick's second claim raises while a chain of 32 is in flight: the tick records the 32,
    then raises; the other 8 stay pending, unleased and unattempted, and the next tick sends them."""
    from app.worker import delivery

    bridge = any_bridge
    burst(bridge, receiver, 40)
    original, calls = delivery.claim_due_deliveries, []

    def second_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the claim failed")
        return original(*args, **kwargs)

    monkeypatch.setattr(delivery, "claim_due_deliveries", second_fails)
    with pytest.raises(RuntimeError, match="the claim failed"):
        deliver(bridge)
    rows = deliveries(bridge)
    assert rows[:32] == [(seq, "succeeded", 1, None) for seq, *_ in rows[:32]]
    assert rows[32:] == [(seq, "pending", 0, None) for seq, *_ in rows[32:]]
    assert deliver(bridge).sent == 8
    assert arrived_events(receiver) == event_ids_in_lane_order(bridge)


@pytest.mark.postgres
def test_leasing_followers_skips_rows_another_transaction_holds(pg_bridge, receiver):
    """Another transaction holds the third of five (as a worker's claim or continuation does while
    it leases): a claim neither waits for it (a 3 s lock timeout would fail it) nor goes past it:
    its chain is the first two."""
    from sqlalchemy import text

    from app.db import db
    from app.worker.delivery_claims import claim_due_deliveries

    bridge = pg_bridge
    seqs = burst(bridge, receiver, 5)
    with bridge.db(), db.engine.connect() as other:
        other.execute(
            text("SELECT seq FROM deliveries WHERE seq = :seq FOR UPDATE"), {"seq": seqs[2]}
        )
        session = db.session()
        session.execute(text("SET LOCAL lock_timeout = '3s'"))
        chains = claim_due_deliveries(session, "w1", bridge.clock(), 60, 16, 31)
        session.commit()
        other.rollback()
    assert [[claim.seq for claim in chain] for chain in chains] == [seqs[:2]]
    assert [owner for *_, owner in deliveries(bridge)] == ["w1", "w1", None, None, None]
