"""Each NCP account's health: its credentials (401) and its rate-limit pause (429).

An account that is the bridge's only one (``Account.bridge_wide``) keeps both in the ``bridge_state``
row, as before accounts existed; with several, each keeps them in its ``upstream_accounts`` row (by
fingerprint, never the key), so one account's trouble pauses and flags that account only. Callers
say which account an answer came from (``Accounts.account_for(workspace)``); these functions decide
where it is written. Anything that calls Media Intelligence records its 401s and 429s here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Select, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.health import bridge_state
from app.health.bridge_state import PAUSES_MERGE_WITHIN
from app.models import UpstreamAccount
from app.upstream.accounts import Account
from app.vocabulary import AuthHealth

_ACCOUNTS: Table = UpstreamAccount.__table__  # type: ignore[assignment]
#: ``session.info`` key: fingerprints recorded as answering in this session (``record_answered``).
_ANSWERED = "mi_bridge.accounts_answered"


def account_row(session: Session, fingerprint: str) -> UpstreamAccount:
    """The row of the account ``fingerprint``, created (``unknown``) on first use."""
    row = session.get(UpstreamAccount, fingerprint)
    if row is not None:
        return row
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(UpstreamAccount)
        .values(fingerprint=fingerprint, upstream_auth=AuthHealth.UNKNOWN)
        .on_conflict_do_nothing(index_elements=["fingerprint"])
    )
    row = session.get(UpstreamAccount, fingerprint, populate_existing=True)
    if row is None:
        raise RuntimeError("upstream_accounts row missing right after its INSERT ... ON CONFLICT")
    return row


def record_auth(
    session: Session, account: Account, value: AuthHealth, detail: str | None, now: datetime
) -> None:
    """Set ``account``'s credential health; writes only when it changes."""
    if value != AuthHealth.OK:
        session.info.setdefault(_ANSWERED, set()).discard(account.fingerprint)
    if account.bridge_wide:
        bridge_state.record_upstream_auth(session, value, detail, now)
        return
    row = account_row(session, account.fingerprint)
    if row.upstream_auth != value:
        row.upstream_auth = value
        row.upstream_auth_detail = detail if value != AuthHealth.OK else None
        row.upstream_auth_changed_at = now


def record_answered(session: Session, accounts: Iterable[Account], now: datetime) -> None:
    """Record that these accounts' credentials work (a request signed with them was answered).

    An account with a row of its own is written at most once per session (a worker tick's): one
    ``INSERT .. ON CONFLICT DO UPDATE .. WHERE`` that changes nothing when it is already ``ok``, and
    again only after ``record_auth`` recorded a failure meanwhile. The bridge-wide account is
    written through the ``bridge_state`` row each time, as before accounts existed (its quiet polls
    write it in their own statement, ``app.worker.quiet_writes``).
    """
    done: set[str] = session.info.setdefault(_ANSWERED, set())
    for account in accounts:
        if account.bridge_wide:
            bridge_state.record_upstream_auth(session, AuthHealth.OK, None, now)
            continue
        if account.fingerprint in done:
            continue
        done.add(account.fingerprint)
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(UpstreamAccount).values(
            fingerprint=account.fingerprint,
            upstream_auth=AuthHealth.OK,
            upstream_auth_changed_at=now,
            updated_at=now,
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["fingerprint"],
                set_={
                    "upstream_auth": AuthHealth.OK,
                    "upstream_auth_detail": None,
                    "upstream_auth_changed_at": now,
                    "updated_at": now,
                },
                where=_ACCOUNTS.c.upstream_auth != AuthHealth.OK,
            )
        )
        loaded = session.identity_map.get(
            session.identity_key(UpstreamAccount, account.fingerprint)
        )
        if loaded is not None:  # written around the ORM: read it anew when next used
            session.expire(loaded)


def pause_until(session: Session, account: Account, until: datetime, now: datetime) -> None:
    """Pause the polling of ``account``'s workspaces until ``until`` (extends, never shortens).

    A pause starting within ``PAUSES_MERGE_WITHIN`` of the previous one's end continues it (its
    ``rate_limited_since`` stays), as the bridge-wide pause does.
    """
    if account.bridge_wide:
        bridge_state.pause_polling_until(session, until, now)
        return
    row = account_row(session, account.fingerprint)
    ended = row.rate_limited_until
    if ended is None or row.rate_limited_since is None or ended < now - PAUSES_MERGE_WITHIN:
        row.rate_limited_since = now
    if row.rate_limited_until is None or row.rate_limited_until < until:
        row.rate_limited_until = until


def pause_ends(session: Session, now: datetime, *, several: bool) -> datetime | None:
    """The latest end of a current pause (the ``bridge_state`` row's, or with ``several`` accounts
    any account's row's), or None when nothing is paused."""
    if not several:
        return bridge_state.polling_paused_until(session, now)
    end = session.scalar(
        select(func.max(UpstreamAccount.rate_limited_until)).where(
            UpstreamAccount.rate_limited_until > now
        )
    )
    return end


def paused_fingerprints(now: datetime) -> Select[tuple[str]]:
    """A SELECT of the fingerprints of the accounts with a row paused at ``now`` (uncorrelated: a
    claim's ``NOT IN`` evaluates it once)."""
    return select(_ACCOUNTS.c.fingerprint).where(_ACCOUNTS.c.rate_limited_until > now)
