"""Endpoints: named notification targets shared by many watches, with their own health.

A watch's ``Target`` row either carries its own destination (an inline target) or points at an
``Endpoint`` (``targets.endpoint_id``): then the endpoint's type, URL or channel and secret are the
ones used, at send time, so changing the endpoint changes it for every watch at once. The per-watch
row stays (its deliveries, and the Slack message it edits in place, are that watch's own).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.models.base import Base, PublicId, new_id


class Endpoint(Base):
    """One named destination: a webhook URL, a Slack channel, a Slack incoming webhook or an
    ``http`` request built from templates."""

    __tablename__ = "endpoints"

    id: Mapped[str] = mapped_column(PublicId, primary_key=True, default=lambda: new_id("ept"))
    name: Mapped[str] = mapped_column(String(63), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(500))
    #: The Standard Webhooks secret (``whsec_...``) in clear: needed to sign, never shown again.
    secret: Mapped[str | None] = mapped_column(String(128))
    #: After a rotation, the old secret still signs (a second ``v1,`` signature) until this time.
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_until: Mapped[datetime | None]
    rate_limit_per_second: Mapped[float | None]
    #: The earliest time the next send may start (the rate limit's schedule, shared by all workers).
    next_send_at: Mapped[datetime | None]
    disabled: Mapped[bool] = mapped_column(default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    #: The first failure since the last success (``BRIDGE_ENDPOINT_DISABLE_AFTER`` counts from it).
    failing_since: Mapped[datetime | None]
    #: An ``http`` target's request: method, header value templates and body template.
    method: Mapped[str | None] = mapped_column(String(8))
    headers: Mapped[dict[str, Any] | None]
    body: Mapped[str | None] = mapped_column(Text)
    #: A ``slack``/``slack_webhook`` message template and the language of default messages.
    template: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
