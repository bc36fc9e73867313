"""An endpoint as the API shows it: where it sends, and its health. Its secret never appears,
except once: in the answer that created or rotated it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from app.endpoints.health import EndpointCounts
from app.models import Endpoint as EndpointRow
from app.outbox.envelopes import ContractModel, sometimes
from app.resources.fields import Timestamp
from app.resources.targets import (
    LANGUAGE_FIELD,
    TEMPLATE_FIELD,
    mask_slack_webhook,
    masked_headers,
    message_fields,
)
from app.vocabulary import Language, TargetType

EndpointId = Annotated[str, StringConstraints(pattern=r"^ept_[0-9A-Z]{26}$")]


class Endpoint(ContractModel):
    """A named, shared notification target with its health."""

    id: EndpointId
    name: str
    type: TargetType
    url: str | None = Field(description="null for slack; a slack_webhook URL's credential is ****")
    channel: str | None
    method: Literal["POST", "PUT"] | SkipJsonSchema[None] = sometimes("http endpoints only")
    headers: dict[str, Literal["****"]] | SkipJsonSchema[None] = sometimes(
        "http endpoints only: header names, every value shown as ****"
    )
    body: str | SkipJsonSchema[None] = sometimes("http endpoints only: the body template")
    template: str | SkipJsonSchema[None] = TEMPLATE_FIELD
    language: Language | SkipJsonSchema[None] = LANGUAGE_FIELD
    description: str | None
    rate_limit_per_second: float | None
    disabled: bool
    disabled_reason: str | None
    disabled_at: Timestamp | None
    last_success_at: Timestamp | None
    last_failure_at: Timestamp | None
    failing_since: Timestamp | None
    pending_deliveries: int = Field(description="not yet delivered, held ones included")
    held_deliveries: int = Field(description="pending while the endpoint is disabled")
    dead_deliveries: int
    failed_deliveries: int
    watching_watches: int = Field(description="watching watches that use this endpoint")
    previous_secret_until: Timestamp | None = Field(
        description="until then, requests also carry a signature with the previous secret"
    )
    created_at: Timestamp
    updated_at: Timestamp
    secret: str | SkipJsonSchema[None] = sometimes(
        "the generated or rotated Standard Webhooks secret, shown once",
        pattern=r"^whsec_[A-Za-z0-9+/]+=*$",
    )


class EndpointList(ContractModel):
    items: list[Endpoint]


class Queued(ContractModel):
    """Answer of ``replay``: how many deliveries were queued again."""

    queued: int


def endpoint_resource(
    row: EndpointRow, counts: EndpointCounts, secret: str | None = None
) -> Endpoint:
    """``row`` as the API shows it (built field by field: the row holds its secrets in clear)."""
    url = row.url
    if row.type == TargetType.SLACK_WEBHOOK and url is not None:
        url = mask_slack_webhook(url)
    once: dict[str, Any] = {} if secret is None else {"secret": secret}
    if row.type == TargetType.HTTP:
        once |= {
            "method": row.method or "POST", "headers": masked_headers(row.headers),
            "body": row.body or "",
        }  # fmt: skip
    once |= message_fields(row)
    until = row.previous_secret_until if row.previous_secret else None
    return Endpoint(
        id=row.id, name=row.name, type=TargetType(row.type), url=url, channel=row.channel,
        description=row.description, rate_limit_per_second=row.rate_limit_per_second,
        disabled=row.disabled, disabled_reason=row.disabled_reason, disabled_at=row.disabled_at,
        last_success_at=row.last_success_at, last_failure_at=row.last_failure_at,
        failing_since=row.failing_since, pending_deliveries=counts.pending,
        held_deliveries=counts.held, dead_deliveries=counts.dead,
        failed_deliveries=counts.failed, watching_watches=counts.watching,
        previous_secret_until=until, created_at=row.created_at, updated_at=row.updated_at, **once,
    )  # fmt: skip
