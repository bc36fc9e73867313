"""Bridge-wide state in the ``bridge_state`` row: upstream and Slack credentials, rate-limit pause,
and housekeeping's cumulative tallies."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import BridgeState
from app.vocabulary import AuthHealth

ROW_ID = 1


def bridge_state(session: Session) -> BridgeState:
    """The single state row, created on first use."""
    row = session.get(BridgeState, ROW_ID)
    if row is not None:
        return row
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(BridgeState)
        .values(id=ROW_ID, upstream_auth=AuthHealth.UNKNOWN, slack_auth=AuthHealth.UNKNOWN)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    row = session.get(BridgeState, ROW_ID, populate_existing=True)
    if row is None:
        raise RuntimeError("bridge_state row missing right after its INSERT ... ON CONFLICT")
    return row


def locked_bridge_state(session: Session) -> BridgeState:
    """The single state row, created on first use, read anew and locked until the transaction ends
    (``FOR UPDATE`` on PostgreSQL; SQLite serialises writers anyway): for read-modify-write of its
    JSON tallies by concurrent workers."""
    bridge_state(session)
    row = session.get(BridgeState, ROW_ID, with_for_update=True, populate_existing=True)
    if row is None:
        raise RuntimeError("bridge_state row missing right after bridge_state() made sure of it")
    return row


def record_upstream_auth(
    session: Session, value: AuthHealth, detail: str | None, now: datetime
) -> None:
    """Set the upstream credential health; writes only when it changes."""
    row = bridge_state(session)
    if row.upstream_auth != value:
        row.upstream_auth = value
        row.upstream_auth_detail = detail
        row.upstream_auth_changed_at = now


def record_slack_auth(
    session: Session, value: AuthHealth, detail: str | None, now: datetime
) -> None:
    """Set the Slack token health; writes only when it changes."""
    row = bridge_state(session)
    if row.slack_auth != value:
        row.slack_auth = value
        row.slack_auth_detail = detail if value != AuthHealth.OK else None
        row.slack_auth_changed_at = now


#: A rate-limit pause starting within this of the previous one's end continues it.
PAUSES_MERGE_WITHIN = timedelta(seconds=60)


def pause_polling_until(session: Session, until: datetime, now: datetime) -> None:
    """Pause every worker's polling until ``until`` (extends, never shortens, a pause).

    A pause that starts when none ran for ``PAUSES_MERGE_WITHIN`` records ``now`` as its start
    (``rate_limited_since``): pauses back to back (the first poll after a pause answered 429 again)
    count as one for the ``upstream_rate_limited`` alert.
    """
    row = bridge_state(session)
    ended = row.rate_limited_until
    if ended is None or row.rate_limited_since is None or ended < now - PAUSES_MERGE_WITHIN:
        row.rate_limited_since = now
    if row.rate_limited_until is None or row.rate_limited_until < until:
        row.rate_limited_until = until


def polling_paused_until(session: Session, now: datetime) -> datetime | None:
    """The end of the current rate-limit pause, or None when polling may go on."""
    row = session.get(BridgeState, ROW_ID)
    if row is None or row.rate_limited_until is None or row.rate_limited_until <= now:
        return None
    return row.rate_limited_until
