"""Targets built from a registration's specs: inline ones carry their destination, an
``{"endpoint": ...}`` reference points at the shared endpoint (looked up by name or id)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.models import Endpoint, Target
from app.notify.webhook import generate_secret
from app.watches.validation import (
    EndpointRefIn,
    HttpTargetIn,
    InvalidWatch,
    SlackTargetIn,
    SlackWebhookTargetIn,
    TargetIn,
    WebhookTargetIn,
)


def resolve_endpoint_refs(
    session: Session, specs: Sequence[TargetIn], *, from_defaults: bool = False
) -> dict[int, Endpoint]:
    """The endpoint of each reference among ``specs``, by position; ``InvalidWatch`` naming every
    reference to no endpoint and every endpoint named twice (it would be told everything twice).

    ``from_defaults``: the specs are ``BRIDGE_DEFAULT_TARGETS``, so problems point at ``#/targets``
    (the request had none) and say where the reference came from.
    """
    refs = {i: spec.endpoint for i, spec in enumerate(specs) if isinstance(spec, EndpointRefIn)}
    if not refs:
        return {}
    rows = session.scalars(
        select(Endpoint).where(
            or_(Endpoint.name.in_(set(refs.values())), Endpoint.id.in_(set(refs.values())))
        )
    ).all()
    by_ref = {row.name: row for row in rows} | {row.id: row for row in rows}
    found: dict[int, Endpoint] = {}
    errors: list[dict[str, str]] = []
    seen: set[str] = set()
    for position, ref in refs.items():
        pointer = "#/targets" if from_defaults else f"#/targets/{position}/endpoint"
        where = "BRIDGE_DEFAULT_TARGETS names" if from_defaults else "names"
        endpoint = by_ref.get(ref)
        if endpoint is None:
            errors.append({"pointer": pointer, "detail": f"{where} no endpoint: {ref!r}"})
        elif endpoint.id in seen:
            errors.append({"pointer": pointer, "detail": f"{where} endpoint {ref!r} twice"})
        else:
            seen.add(endpoint.id)
            found[position] = endpoint
    if errors:
        raise InvalidWatch(errors)
    return found


def build_target(spec: TargetIn, endpoint: Endpoint | None, position: int, now: datetime) -> Target:
    """A new target row for ``spec`` (``endpoint``: the one a reference resolved to). An inline
    webhook without a secret gets a generated one; an ``http`` target keeps its request templates."""
    if endpoint is not None:
        return Target(
            position=position, type=endpoint.type, endpoint_id=endpoint.id, endpoint=endpoint,
            created_at=now,
        )  # fmt: skip
    assert not isinstance(spec, EndpointRefIn)
    target = Target(position=position, type=spec.type, created_at=now)
    if isinstance(spec, SlackTargetIn):
        target.channel = spec.channel
    else:
        target.url = spec.url
    if isinstance(spec, SlackTargetIn | SlackWebhookTargetIn):
        target.template = spec.template
    if isinstance(spec, SlackTargetIn | SlackWebhookTargetIn | HttpTargetIn):
        target.language = spec.language
    if isinstance(spec, WebhookTargetIn):
        target.secret = spec.secret or generate_secret()
    if isinstance(spec, HttpTargetIn):
        target.method, target.headers, target.body = spec.method, spec.headers, spec.body
        target.secret = spec.secret  # signed only when given a secret: none is generated
    return target
