"""``/deliveries``: what needs a human: failed and dead deliveries, deliveries held by failing Slack
credentials, and disabled targets; and the count on the "Needs attention" link of every page."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import has_request_context, render_template, request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from app.dashboard import dashboard
from app.dashboard.auth import signed_in
from app.db import db
from app.health import bridge_state
from app.models import BridgeState, Delivery, Event, Target, Watch
from app.resources.targets import target_resource
from app.vocabulary import AuthHealth, DeliveryState, TargetType

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
    #: Pending deliveries that cannot go out until a human acts, and why (see ``held_deliveries``).
    held: list[AttentionRow] = field(default_factory=list)
    held_total: int = 0
    held_reason: str | None = None


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
    held_total, held_reason = held_count(session)
    held = _held_rows(session, page_size) if held_total else []
    return AttentionPage(
        rows=[AttentionRow(d, kind, w, target_resource(t).as_json()) for d, kind, w, t in rows],
        total=total or 0,
        page=page,
        pages=pages,
        disabled=[(target_resource(target).as_json(), watch) for target, watch in disabled],
        held=held,
        held_total=held_total,
        held_reason=held_reason,
    )


def _held_statement() -> Select[Delivery, str, Watch, Target]:
    return (
        select(Delivery, Event.type, Watch, Target)
        .join(Event, Event.id == Delivery.event_id)
        .join(Watch, Watch.id == Delivery.watch_id)
        .join(Target, Target.id == Delivery.target_id)
        .where(Delivery.state == DeliveryState.PENDING, Target.type == TargetType.SLACK)
    )


def held_count(session: Session) -> tuple[int, str | None]:
    """How many deliveries are held, and why: while Slack refuses the bot token, every pending
    ``slack`` delivery waits (retried each minute, never dropped). (0, None) when none is."""
    state = session.get(BridgeState, bridge_state.ROW_ID)
    if state is None or state.slack_auth != AuthHealth.FAILING:
        return 0, None
    count = session.scalar(select(func.count()).select_from(_held_statement().subquery())) or 0
    reason = f"Slack rejects the bridge's bot token ({state.slack_auth_detail or 'invalid_auth'})"
    return count, reason


def _held_rows(session: Session, limit: int) -> list[AttentionRow]:
    rows = session.execute(
        _held_statement()
        .options(selectinload(Delivery.attempts))
        .order_by(Delivery.seq)
        .limit(limit)
    ).all()
    return [AttentionRow(d, kind, w, target_resource(t).as_json()) for d, kind, w, t in rows]


def attention_count(session: Session) -> int:
    """What the "Needs attention" link counts: failed, dead and held deliveries."""
    ended = session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.state.in_(ATTENTION_STATES))
    )
    return (ended or 0) + held_count(session)[0]


@dashboard.context_processor
def _attention() -> dict[str, int | None]:
    """``attention_count`` for the navigation of every page a signed-in user sees."""
    if not has_request_context() or not signed_in():
        return {"attention_count": None}
    return {"attention_count": attention_count(db.session())}


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
