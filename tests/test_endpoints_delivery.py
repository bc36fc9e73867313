"""Endpoints in the outbox, through a real receiver on 127.0.0.1: secret rotation with an overlap
(verified by the Standard Webhooks library), a 410 disabling one endpoint shared by two watches with
its deliveries held and then sent in order once each, replay with the original ids, disabling after
failing for ``BRIDGE_ENDPOINT_DISABLE_AFTER``, and the ``endpoint_disabled`` alert."""

import json

import pytest
from standardwebhooks import Webhook

from tests.fixtures import AUTH
from tests.receiver import Answer


@pytest.fixture
def bridge_overrides():
    return {
        "BRIDGE_ALLOW_PRIVATE_URLS": "true",
        "BRIDGE_RETRY_SCHEDULE": "1,2",
        "BRIDGE_ENDPOINT_DISABLE_AFTER": "30",
    }


def create_endpoint(bridge, url, name="cms", **fields):
    answer = bridge.client.post(
        "/api/v1/endpoints",
        headers=AUTH,
        json={"name": name, "type": "webhook", "url": url, **fields},
    )
    assert answer.status_code == 201, answer.json
    return answer.json


def endpoint(bridge, name="cms"):
    return bridge.client.get(f"/api/v1/endpoints/{name}", headers=AUTH).json


def complete_watch(bridge, asset_id, name="cms", index_id=7):
    """Register ``asset_id`` against the endpoint and let its analysis complete (one event)."""
    bridge.set_status(asset_id, "ANALYZING")
    watch = bridge.register(asset_id, targets=[{"endpoint": name}], events=["analysis.completed"])
    bridge.tick()
    bridge.set_status(asset_id, "ANALYZE_COMPLETED", index_id=index_id)
    bridge.tick(advance=1.2)
    return watch


def drain(deliver, advance=0.0, rounds=10):
    """Delivery ticks until one sends nothing; how many were sent."""
    sent = 0
    for _ in range(rounds):
        report = deliver(advance)
        sent += report.sent
        if report.claimed == 0:
            return sent
        advance = 0.0
    raise AssertionError("deliveries kept coming")


def asset_of(request):
    return json.loads(request.body)["data"]["asset"]["asset_id"]


def test_a_rotation_signs_with_both_secrets_until_the_overlap_ends(bridge, receiver, deliver):
    old = create_endpoint(bridge, receiver.url + "/in")["secret"]
    rotated = bridge.client.post(
        "/api/v1/endpoints/cms/rotate-secret", headers=AUTH, json={"overlap_seconds": 60}
    )
    new = rotated.json["secret"]
    complete_watch(bridge, "during")
    assert drain(deliver) == 1
    (during,) = receiver.requests
    assert len(during.headers["webhook-signature"].split()) == 2
    # A receiver that still has the old secret, and one that already has the new one: both accept.
    assert Webhook(old).verify(during.body, during.headers)["type"] == "analysis.completed"
    assert Webhook(new).verify(during.body, during.headers)["type"] == "analysis.completed"

    bridge.clock.advance(61)  # the overlap is over
    complete_watch(bridge, "after")
    assert drain(deliver) == 1
    after = receiver.requests[-1]
    assert len(after.headers["webhook-signature"].split()) == 1
    assert Webhook(new).verify(after.body, after.headers)["type"] == "analysis.completed"
    with pytest.raises(Exception, match="signature"):
        Webhook(old).verify(after.body, after.headers)
    assert endpoint(bridge)["previous_secret_until"] is not None


def test_a_410_disables_the_shared_endpoint_and_enabling_sends_the_held_in_order(
    bridge, receiver, deliver
):
    create_endpoint(bridge, receiver.url + "/in")
    receiver.answer(Answer(status=410))
    first = complete_watch(bridge, "first")
    assert drain(deliver) == 1  # the 410
    state = endpoint(bridge)
    assert state["disabled"] is True
    assert "gone" in state["disabled_reason"]
    second = complete_watch(bridge, "second")
    third = complete_watch(bridge, "third")
    assert drain(deliver, advance=5) == 0  # held: nothing is attempted while it is disabled
    assert len(receiver.requests) == 1
    held = endpoint(bridge)
    assert (held["pending_deliveries"], held["held_deliveries"]) == (3, 3)
    for watch in (first, second, third):
        (target,) = bridge.watch(watch["id"])["targets"]
        assert target["disabled"] is True
        assert target["endpoint"] == "cms"

    enabled = bridge.client.patch("/api/v1/endpoints/cms", headers=AUTH, json={"disabled": False})
    assert enabled.status_code == 200
    assert enabled.json["disabled"] is False
    assert drain(deliver) == 3
    assert [asset_of(r) for r in receiver.requests[1:]] == ["first", "second", "third"]
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]
    for watch in (first, second, third):
        (delivery,) = bridge.watch(watch["id"])["deliveries"]
        assert delivery["state"] == "succeeded"
    assert drain(deliver, advance=10) == 0  # once each
    health = endpoint(bridge)
    assert health["pending_deliveries"] == 0
    assert health["last_success_at"] is not None


