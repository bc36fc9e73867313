"""What one delivery attempt came to, as a value the outbox decides on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.vocabulary import AuthHealth, DeliveryOutcome


@dataclass(frozen=True)
class DeliveryResult:
    """One attempt. ``error`` is a short human sentence (``connection refused (203.0.113.7:443)``,
    ``answered HTTP 500``), ``error_detail`` the full text it was made from; both, and ``excerpt``,
    are secret-free (they are stored and shown: no URL path, query or token)."""

    outcome: DeliveryOutcome
    status_code: int | None = None
    duration_ms: int = 0
    excerpt: str | None = None
    error: str | None = None
    error_detail: str | None = None
    retry_after: float | None = None
    #: Columns of the target to update (e.g. the Slack message ts to edit later).
    target_updates: dict[str, Any] = field(default_factory=dict)
    #: What this attempt says about the bridge's Slack token, if anything.
    slack_auth: AuthHealth | None = None


@dataclass(frozen=True)
class EventSnapshot:
    """The parts of an event row a notifier needs (detached from the session)."""

    id: str
    type: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class TargetSnapshot:
    """The parts of a target row a notifier needs (detached from the session)."""

    id: str
    type: str
    url: str | None
    channel: str | None
    secret: str | None
    disabled: bool
    slack_channel_id: str | None = None
    slack_ts: str | None = None
    #: Every secret that signs this attempt, newest first: an endpoint's new and, while a rotation's
    #: overlap lasts, its previous one. Empty: sign with ``secret`` alone.
    signing_secrets: tuple[str, ...] = ()
    #: The endpoint this target is, if it is one (its health and disabling are the endpoint's).
    endpoint_id: str | None = None
    #: An ``http`` target's request: its method, header templates (name, value) and body template.
    method: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    #: A ``slack``/``slack_webhook`` message template (mrkdwn), and the default messages' language
    #: (None: the bridge's ``BRIDGE_LANGUAGE``).
    template: str | None = None
    language: str | None = None
