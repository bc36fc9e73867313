"""Leases on due assets: the database decides which worker polls what.

PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` so concurrent workers take disjoint rows without
waiting; SQLite serialises writers (``BEGIN IMMEDIATE``) and the conditional ``UPDATE`` re-checks the
lease. Each claim carries a token unique to that claim: only its holder may apply the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, String, Table, case, exists, literal, or_, select, update
from sqlalchemy.orm import Session

from app.health.upstream_accounts import paused_fingerprints
from app.models import Asset, BridgeState
from app.upstream.accounts import Accounts

#: The assets table for Core statements (a mapped class's table is a Table; the ORM types it as a
#: FromClause, which ``update`` does not take).
_ASSETS = cast(Table, Asset.__table__)


@dataclass(frozen=True)
class ClaimedAsset:
    """A snapshot of a claimed asset row, safe to use outside the session while polling, with the
    claim itself: its lease token and the time it was made (the worker's clock)."""

    pk: int
    workspace: str
    project_id: str
    asset_id: str
    api: str
    interval: float
    status: str | None
    due_at: datetime
    token: str
    claimed_at: datetime


def claim_due_assets(
    session: Session,
    token: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    due_by: datetime | None = None,
    accounts: Accounts | None = None,
) -> list[ClaimedAsset]:
    """Lease up to ``limit`` assets due by ``due_by`` (default ``now``) to ``token``, earliest due
    first, leaving out those of an account in a rate-limit pause (``accounts``: which account
    serves which workspace; without it, the bridge's only account). The caller commits. One
    statement (Core, not ORM: it runs for every batch)."""
    assets = _ASSETS
    lease_free = or_(assets.c.lease_expires_at.is_(None), assets.c.lease_expires_at < now)
    due = (
        select(assets.c.pk)
        .where(assets.c.next_poll_at <= (due_by or now), lease_free, _not_paused(now, accounts))
        .order_by(assets.c.next_poll_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(assets)
        .where(assets.c.pk.in_(due.scalar_subquery()), lease_free)
        .values(lease_owner=token, lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(
            assets.c.pk,
            assets.c.workspace,
            assets.c.project_id,
            assets.c.asset_id,
            assets.c.api,
            assets.c.interval,
            assets.c.status,
            assets.c.next_poll_at,
        )
    )
    rows = session.execute(statement)
    return [
        ClaimedAsset(pk, workspace, project_id, asset_id, api, interval, status, due_at, token, now)
        for pk, workspace, project_id, asset_id, api, interval, status, due_at in rows
    ]


def _not_paused(now: datetime, accounts: Accounts | None) -> ColumnElement[bool]:
    """The claim's filter on pauses, evaluated once per statement (uncorrelated subqueries).

    One account: no pause in ``bridge_state`` (the statement is what it was before accounts).
    Several: the asset's account, mapped from its workspace by a ``CASE`` of the workspaces that
    ``NCP_CREDENTIALS`` names (the default account's fingerprint otherwise), is not among the
    paused ones. The fingerprint is not stored on the asset: it follows the configuration.
    """
    if accounts is None or not accounts.several:
        return ~exists().where(BridgeState.__table__.c.rate_limited_until > now)
    named = accounts.named_workspaces()
    default = literal(accounts.default.fingerprint, String(16))
    account: ColumnElement[str] = (
        case(named, value=_ASSETS.c.workspace, else_=default) if named else default
    )
    return account.not_in(paused_fingerprints(now))


def release(session: Session, token: str, pks: list[int]) -> None:
    """Give back leases still held by ``token`` (work not done; the rows stay due)."""
    if pks:
        session.execute(
            update(Asset)
            .where(Asset.pk.in_(pks), Asset.lease_owner == token)
            .values(lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )


def lock_held(session: Session, claims: list[ClaimedAsset]) -> dict[int, Asset]:
    """Load and lock, at the start of the apply transaction, the claimed rows still leased to their
    claim's token (claims of several batches may be mixed).

    One query. Once locked (PostgreSQL; SQLite serialises writers anyway) no other worker can claim
    them while they are applied, however long that takes; rows whose lease was retaken are left out.
    The rows are refreshed from the database (``populate_existing``).
    """
    if not claims:
        return {}
    tokens = {claim.pk: claim.token for claim in claims}
    statement = (
        select(Asset)
        .where(Asset.pk.in_(list(tokens)), Asset.lease_owner.in_(set(tokens.values())))
        .order_by(Asset.pk)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {
        asset.pk: asset
        for asset in session.scalars(statement)
        if asset.lease_owner == tokens[asset.pk]
    }
