"""``/deliveries``: what needs a human: failed and dead deliveries, and disabled targets."""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.dashboard import dashboard
from app.db import db
from app.models import Delivery, Event, Target, Watch
from app.resources.targets import target_resource
from app.vocabulary import DeliveryState

PAGE_SIZE = 25
ATTENTION_STATES = (DeliveryState.FAILED, DeliveryState.DEAD)


@dataclass(frozen=True)
class AttentionRow:
    """One delivery that ended without success, with what the page shows about it."""

    delivery: Delivery
    event_type: str
    watch: Watch
    target: dict


@dataclass(frozen=True)
class AttentionPage:
    """A page of ended deliveries (newest first), their total, and the disabled targets."""

    rows: list[AttentionRow]
    total: int
    page: int
    pages: int
    disabled: list[tuple[dict, Watch]]


def needing_attention(session: Session, page: int, page_size: int = PAGE_SIZE) -> AttentionPage:
    """Failed and dead deliveries, newest first, paginated; and every disabled target."""
    total = session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.state.in_(ATTENTION_STATES))
    )
    pages = max(1, -(-(total or 0) // page_size))
    page = min(max(page, 1), pages)
    rows = session.execute(
        select(Delivery, Event.type, Watch, Target)
        .join(Event, Event.id == Delivery.event_id)
        .join(Watch, Watch.id == Delivery.watch_id)
        .join(Target, Target.id == Delivery.target_id)
        .where(Delivery.state.in_(ATTENTION_STATES))
        .options(selectinload(Delivery.attempts))
        .order_by(Delivery.seq.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    disabled = session.execute(
        select(Target, Watch)
        .join(Watch, Watch.id == Target.watch_id)
        .where(Target.disabled.is_(True))
        .order_by(Target.disabled_at.desc())
    ).all()
    return AttentionPage(
        rows=[AttentionRow(d, kind, w, target_resource(t).as_json()) for d, kind, w, t in rows],
        total=total or 0,
        page=page,
        pages=pages,
        disabled=[(target_resource(target).as_json(), watch) for target, watch in disabled],
    )


@dashboard.get("/deliveries")
def deliveries() -> str:
    """Deliveries needing attention, each with a retry button, and the disabled targets."""
    page_text = request.args.get("page", "1")
    page = (
        int(page_text) if page_text.isascii() and page_text.isdigit() and len(page_text) < 7 else 1
    )
    return render_template(
        "dashboard/deliveries.html", attention=needing_attention(db.session(), page)
    )
