"""Reading the demo's progress from the database (the same rows the API and dashboard read)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from app.db import db
from app.models import Delivery, Watch


def sample_states(app: Flask, watch_ids: list[str]) -> tuple[dict[str, str], bool]:
    """Each watch's state (with its upstream status while watching), and whether every delivery of
    these watches has ended (none pending)."""
    with app.app_context():
        rows = db.session.execute(
            select(Watch.id, Watch.state, Watch.status).where(Watch.id.in_(watch_ids))
        ).all()
        pending = db.session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.watch_id.in_(watch_ids), Delivery.state == "pending")
        )
        db.session.remove()
    states = {
        watch_id: (state if state != "watching" else f"watching ({status or 'not yet polled'})")
        for watch_id, state, status in rows
    }
    return states, pending == 0
