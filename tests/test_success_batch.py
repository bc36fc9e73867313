"""Plain successes of a delivery burst are recorded in one batch (``app.outbox.success_batch``):
the deliveries still leased to the worker end as succeeded with one attempt each, their endpoints
become healthy, and a delivery whose lease was lost is left alone. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.clock import utcnow
from app.db import db
from app.models import Delivery, DeliveryAttempt, Endpoint, Event, Target, Watch
from app.notify.results import DeliveryResult
from app.outbox.sending import apply_results, load_claims
from app.outbox.success_batch import is_plain_success, record_successes
from app.vocabulary import AuthHealth, DeliveryOutcome

TOKEN = "worker-a"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def batch_app(request):
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


def _leased_deliveries(session, now, count: int, endpoint_id: str | None, per_target=False):
    """``count`` pending deliveries, leased to ``TOKEN``: of one watch and target, or with
    ``per_target`` of one watch and Slack target each."""
    deliveries = []
    target = None
    for n in range(count):
        if target is None or per_target:
            watch = Watch(
                workspace="ws", project_id="1", asset_id=f"a{n}", api="index", state="completed",
                events=["analysis.completed"], deadline_at=now, finished_at=now,
            )  # fmt: skip
            target = (
                Target(type="slack", channel="#media")
                if per_target
                else Target(
                    type="webhook", url="https://hooks.example.test/in", endpoint_id=endpoint_id
                )
            )
            watch.targets.append(target)
            session.add(watch)
            session.flush()
        event = Event(watch_id=watch.id, type="analysis.completed", dedupe_key=f"e{n}", body="{}")
        session.add(event)
        session.flush()
        delivery = Delivery(
            event_id=event.id, target_id=target.id, watch_id=watch.id, lease_owner=TOKEN,
            lease_expires_at=now + timedelta(seconds=30), next_attempt_at=now,
        )  # fmt: skip
        session.add(delivery)
        deliveries.append(delivery)
    session.flush()
    return deliveries


def _success(status: int = 200, excerpt: str | None = None) -> DeliveryResult:
    return DeliveryResult(
        DeliveryOutcome.SUCCEEDED, status_code=status, duration_ms=3, excerpt=excerpt
    )


def test_a_batch_of_successes_ends_the_leased_deliveries_and_only_those(batch_app):
    with batch_app.app_context():
        session = db.session()
        now = utcnow().replace(microsecond=0)
        endpoint = Endpoint(
            name="cms", type="webhook", url="https://hooks.example.test/in",
            failing_since=now - timedelta(hours=1),
        )  # fmt: skip
        session.add(endpoint)
        session.flush()
        first, second, lost = _leased_deliveries(session, now, 3, endpoint.id)
        lost.lease_owner = "worker-b"  # retaken by another worker meanwhile
        first.first_attempted_at = now - timedelta(minutes=5)  # a retry: keeps its first time
        session.commit()

        recorded = record_successes(
            session,
            TOKEN,
            [
                (d.seq, d.target_id, endpoint.id, _success(excerpt=f"ok {n}"))
                for n, d in enumerate((first, second, lost))
            ],
            now,
        )
        session.commit()

        assert recorded == {first.seq, second.seq}
        session.expire_all()
        states = {d.seq: (d.state, d.attempt_count, d.lease_owner) for d in (first, second, lost)}
        assert states == {
            first.seq: ("succeeded", 1, None),
            second.seq: ("succeeded", 1, None),
            lost.seq: ("pending", 0, "worker-b"),
        }
        assert first.first_attempted_at == now - timedelta(minutes=5)
        assert second.first_attempted_at == now
        attempts = session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.pk)).all()
        shown = [
            (a.delivery_seq, a.outcome, a.status_code, a.at, a.duration_ms, a.response_excerpt)
            for a in attempts
        ]
        assert shown == [
            (first.seq, "succeeded", 200, now, 3, "ok 0"),
            (second.seq, "succeeded", 200, now, 3, "ok 1"),
        ]
        assert [(a.error, a.error_detail) for a in attempts] == [(None, None)] * 2
        healthy = session.get(Endpoint, endpoint.id)
        assert (healthy.last_success_at, healthy.failing_since) == (now, None)


def test_slack_messages_store_their_ts_and_channel_in_the_batch(batch_app):
    with batch_app.app_context():
        session = db.session()
        now = utcnow().replace(microsecond=0)
        deliveries = _leased_deliveries(session, now, 3, None, per_target=True)
        session.commit()
        posted = {
            d.seq: _slack_success(f"1700000000.00010{n}", f"C0{n}")
            for n, d in enumerate(deliveries)
        }
        successes = [(d.seq, d.target_id, None, posted[d.seq]) for d in deliveries]
        assert record_successes(session, TOKEN, successes, now) == set(posted)
        session.commit()
        session.expire_all()
        for delivery in deliveries:
            target = session.get(Target, delivery.target_id)
            updates = posted[delivery.seq].target_updates
            assert (target.slack_ts, target.slack_channel_id) == (
                updates["slack_ts"],
                updates["slack_channel_id"],
            )
            assert target.channel == "#media"  # the configured channel is left as it was
            assert delivery.state == "succeeded"


def _slack_success(ts: str, channel: str) -> DeliveryResult:
    return DeliveryResult(
        DeliveryOutcome.SUCCEEDED, status_code=200, duration_ms=4,
        target_updates={"slack_ts": ts, "slack_channel_id": channel}, slack_auth=AuthHealth.OK,
    )  # fmt: skip


def test_only_plain_successes_take_the_batch():
    assert is_plain_success(_success())
    assert is_plain_success(_slack_success("1.2", "C1"))
    assert not is_plain_success(None)
    assert not is_plain_success(DeliveryResult(DeliveryOutcome.RETRY, error="timeout"))
    # Another column, or only one of the message's two: the per-item path.
    assert not is_plain_success(
        DeliveryResult(DeliveryOutcome.SUCCEEDED, target_updates={"url": "https://x.test/"})
    )
    assert not is_plain_success(
        DeliveryResult(DeliveryOutcome.SUCCEEDED, target_updates={"slack_ts": "1.2"})
    )
    # A failing Slack token is recorded per item (it changes the bridge's Slack health).
    assert not is_plain_success(
        DeliveryResult(DeliveryOutcome.SUCCEEDED, slack_auth=AuthHealth.FAILING)
    )


def test_a_success_the_database_refuses_fails_alone_and_the_batch_is_recorded_item_by_item(
    batch_app,
):
    """A Slack answer whose ts cannot be stored (a lone surrogate: neither driver encodes it)
    fails the batch's savepoint; the per-item path then records the others and this one alone as
    a failed attempt, its target left as it was."""
    with batch_app.app_context():
        session = db.session()
        now = utcnow().replace(microsecond=0)
        good, poisoned, other = _leased_deliveries(session, now, 3, None, per_target=True)
        session.commit()
        claims = {c.seq: c for c in load_claims(session, [good.seq, poisoned.seq, other.seq], now)}
        results = {
            good.seq: _slack_success("1700000000.000100", "C01"),
            poisoned.seq: _slack_success("\ud800", "C02"),
            other.seq: _slack_success("1700000000.000300", "C03"),
        }
        apply_results(
            session, TOKEN, [(claims[seq], result) for seq, result in results.items()], now,
            schedule=(60.0, 600.0), rng=random.Random(1),
        )  # fmt: skip
        session.commit()
        session.expire_all()
        for delivery, ts in ((good, "1700000000.000100"), (other, "1700000000.000300")):
            assert delivery.state == "succeeded"
            assert session.get(Target, delivery.target_id).slack_ts == ts
        assert (poisoned.state, poisoned.attempt_count) == ("pending", 1)
        assert "could not be recorded" in poisoned.last_error
        assert session.get(Target, poisoned.target_id).slack_ts is None
