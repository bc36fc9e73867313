"""The request of ``POST /api/v1/preview`` and the target it describes, as a notifier sees it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.models import Endpoint
from app.notify.results import TargetSnapshot
from app.vocabulary import EventType
from app.watches.validation import (
    HttpTargetIn,
    SlackTargetIn,
    SlackWebhookTargetIn,
    TargetIn,
    WebhookTargetIn,
)

PREVIEW_TARGET_ID = "preview"


class PreviewRequest(BaseModel):
    """Body of ``POST /api/v1/preview``: a target as in a registration (or ``{"endpoint": name}``)
    and the event type of the sample event to render it for."""

    model_config = ConfigDict(extra="forbid")

    target: TargetIn
    event_type: EventType = Field(
        default=EventType.ANALYSIS_COMPLETED, description="the sample event's type"
    )


def spec_snapshot(
    spec: WebhookTargetIn | SlackTargetIn | SlackWebhookTargetIn | HttpTargetIn,
) -> TargetSnapshot:
    """An inline target spec as its notifier would see it."""
    if isinstance(spec, SlackTargetIn):
        return TargetSnapshot(
            PREVIEW_TARGET_ID, spec.type, None, spec.channel, None, False,
            template=spec.template, language=spec.language,
        )  # fmt: skip
    if isinstance(spec, HttpTargetIn):
        return TargetSnapshot(
            PREVIEW_TARGET_ID, spec.type, spec.url, None, spec.secret, False, method=spec.method,
            headers=tuple(spec.headers.items()), body=spec.body, language=spec.language,
        )  # fmt: skip
    if isinstance(spec, SlackWebhookTargetIn):
        return TargetSnapshot(
            PREVIEW_TARGET_ID, spec.type, spec.url, None, None, False,
            template=spec.template, language=spec.language,
        )  # fmt: skip
    return TargetSnapshot(PREVIEW_TARGET_ID, spec.type, spec.url, None, spec.secret, False)


def endpoint_snapshot(endpoint: Endpoint) -> TargetSnapshot:
    """An endpoint as its notifier would see it (its current secret alone)."""
    return TargetSnapshot(
        PREVIEW_TARGET_ID, endpoint.type, endpoint.url, endpoint.channel, endpoint.secret,
        endpoint.disabled, method=endpoint.method, headers=tuple((endpoint.headers or {}).items()),
        body=endpoint.body, endpoint_id=endpoint.id, template=endpoint.template,
        language=endpoint.language,
    )  # fmt: skip
