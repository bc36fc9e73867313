"""What can be done to endpoints (API, dashboard and CLI alike): create, change, enable, delete,
rotate the secret, replay. The caller commits; every function takes the session and ``now``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.endpoints.validation import (
    EndpointChange,
    HttpEndpointIn,
    Replay,
    SlackEndpointIn,
    SlackWebhookEndpointIn,
    WebhookEndpointIn,
)
from app.models import Delivery, Endpoint, Event, Target, Watch
from app.notify.webhook import generate_secret
from app.outbox.endpoint_health import disable_endpoint
from app.vocabulary import DeliveryState, ReplayState, TargetType, WatchState
from app.watches.validation import EndpointRefIn

OPERATOR_DISABLED = "disabled by an operator"
#: What the targets of ended watches say once the endpoint they used is deleted (an operator's act,
#: not a receiver's: no ``endpoint_disabled`` alert counts them).
ENDPOINT_DELETED = "its endpoint was deleted"


class EndpointConflict(Exception):
    """An action the endpoint's state forbids (``409``); ``str()`` says why."""


class EndpointFieldError(ValueError):
    """A change that does not fit the endpoint's type (``422``): ``pointer`` and ``detail``."""

    def __init__(self, pointer: str, detail: str) -> None:
        super().__init__(detail)
        self.pointer, self.detail = pointer, detail


@dataclass(frozen=True)
class Created:
    endpoint: Endpoint
    #: The generated webhook secret, shown once; None when the request gave one (or needs none).
    generated_secret: str | None


def find_endpoint(session: Session, ref: str) -> Endpoint | None:
    """The endpoint with this id or name."""
    return session.scalars(
        select(Endpoint).where(or_(Endpoint.id == ref, Endpoint.name == ref))
    ).first()


def create_endpoint(
    session: Session,
    spec: WebhookEndpointIn | SlackEndpointIn | SlackWebhookEndpointIn | HttpEndpointIn,
    now: datetime,
) -> Created:
    """Add an endpoint from a validated ``EndpointCreate``; ``EndpointConflict`` if the name is taken."""
    name = spec.name
    if session.scalar(select(func.count()).where(Endpoint.name == name)):
        raise EndpointConflict(f"an endpoint named {name!r} exists already")
    endpoint = Endpoint(
        name=name,
        type=spec.type,
        description=spec.description,
        rate_limit_per_second=spec.rate_limit_per_second,
        disabled=False,
        created_at=now,
        updated_at=now,
    )
    generated = None
    if isinstance(spec, SlackEndpointIn):
        endpoint.channel = spec.channel
    else:
        endpoint.url = spec.url
    if isinstance(spec, WebhookEndpointIn):
        generated = None if spec.secret else generate_secret()
        endpoint.secret = spec.secret or generated
    if isinstance(spec, HttpEndpointIn):
        endpoint.method, endpoint.headers, endpoint.body = spec.method, spec.headers, spec.body
        endpoint.secret = spec.secret  # an http endpoint is signed only when given a secret
    if isinstance(spec, SlackEndpointIn | SlackWebhookEndpointIn):
        endpoint.template = spec.template
    if not isinstance(spec, WebhookEndpointIn):
        endpoint.language = spec.language
    session.add(endpoint)
    session.flush()
    return Created(endpoint, generated)


def change_endpoint(
    session: Session, endpoint: Endpoint, change: EndpointChange, now: datetime
) -> None:
    """Apply a ``PATCH``: only the fields it sets. ``disabled: false`` enables the endpoint and makes
    its held deliveries due now, in order; ``true`` holds its deliveries from now on."""
    given = change.model_fields_set
    if "url" in given:
        if endpoint.type == TargetType.SLACK:
            raise EndpointFieldError("#/url", "a slack endpoint has a channel, not a URL")
        if change.url is None:
            raise EndpointFieldError("#/url", "must be an http(s) URL")
        endpoint.url = change.url
    if "channel" in given:
        if endpoint.type != TargetType.SLACK:
            raise EndpointFieldError("#/channel", f"a {endpoint.type} endpoint has no channel")
        if change.channel is None:
            raise EndpointFieldError("#/channel", "must be a channel id or name")
        endpoint.channel = change.channel
    _change_request(endpoint, change)
    _change_message(endpoint, change)
    if "description" in given:
        endpoint.description = change.description
    if "rate_limit_per_second" in given:
        endpoint.rate_limit_per_second = change.rate_limit_per_second
        endpoint.next_send_at = None
    if change.disabled is True:
        disable_endpoint(endpoint, OPERATOR_DISABLED, now)
    elif change.disabled is False and endpoint.disabled:
        # Only a disabled endpoint has held deliveries; an enabled one keeps its retry waits.
        enable_endpoint(session, endpoint, now)
    endpoint.updated_at = now


#: The fields of an ``http`` endpoint's request a ``PATCH`` may change (none may be null).
HTTP_FIELDS = ("method", "headers", "body")


def _change_request(endpoint: Endpoint, change: EndpointChange) -> None:
    """Apply ``method``, ``headers`` and ``body`` of a change (``http`` endpoints only)."""
    for name in HTTP_FIELDS:
        if name not in change.model_fields_set:
            continue
        if endpoint.type != TargetType.HTTP:
            raise EndpointFieldError(f"#/{name}", f"a {endpoint.type} endpoint has no {name}")
        value = getattr(change, name)
        if value is None:
            raise EndpointFieldError(f"#/{name}", "must not be null")
        setattr(endpoint, name, value)


