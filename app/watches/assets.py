"""Upstream asset rows: one per (workspace, project, asset, generation), shared by their watches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import Asset, Watch
from app.vocabulary import WatchState


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


def upsert_due_asset(
    session: Session, workspace: str, project_id: str, asset_id: str, api: str, now: datetime
) -> Asset:
    """The asset row for these coordinates, inserted if missing, due now at the latest.

    One statement (INSERT ... ON CONFLICT DO UPDATE ... RETURNING) instead of an insert, a select and
    an update: registration's hot path. Safe against concurrent inserts; the row stays locked by this
    transaction until it commits, like the update it replaces.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Asset).values(
        workspace=workspace, project_id=project_id, asset_id=asset_id, api=api, interval=0.0,
        poll_count=0, consecutive_errors=0, next_poll_at=now, created_at=now, updated_at=now,
    )  # fmt: skip
    current = Asset.__table__.c.next_poll_at
    upsert = statement.on_conflict_do_update(
        index_elements=["workspace", "project_id", "asset_id", "api"],
        set_={"next_poll_at": case((current.is_(None) | (current > now), now), else_=current)},
    ).returning(Asset)
    return session.scalars(upsert, execution_options={"populate_existing": True}).one()


def unschedule_if_unwatched(session: Session, asset: Asset) -> None:
    """Stop polling ``asset`` when no watch on it is still watching."""
    active = session.scalar(
        select(func.count())
        .select_from(Watch)
        .where(Watch.asset_pk == asset.pk, Watch.state == WatchState.WATCHING)
    )
    if not active:
        asset.next_poll_at = None
