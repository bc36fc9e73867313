"""One poll whose answer cannot be stored fails alone: it is undone (a savepoint) and recorded as a
failed poll of its asset, while the rest of its batch is applied and committed. On SQLite and on
PostgreSQL, through the tick against the simulator and through ``apply_batch`` with results built
by hand (values that only a bug could let through classification)."""

import json
import random
from datetime import timedelta

from sqlalchemy import select, text

from app.db import db
from app.models import Asset, BridgeState
from app.upstream.outcomes import PollOutcome, PollResult, classify_response
from app.worker.apply import ApplyContext, PollChain, apply_batch
from app.worker.asset_claims import claim_due_assets

TOKEN = "test-token"

# A database that refuses one status history row: what a value the bridge failed to clean would do.
REFUSE_POISON = {
    "sqlite": [
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON status_history"
        " WHEN NEW.message = 'poison' BEGIN SELECT RAISE(ABORT, 'poison refused'); END"
    ],
    "postgres": [
        "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN"
        " IF NEW.message = 'poison' THEN RAISE EXCEPTION 'poison refused'; END IF;"
        " RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON status_history"
        " FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    ],
}
ALLOW_POISON = {
    "sqlite": ["DROP TRIGGER refuse_poison"],
    "postgres": ["DROP TRIGGER refuse_poison ON status_history", "DROP FUNCTION refuse_poison()"],
}


def asset_row(bridge, asset_id):
    with bridge.db():
        return db.session.scalars(select(Asset).where(Asset.asset_id == asset_id)).one()


def execute(bridge, statements):
    with bridge.db():
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()


def register_analyzing(bridge, *asset_ids, **watch_fields):
    watches = {}
    for asset_id in asset_ids:
        bridge.set_status(asset_id, "ANALYZING")
        watches[asset_id] = bridge.register(asset_id, **watch_fields)["id"]
    report = bridge.tick()
    assert report.polled == len(asset_ids)
    return watches


def apply_by_hand(bridge, results: dict[str, PollResult]) -> ApplyContext:
    """Claim every due asset and apply ``results`` (by asset id) to them in one batch, committed."""
    with bridge.db():
        session, now = db.session, bridge.clock.now
        claims = claim_due_assets(session, TOKEN, now, 30, 100)
        session.commit()
        assert sorted(c.asset_id for c in claims) == sorted(results)
        ctx = ApplyContext(now, bridge.runtime.pacing, random.Random(1))
        polled = [(c, PollChain((("index", results[c.asset_id]),))) for c in claims]
        assert apply_batch(session, polled, ctx) == len(claims)
        session.commit()
    return ctx


def status(value, **fields):
    return PollResult(PollOutcome.STATUS, status=value, http_status=200, **fields)


def assert_failed_poll(bridge, asset_id, polls):
    """The asset's poll was recorded as failed: lease given back, error back-off from 1 s to 2 s."""
    row = asset_row(bridge, asset_id)
    assert row.last_error.startswith("answer could not be stored")
    assert (row.consecutive_errors, row.lease_owner, row.poll_count) == (1, None, polls)
    assert row.interval == 2.0
    assert 1.8 <= (row.next_poll_at - bridge.clock.now).total_seconds() <= 2.0


def test_an_eventful_poll_that_cannot_be_stored_fails_alone(any_bridge):
    bridge = any_bridge
    watches = register_analyzing(bridge, "b1", "b2", "p1")
    bridge.clock.advance(1.1)
    ctx = apply_by_hand(
        bridge,
        {
            "b1": status("ANALYZE_COMPLETED", index_id=5),
            "b2": status("ANALYZING", message="step 2"),
            # Out of the index_id column's range (classification refuses it; here it got through).
            "p1": status("ANALYZE_COMPLETED", index_id=2**64),
        },
    )
    assert ctx.failed == [asset_row(bridge, "p1").pk]
    assert ctx.emitted == ["analysis.completed"]
    completed = bridge.watch(watches["b1"])
    assert (completed["state"], completed["index_id"]) == ("completed", 5)
    assert [e["type"] for e in bridge.events(watches["b1"])] == ["analysis.completed"]
    assert (bridge.watch(watches["b2"])["message"], asset_row(bridge, "b2").poll_count) == (
        "step 2",
        2,
    )
    poisoned = bridge.watch(watches["p1"])
    assert (poisoned["state"], poisoned["status"], poisoned["index_id"]) == (
        "watching",
        "ANALYZING",
        None,
    )
    assert bridge.events(watches["p1"]) == []
    assert_failed_poll(bridge, "p1", polls=2)
    # Once the upstream answers something storable, the asset recovers on its next poll.
    bridge.set_status("p1", "ANALYZE_COMPLETED", index_id=7)
    bridge.tick(advance=2.1)
    recovered = asset_row(bridge, "p1")
    assert (recovered.consecutive_errors, recovered.last_error) == (0, None)
    assert bridge.watch(watches["p1"])["state"] == "completed"


def test_failed_quiet_writes_are_applied_again_one_by_one(any_bridge):
    bridge = any_bridge
    watches = register_analyzing(bridge, "b1", "b2", "p1")
    bridge.clock.advance(1.1)
    ctx = apply_by_hand(
        bridge,
        {
            "b1": status("ANALYZING", message="b1 step 2"),
            "b2": status("ANALYZING", message="b2 step 2"),
            "p1": status("ANALYZING", index_id=2**64),
        },
    )
    assert ctx.failed == [asset_row(bridge, "p1").pk]
    for asset_id in ("b1", "b2"):
        row = asset_row(bridge, asset_id)
        assert (row.poll_count, row.message, row.lease_owner) == (2, f"{asset_id} step 2", None)
        assert bridge.watch(watches[asset_id])["message"] == f"{asset_id} step 2"
    assert_failed_poll(bridge, "p1", polls=2)
    assert bridge.watch(watches["p1"])["poll_count"] == 1


def test_a_database_refusal_mid_tick_fails_one_poll_and_commits_the_rest(any_bridge):
    bridge = any_bridge
    watches = register_analyzing(bridge, "b1", "b2", "p1")
    execute(bridge, REFUSE_POISON[bridge.database])
    bridge.set_status("b1", "ANALYZE_COMPLETED", index_id=3)
    bridge.set_status("p1", "ANALYZE_FAIL", message="poison")
    report = bridge.tick(advance=1.1)
    assert (report.polled, report.applied, report.failed) == (3, 3, 1)
    assert bridge.watch(watches["b1"])["state"] == "completed"
    assert asset_row(bridge, "b2").poll_count == 2
    assert bridge.watch(watches["p1"])["state"] == "watching"
    assert_failed_poll(bridge, "p1", polls=2)
    assert [e["type"] for e in bridge.events()] == ["analysis.completed"]
    # Refused again at the next poll, the error back-off grows; once allowed, it ends normally.
    bridge.tick(advance=2.1)
    assert asset_row(bridge, "p1").consecutive_errors == 2
    execute(bridge, ALLOW_POISON[bridge.database])
    bridge.tick(advance=4.1)
    ended = bridge.watch(watches["p1"])
    assert (ended["state"], ended["message"]) == ("failed", "poison")


def test_unstorable_characters_from_the_upstream_are_stored_clean(any_bridge):
    bridge = any_bridge
    bridge.set_status("p1", "ANALYZE_FAIL", message="person\x00 extraction\x00 failure")
    bridge.set_status("b1", "ANALYZE_COMPLETED", index_id=4)
    poisoned, bystander = bridge.register("p1")["id"], bridge.register("b1")["id"]
    report = bridge.tick()
    assert (report.polled, report.failed) == (2, 0)
    ended = bridge.watch(poisoned)
    assert (ended["state"], ended["message"]) == ("failed", "person extraction failure")
    assert [h["message"] for h in ended["history"]] == ["person extraction failure"]
    [event] = bridge.events(poisoned)
    assert event["data"]["analysis"]["message"] == "person extraction failure"
    assert bridge.watch(bystander)["state"] == "completed"


def test_a_2000_character_401_message_is_recorded_cut_to_its_columns(any_bridge):
    bridge = any_bridge
    register_analyzing(bridge, "b1", "p1")
    body = json.dumps({"error": {"errorCode": "200", "message": "m" * 2000}}).encode()
    unauthorized = classify_response(401, {}, body, bridge.clock.now)
    bridge.clock.advance(1.1)
    ctx = apply_by_hand(bridge, {"b1": status("ANALYZING"), "p1": unauthorized})
    assert ctx.failed == []
    assert len(asset_row(bridge, "p1").last_error) == 512
    with bridge.db():
        state = db.session.get(BridgeState, 1)
        assert (state.upstream_auth, len(state.upstream_auth_detail)) == ("failing", 512)
    assert asset_row(bridge, "b1").poll_count == 2


def test_a_failed_poll_of_an_asset_nobody_watches_any_more_is_not_scheduled(any_bridge):
    bridge = any_bridge
    watches = register_analyzing(bridge, "p1")
    bridge.clock.advance(1.1)
    with bridge.db():
        session, now = db.session, bridge.clock.now
        [claim] = claim_due_assets(session, TOKEN, now, 30, 100)
        session.commit()
    # Stopped while its poll was in flight.
    response = bridge.client.delete(
        f"/api/v1/watches/{watches['p1']}", headers={"Authorization": "Bearer test-api-token"}
    )
    assert response.status_code in (200, 204)
    with bridge.db():
        ctx = ApplyContext(now, bridge.runtime.pacing, random.Random(1))
        chain = PollChain((("index", status("ANALYZING", index_id=2**64)),))
        apply_batch(db.session, [(claim, chain)], ctx)
        db.session.commit()
    row = asset_row(bridge, "p1")
    assert ctx.failed == [row.pk]
    assert (row.lease_owner, row.next_poll_at, row.consecutive_errors) == (None, None, 1)
    assert row.updated_at == bridge.clock.now
    assert bridge.clock.now - row.last_polled_at == timedelta(0)


def test_eventful_polls_that_all_store_share_one_savepoint(any_bridge):
    """A savepoint per poll costs its round trips and a flush of its own: paid only on failure."""
    from sqlalchemy import event

    bridge = any_bridge
    watches = register_analyzing(bridge, "e1", "e2", "e3")
    bridge.clock.advance(1.1)
    savepoints: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("SAVEPOINT"):
            savepoints.append(statement)

    with bridge.db():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        ctx = apply_by_hand(
            bridge,
            {
                "e1": status("ANALYZE_COMPLETED", index_id=1),
                "e2": status("ANALYZE_FAIL", message="broken"),
                "e3": status("ANALYZING", message="step 2"),
            },
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # One for the quiet poll (e3: same status, new message), one for both eventful polls (one each
    # before: three in all).
    assert len(savepoints) == 2
    assert ctx.failed == []
    assert sorted(ctx.emitted) == ["analysis.completed", "analysis.failed"]
    assert bridge.watch(watches["e1"])["state"] == "completed"
    assert bridge.watch(watches["e2"])["state"] == "failed"
    assert bridge.watch(watches["e3"])["message"] == "step 2"