#: The endpoint types with a message template, and those with a message language.
TEMPLATE_TYPES = (TargetType.SLACK, TargetType.SLACK_WEBHOOK)
LANGUAGE_TYPES = (TargetType.SLACK, TargetType.SLACK_WEBHOOK, TargetType.HTTP)


def _change_message(endpoint: Endpoint, change: EndpointChange) -> None:
    """Apply ``template`` and ``language`` of a change (null removes them: the default text, the
    bridge's language)."""
    given = change.model_fields_set
    for name, types in (("template", TEMPLATE_TYPES), ("language", LANGUAGE_TYPES)):
        if name not in given:
            continue
        if endpoint.type not in types:
            raise EndpointFieldError(f"#/{name}", f"a {endpoint.type} endpoint has no {name}")
        setattr(endpoint, name, getattr(change, name))


def enable_endpoint(session: Session, endpoint: Endpoint, now: datetime) -> int:
    """Enable ``endpoint``: its held deliveries become due now and go out in event order (they count
    as not yet attempted in its lane). Returns how many were held."""
    endpoint.disabled, endpoint.disabled_reason, endpoint.disabled_at = False, None, None
    endpoint.failing_since = None
    endpoint.updated_at = now
    released = session.execute(
        update(Delivery)
        .where(Delivery.lane == endpoint.id, Delivery.state == DeliveryState.PENDING)
        .values(next_attempt_at=now, first_attempted_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(released, "rowcount", 0) or 0)


def watching_users(session: Session, endpoint: Endpoint) -> int:
    """How many watching watches have this endpoint among their targets."""
    return int(
        session.scalar(
            select(func.count(func.distinct(Target.watch_id)))
            .join(Watch, Watch.id == Target.watch_id)
            .where(Target.endpoint_id == endpoint.id, Watch.state == WatchState.WATCHING)
        )
        or 0
    )


def named_by(endpoint: Endpoint, configured: Sequence[object]) -> bool:
    """Whether configured targets (``BRIDGE_DEFAULT_TARGETS``, ``BRIDGE_ALERT_TARGETS``) name it."""
    refs = {spec.endpoint for spec in configured if isinstance(spec, EndpointRefIn)}
    return endpoint.name in refs or endpoint.id in refs


def delete_endpoint(
    session: Session, endpoint: Endpoint, now: datetime, configured: Sequence[object] = ()
) -> None:
    """Remove ``endpoint``; ``EndpointConflict`` while a watching watch uses it or the
    ``configured`` targets (default and alert targets) name it.

    Ended watches that used it keep their history: their targets get a copy of its destination
    (never its secret) and its undelivered deliveries end ``failed``, saying why.
    """
    if named_by(endpoint, configured):
        raise EndpointConflict(
            "BRIDGE_DEFAULT_TARGETS or BRIDGE_ALERT_TARGETS names this endpoint; take it out first"
        )
    users = watching_users(session, endpoint)
    if users:
        raise EndpointConflict(
            f"{users} watching watch{'es use' if users != 1 else ' uses'} this endpoint;"
            " stop them or wait until they end"
        )
    session.execute(
        update(Delivery)
        .where(Delivery.lane == endpoint.id, Delivery.state == DeliveryState.PENDING)
        .values(state=DeliveryState.FAILED, next_attempt_at=None, lease_owner=None,
                lease_expires_at=None, last_error="endpoint deleted", updated_at=now)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    session.execute(
        update(Target)
        .where(Target.endpoint_id == endpoint.id)
        .values(endpoint_id=None, url=endpoint.url, channel=endpoint.channel,
                method=endpoint.method, headers=endpoint.headers, body=endpoint.body,
                template=endpoint.template, language=endpoint.language,
                disabled=True, disabled_reason=ENDPOINT_DELETED, disabled_at=now)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    session.delete(endpoint)
    session.flush()


def rotate_secret(session: Session, endpoint: Endpoint, overlap: float, now: datetime) -> str:
    """A new secret for a webhook endpoint, returned once; the current one keeps signing (a second
    signature) for ``overlap`` seconds. ``EndpointConflict`` for an endpoint without a secret."""
    if endpoint.type != TargetType.WEBHOOK and not endpoint.secret:
        # An http endpoint is signed only when it was given a secret; then it rotates like a webhook's.
        raise EndpointConflict(f"a {endpoint.type} endpoint has no signing secret")
    new = generate_secret()
    endpoint.previous_secret = endpoint.secret if overlap > 0 else None
    endpoint.previous_secret_until = now + timedelta(seconds=overlap) if overlap > 0 else None
    endpoint.secret = new
    endpoint.updated_at = now
    session.flush()
    return new


def replay(session: Session, endpoint: Endpoint, request: Replay, now: datetime) -> int:
    """Send again the endpoint's ended deliveries that ``request`` selects (same event, so the same
    ``webhook-id``), in event order, each with a fresh retry schedule; returns how many."""
    states = {
        ReplayState.DEAD: [DeliveryState.DEAD],
        ReplayState.FAILED: [DeliveryState.FAILED],
        ReplayState.ANY: [DeliveryState.DEAD, DeliveryState.FAILED, DeliveryState.SUCCEEDED],
    }[request.state]
    chosen = (
        select(Delivery.seq)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.lane == endpoint.id, Delivery.state.in_(states))
    )
    if request.since is not None:
        chosen = chosen.where(Event.created_at >= request.since)
    if request.until is not None:
        chosen = chosen.where(Event.created_at < request.until)
    seqs = list(session.scalars(chosen))
    if not seqs:
        return 0
    session.execute(
        update(Delivery)
        .where(Delivery.seq.in_(seqs))
        .values(state=DeliveryState.PENDING, next_attempt_at=now, first_attempted_at=None,
                lease_owner=None, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    return len(seqs)
