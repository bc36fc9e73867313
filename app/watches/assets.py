"""Upstream asset rows: one per (workspace, project, asset, generation), shared by their watches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import Asset, Watch
from app.watches.states import WATCHING


def get_or_create_asset(
    session: Session, workspace: str, project_id: str, asset_id: str, api: str, now: datetime
) -> Asset:
    """The asset row for these coordinates, inserted if missing (safe against concurrent inserts)."""
    values = {
        "workspace": workspace,
        "project_id": project_id,
        "asset_id": asset_id,
        "api": api,
        "interval": 0.0,
        "poll_count": 0,
        "consecutive_errors": 0,
        "created_at": now,
        "updated_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(Asset)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["workspace", "project_id", "asset_id", "api"])
    )
    session.execute(statement)
    return session.scalars(
        select(Asset).where(
            Asset.workspace == workspace,
            Asset.project_id == project_id,
            Asset.asset_id == asset_id,
            Asset.api == api,
        )
    ).one()


def schedule_promptly(asset: Asset, now: datetime) -> None:
    """Make ``asset`` due now (a new watch's first poll happens within a worker tick)."""
    if asset.next_poll_at is None or asset.next_poll_at > now:
        asset.next_poll_at = now


def unschedule_if_unwatched(session: Session, asset: Asset) -> None:
    """Stop polling ``asset`` when no watch on it is still watching."""
    active = session.scalar(
        select(func.count())
        .select_from(Watch)
        .where(Watch.asset_pk == asset.pk, Watch.state == WATCHING)
    )
    if not active:
        asset.next_poll_at = None
