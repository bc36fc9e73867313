"""An endpoint's health, as its deliveries' attempts tell it: last success and failure, failing
since, and disabling (by the receiver's ``410`` or Slack's disabling errors, or by failing for
``BRIDGE_ENDPOINT_DISABLE_AFTER``). A disabled endpoint's deliveries are held, not failed: they stay
``pending`` and unclaimed until it is enabled again (``app.endpoints``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from app.models import Endpoint
from app.vocabulary import DeliveryOutcome

#: Svix's figure: an endpoint whose every attempt failed for five days is disabled.
DEFAULT_DISABLE_AFTER = 432000.0
#: Outcomes that say nothing about the receiver (bridge-wide credentials trouble).
_NEUTRAL = frozenset({DeliveryOutcome.HOLD})


def signing_keys(
    secret: str | None, previous: str | None, previous_until: datetime | None, now: datetime
) -> tuple[str, ...]:
    """The secrets that sign a request to an endpoint now (its columns ``secret``,
    ``previous_secret``, ``previous_secret_until``): the current one, then the previous one while a
    rotation's overlap lasts."""
    keys = [secret] if secret else []
    if previous and previous_until is not None and now < previous_until:
        keys.append(previous)
    return tuple(keys)


def disable_endpoint(endpoint: Endpoint, reason: str, now: datetime) -> bool:
    """Disable ``endpoint`` for every watch that uses it; False if it already was."""
    if endpoint.disabled:
        return False
    endpoint.disabled = True
    endpoint.disabled_reason = reason[:255]
    endpoint.disabled_at = endpoint.updated_at = now
    return True


def record_outcome(
    endpoint: Endpoint, outcome: DeliveryOutcome, error: str | None, now: datetime,
    disable_after: float,
) -> None:  # fmt: skip
    """Move ``endpoint``'s health on after one attempt (the attempt's own outcome was decided)."""
    if outcome in _NEUTRAL:
        return
    if outcome is DeliveryOutcome.SUCCEEDED:
        endpoint.last_success_at = now
        endpoint.failing_since = None
        return
    endpoint.last_failure_at = now
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    if outcome is DeliveryOutcome.DISABLE_TARGET:
        disable_endpoint(endpoint, error or "disabled by the receiver", now)
    elif now - endpoint.failing_since >= timedelta(seconds=disable_after):
        failing_for = _duration(disable_after)
        disable_endpoint(endpoint, f"every attempt failed for {failing_for} ({error})", now)


def _duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)} d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    return f"{seconds:g} s"
