"""The request of ``POST /api/v1/preview``, the target it describes as a notifier sees it, and
the rendering of a preview shared by the API and the dashboard (``preview_message``)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.models import Endpoint
from app.notify import preview as rendering
from app.notify.results import TargetSnapshot
from app.notify.templating import TemplateFailed
from app.vocabulary import EventType
from app.watches.validation import (
    HttpTargetIn,
    InvalidWatch,
    SlackTargetIn,
    SlackWebhookTargetIn,
    TargetIn,
    WebhookTargetIn,
)

PREVIEW_TARGET_ID = "preview"
#: What a withheld header value is shown as (as in an endpoint's own JSON).
HEADER_MASK = "****"


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


def preview_message(
    target: TargetSnapshot,
    event_type: str,
    now: datetime,
    public_url: str | None,
    language: str,
    *,
    withheld: Collection[str] = (),
) -> dict[str, Any]:
    """What ``target`` would be sent for a sample ``event_type`` event (``notify.preview.render``),
    nothing sent; the values of the headers named in ``withheld`` (a stored endpoint's own, which
    are credentials) shown as ``****``.

    Raises ``InvalidWatch`` for a template that fails, its pointer ``#/target/body``,
    ``#/target/headers`` or ``#/target/template``.
    """
    event = rendering.sample_event(event_type, now)
    try:
        rendered = rendering.render(target, event, public_url, language)
    except TemplateFailed as exc:
        field = next(
            (name for name in ("header", "template") if str(exc).startswith(f"{name} ")), "body"
        )
        field = "headers" if field == "header" else field
        raise InvalidWatch([{"pointer": f"#/target/{field}", "detail": str(exc)}]) from None
    own = {name.lower() for name in withheld}
    if own and "headers" in rendered:
        rendered["headers"] = {
            name: (HEADER_MASK if name.lower() in own else value)
            for name, value in rendered["headers"].items()
        }
    return rendered


def endpoint_snapshot(endpoint: Endpoint) -> TargetSnapshot:
    """An endpoint as its notifier would see it (its current secret alone)."""
    return TargetSnapshot(
        PREVIEW_TARGET_ID, endpoint.type, endpoint.url, endpoint.channel, endpoint.secret,
        endpoint.disabled, method=endpoint.method, headers=tuple((endpoint.headers or {}).items()),
        body=endpoint.body, endpoint_id=endpoint.id, template=endpoint.template,
        language=endpoint.language,
    )  # fmt: skip
