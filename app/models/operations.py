"""Rows that keep the bridge itself running: idempotency keys, worker heartbeats, bridge-wide state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Base

#: The existing row gets empty objects when the columns are added.
_EMPTY_JSON = text("'{}'")


class IdempotencyKey(Base):
    """A replayable answer to a POST, per API token (by fingerprint) and ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"

    token_fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    body: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(255))
    #: Set instead of ``body`` by the one-statement registration (``body`` then empty): the values
    #: its answer is rendered from, the same way on every replay
    #: (``app.watches.register_statement.watch_from_parts``).
    answer_parts: Mapped[dict[str, Any] | None]
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
    """Bridge-wide state, one row (``id`` 1): upstream and Slack credentials, rate-limit pause, and
    what housekeeping has removed (cumulative, for ``/metrics``)."""

    __tablename__ = "bridge_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    upstream_auth: Mapped[str] = mapped_column(String(16), default="unknown")
    upstream_auth_detail: Mapped[str | None] = mapped_column(String(512))
    upstream_auth_changed_at: Mapped[datetime | None]
    slack_auth: Mapped[str] = mapped_column(String(16), default="unknown")
    slack_auth_detail: Mapped[str | None] = mapped_column(String(512))
    slack_auth_changed_at: Mapped[datetime | None]
    rate_limited_until: Mapped[datetime | None]
    #: When the current rate-limit pause began (pauses that follow each other are one pause).
    rate_limited_since: Mapped[datetime | None]
    #: Rows housekeeping deleted since the bridge was installed, by table name.
    pruned_rows: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=_EMPTY_JSON)
    #: The summed counters of pruned heartbeat rows (the shape of ``WorkerCounters.snapshot``):
    #: ``/metrics`` adds them to the live rows' so its totals do not drop when a row goes.
    retired_counters: Mapped[dict[str, Any]] = mapped_column(
        default=dict, server_default=_EMPTY_JSON
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class UpstreamAccount(Base):
    """One NCP account's health when several are configured (``NCP_CREDENTIALS``), by fingerprint
    (the first 8 hex digits of the SHA-256 of its access key; never the key). With a single account
    its health stays in ``bridge_state``."""

    __tablename__ = "upstream_accounts"

    fingerprint: Mapped[str] = mapped_column(String(16), primary_key=True)
    upstream_auth: Mapped[str] = mapped_column(String(16), default="unknown")
    upstream_auth_detail: Mapped[str | None] = mapped_column(String(512))
    upstream_auth_changed_at: Mapped[datetime | None]
    #: The end of this account's rate-limit pause (its workspaces' assets are not claimed until).
    rate_limited_until: Mapped[datetime | None]
    #: When the current pause began (pauses that follow each other are one pause).
    rate_limited_since: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Alert(Base):
    """One condition the operators are told about (``bridge.alert``), by kind and subject.

    ``subject`` is empty for bridge-wide kinds and names the receiver for per-receiver kinds. A row
    stays after its condition clears (``state`` ``resolved``) so a new occurrence is a new ``since``.
    """

    __tablename__ = "alerts"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True, default="")
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime]
    detail: Mapped[str] = mapped_column(String(512), default="")
    #: ``bridge.alert`` events sent for this occurrence (the firing one and its reminders).
    notifications: Mapped[int] = mapped_column(default=0)
    last_notified_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DashboardSession(Base):
    """One dashboard sign-in: the signed cookie names it, sign-out deletes it (so a copied cookie
    stops working), and it ends at ``expires_at`` whatever the cookie says."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AuthFailure(Base):
    """Wrong tokens (API, ``/metrics``, dashboard sign-in) from one client address: the current
    run of failures, each within the throttling window of the one before (``app.web.throttle``)."""

    __tablename__ = "auth_failures"

    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime] = mapped_column(index=True)
