"""Housekeeping removes idempotency keys after their 24 h lifetime, and only those (retention,
the rest of housekeeping, is tested in test_retention)."""

from sqlalchemy import func, select

from app.db import db
from app.models import IdempotencyKey
from app.worker.housekeeping import housekeep


def count_keys(bridge) -> int:
    with bridge.db():
        return db.session.scalar(select(func.count()).select_from(IdempotencyKey))


def test_expired_idempotency_keys_are_purged(bridge):
    headers = {"Authorization": "Bearer test-api-token", "Idempotency-Key": "old"}
    body = {"workspace": "ws", "project_id": "1", "asset_id": "a1",
            "targets": [{"type": "slack", "channel": "C1"}]}  # fmt: skip
    assert bridge.client.post("/api/v1/watches", json=body, headers=headers).status_code == 201
    bridge.clock.advance(23 * 3600)
    headers["Idempotency-Key"] = "young"
    assert bridge.client.post("/api/v1/watches", json=body, headers=headers).status_code == 201
    assert housekeep(bridge.runtime).total == 0
    bridge.clock.advance(2 * 3600)  # "old" is 25 h old, "young" 2 h
    assert housekeep(bridge.runtime).removed == {"idempotency_keys": 1}
    assert count_keys(bridge) == 1
