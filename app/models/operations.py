"""Rows that keep the bridge itself running: idempotency keys, worker heartbeats, bridge-wide state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Base


class IdempotencyKey(Base):
    """A replayable answer to a POST, per API token (by fingerprint) and ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"

    token_fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    body: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class WorkerHeartbeat(Base):
    """One worker (or embedded scheduler) process: when it was last seen and what it has done."""

    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="worker")
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    counters: Mapped[dict[str, Any]] = mapped_column(default=dict)


class BridgeState(Base):
    """Bridge-wide health, one row (``id`` 1): upstream and Slack credentials, rate-limit pause."""

    __tablename__ = "bridge_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    upstream_auth: Mapped[str] = mapped_column(String(16), default="unknown")
    upstream_auth_detail: Mapped[str | None] = mapped_column(String(512))
    upstream_auth_changed_at: Mapped[datetime | None]
    slack_auth: Mapped[str] = mapped_column(String(16), default="unknown")
    slack_auth_detail: Mapped[str | None] = mapped_column(String(512))
    slack_auth_changed_at: Mapped[datetime | None]
    rate_limited_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
