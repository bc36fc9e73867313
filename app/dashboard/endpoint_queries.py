"""What the endpoint pages read: every endpoint with its health, one endpoint's recent deliveries
across the watches that use it, and the endpoints the registration form offers.

Destinations are computed here, never in a template: a Slack incoming-webhook URL is a credential,
so it leaves this module masked (``mask_slack_webhook``) and no template can forget to mask it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.endpoints.health import EndpointCounts, endpoint_counts
from app.models import Delivery, Endpoint, Event, Watch
from app.resources.targets import mask_slack_webhook
from app.vocabulary import TargetType

#: How many of an endpoint's deliveries its page lists (newest first).
DELIVERIES_SHOWN = 50


def destination(endpoint: Endpoint) -> str:
    """Where ``endpoint`` sends, as the dashboard may show it: a channel, a webhook URL, or a Slack
    incoming-webhook URL with its credential masked."""
    if endpoint.type == TargetType.SLACK:
        return endpoint.channel or ""
    if endpoint.type == TargetType.SLACK_WEBHOOK:
        return mask_slack_webhook(endpoint.url or "")
    return endpoint.url or ""


@dataclass(frozen=True)
class EndpointSummary:
    """One endpoint with its delivery counts and its (masked) destination."""

    endpoint: Endpoint
    counts: EndpointCounts
    where: str


def summaries(session: Session) -> list[EndpointSummary]:
    """Every endpoint, by name, with its health (two queries whatever their number)."""
    rows = list(session.scalars(select(Endpoint).order_by(Endpoint.name)))
    counts = endpoint_counts(session, rows)
    return [EndpointSummary(row, counts[row.id], destination(row)) for row in rows]


def summary(session: Session, endpoint: Endpoint) -> EndpointSummary:
    """``endpoint`` with its health."""
    counts = endpoint_counts(session, [endpoint])[endpoint.id]
    return EndpointSummary(endpoint, counts, destination(endpoint))


@dataclass(frozen=True)
class EndpointDelivery:
    """One delivery to the endpoint, with its event's type and the watch it belongs to."""

    delivery: Delivery
    event_type: str
    watch: Watch


def recent_deliveries(
    session: Session, endpoint: Endpoint, limit: int | None = None
) -> tuple[list[EndpointDelivery], int]:
    """The endpoint's newest ``limit`` (default ``DELIVERIES_SHOWN``) deliveries across every
    watch (its lane), and how many it has in all."""
    limit = DELIVERIES_SHOWN if limit is None else limit
    total = session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.lane == endpoint.id)
    )
    rows = session.execute(
        select(Delivery, Event.type, Watch)
        .join(Event, Event.id == Delivery.event_id)
        .join(Watch, Watch.id == Delivery.watch_id)
        .where(Delivery.lane == endpoint.id)
        .order_by(Delivery.seq.desc())
        .limit(limit)
    ).all()
    return [EndpointDelivery(d, kind, watch) for d, kind, watch in rows], total or 0


@dataclass(frozen=True)
class EndpointChoice:
    """An endpoint the registration form offers as a target."""

    name: str
    type: str
    where: str
    disabled: bool


def endpoint_choices(session: Session) -> list[EndpointChoice]:
    """Every endpoint, by name, as the registration form lists them."""
    rows = session.scalars(select(Endpoint).order_by(Endpoint.name))
    return [EndpointChoice(row.name, row.type, destination(row), row.disabled) for row in rows]