def test_replay_sends_dead_deliveries_again_with_their_ids(bridge, receiver, deliver):
    create_endpoint(bridge, receiver.url + "/in")
    receiver.default = Answer(status=500)
    complete_watch(bridge, "one")
    complete_watch(bridge, "two")
    drain(deliver)
    drain(deliver, advance=1.2)
    drain(deliver, advance=2.4)
    assert endpoint(bridge)["dead_deliveries"] == 2
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    receiver.default = Answer(status=200)
    receiver.requests.clear()
    replayed = bridge.client.post("/api/v1/endpoints/cms/replay", headers=AUTH, json={})
    assert replayed.status_code == 202
    assert replayed.json == {"queued": 2}
    assert drain(deliver) == 2
    assert [asset_of(r) for r in receiver.requests] == ["one", "two"]
    assert {r.headers["webhook-id"] for r in receiver.requests} == set(ids)
    nothing = bridge.client.post("/api/v1/endpoints/cms/replay", headers=AUTH, json={})
    assert nothing.json == {"queued": 0}  # none is dead any more
    assert endpoint(bridge)["dead_deliveries"] == 0


def test_replay_selects_by_state_and_time(bridge, receiver, deliver):
    create_endpoint(bridge, receiver.url + "/in")
    complete_watch(bridge, "early")
    drain(deliver)
    bridge.clock.advance(100)
    cut = bridge.clock().isoformat()
    complete_watch(bridge, "late")
    drain(deliver)
    receiver.requests.clear()
    body = {"state": "any", "since": cut}
    answer = bridge.client.post("/api/v1/endpoints/cms/replay", headers=AUTH, json=body)
    assert answer.json == {"queued": 1}
    drain(deliver)
    assert [asset_of(r) for r in receiver.requests] == ["late"]
    naive = bridge.client.post(
        "/api/v1/endpoints/cms/replay", headers=AUTH, json={"since": "2026-01-01T00:00:00"}
    )
    assert naive.status_code == 422
    assert naive.json["errors"][0]["pointer"] == "#/since"


def test_failing_for_the_disable_after_period_disables_it_and_alerts(bridge, receiver, deliver):
    from app.alerts.evaluate import evaluate_alerts, firing_kinds

    create_endpoint(bridge, receiver.url + "/in")
    receiver.default = Answer(status=503)
    complete_watch(bridge, "a")
    drain(deliver)
    assert endpoint(bridge)["failing_since"] is not None
    assert endpoint(bridge)["disabled"] is False
    bridge.clock.advance(31)
    complete_watch(bridge, "b")
    drain(deliver)
    state = endpoint(bridge)
    assert state["disabled"] is True
    assert "every attempt failed for 30 s" in state["disabled_reason"]
    with bridge.db():
        from app.db import db
        from app.services import services

        evaluate_alerts(db.session(), services().settings, (), bridge.clock())
        assert "endpoint_disabled" in firing_kinds(db.session())


def test_upgrading_a_database_of_the_previous_schema_keeps_old_targets_delivering(
    bridge, receiver, deliver
):
    """Rows written before endpoints existed (the schema taken down to the previous revision, so
    targets have no endpoint and deliveries no lane), then the upgrade: the old targets deliver,
    in their old per-target order."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    bridge.set_status("old", "WAIT_ANALYZE")
    watch = bridge.register(
        "old", targets=[{"type": "webhook", "url": receiver.url + "/old"}],
        events=["analysis.status_changed"],
    )  # fmt: skip
    bridge.tick()
    bridge.set_status("old", "ANALYZING")
    bridge.tick(advance=1.2)  # an event whose delivery is still pending across the migration
    with bridge.db():
        downgrade(revision="9b4e2d6f1a37")
        from app.db import db

        columns = {row[1] for row in db.session.execute(text("PRAGMA table_info(deliveries)"))}
        assert "lane" not in columns
        db.session.remove()
        upgrade()
    bridge.set_status("old", "ANALYZE_COMPLETED", index_id=9)
    bridge.tick(advance=1.2)
    assert drain(deliver) == 2
    assert [json.loads(r.body)["data"]["analysis"]["status"] for r in receiver.requests] == [
        "ANALYZING", "ANALYZE_COMPLETED"]  # fmt: skip
    secret = watch["targets"][0]["secret"]
    for request in receiver.requests:
        Webhook(secret).verify(request.body, request.headers)


def test_send_slots_are_shared_by_every_claimant(bridge, receiver):
    """Three workers claim one delivery each at the same moment from a 2-per-second endpoint: the
    slots they get are 0, 0.5 and 1 s away; a fourth claim gets none (its slot is past the 1 s
    horizon) and leaves the delivery unleased for a later tick."""
    from sqlalchemy import select, update

    from app.db import db
    from app.models import Delivery
    from app.worker.delivery_claims import claim_due_deliveries

    create_endpoint(bridge, receiver.url + "/in", rate_limit_per_second=2)
    for asset_id in ("a", "b", "c", "d"):
        complete_watch(bridge, asset_id)
    now = bridge.clock()
    with bridge.db():
        session = db.session()
        # As retries: each was attempted once, so the lane's order does not hold them back.
        session.execute(update(Delivery).values(first_attempted_at=now))
        session.commit()
        waits = []
        for worker in ("w1", "w2", "w3", "w4"):
            claims = claim_due_deliveries(session, worker, now, 30, limit=1)
            session.commit()
            waits.append([claim.wait for chain in claims for claim in chain])
        leased = session.scalars(select(Delivery.lease_owner).order_by(Delivery.seq)).all()
    assert waits == [[0.0], [0.5], [1.0], []]
    assert sorted(owner for owner in leased if owner) == ["w1", "w2", "w3"]
