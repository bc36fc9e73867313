"""Request bodies of ``/api/v1/endpoints`` (pydantic v2: validation and the OpenAPI document).

An endpoint is a target with a name: its fields are the target's own (``app.watches.validation``),
so a URL passes the same address guard and a secret the same rules.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from app.vocabulary import ReplayState
from app.watches.validation import (
    ENDPOINT_NAME_PATTERN,
    BodyTemplate,
    HeaderTemplates,
    HttpMethod,
    HttpTargetIn,
    InvalidWatch,
    MessageLanguage,
    MessageTemplate,
    OutboundUrl,
    SlackTargetIn,
    SlackWebhookTargetIn,
    ValidationSettings,
    WebhookTargetIn,
    checked_url,
    validation_errors,
)

MAX_RATE_PER_SECOND = 1000.0
MAX_OVERLAP_SECONDS = 30 * 86400
#: An RFC 3339 time as text (the document's ``date-time``). Pydantic alone would also take numbers
#: and digit strings as Unix times, which the API does not promise.
RFC3339_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

EndpointName = Annotated[
    str,
    StringConstraints(pattern=ENDPOINT_NAME_PATTERN),
    Field(
        description="1 to 63 lower-case letters, digits, '.', '_' or '-', first a letter or digit"
    ),
]
Description = Annotated[
    str, StringConstraints(max_length=500, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")
]
RatePerSecond = Annotated[
    float,
    Field(gt=0, le=MAX_RATE_PER_SECOND, allow_inf_nan=False, strict=True,
          description="at most this many requests per second to this endpoint, across all workers"),
]  # fmt: skip


class _EndpointFields(BaseModel):
    name: EndpointName
    description: Description | None = None
    rate_limit_per_second: RatePerSecond | None = None


class WebhookEndpointIn(WebhookTargetIn, _EndpointFields):
    """A webhook endpoint; without ``secret`` one is generated and shown once."""


class SlackEndpointIn(SlackTargetIn, _EndpointFields):
    """A Slack channel endpoint (the bridge's bot token posts to it)."""


class SlackWebhookEndpointIn(SlackWebhookTargetIn, _EndpointFields):
    """A Slack incoming-webhook endpoint."""


class HttpEndpointIn(HttpTargetIn, _EndpointFields):
    """An ``http`` endpoint: a JSON body rendered from a template (signed when ``secret`` is given)."""


EndpointCreate = Annotated[
    WebhookEndpointIn | SlackEndpointIn | SlackWebhookEndpointIn | HttpEndpointIn,
    Field(discriminator="type"),
]


class EndpointChange(BaseModel):
    """Body of ``PATCH /api/v1/endpoints/{id or name}``: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    url: OutboundUrl | None = None
    channel: Annotated[str, StringConstraints(pattern=r"^#?[A-Za-z0-9._-]{1,80}$")] | None = None
    method: HttpMethod | None = Field(default=None, description="http endpoints only")
    headers: HeaderTemplates | None = Field(
        default=None, description="http endpoints only: replaces every header template"
    )
    body: BodyTemplate | None = Field(default=None, description="http endpoints only")
    template: MessageTemplate | None = Field(
        default=None, description="slack and slack_webhook endpoints only; null removes it"
    )
    language: MessageLanguage | None = Field(
        default=None,
        description="slack, slack_webhook and http endpoints only; null: BRIDGE_LANGUAGE",
    )
    description: Description | None = None
    rate_limit_per_second: RatePerSecond | None = None
    disabled: bool | None = Field(
        default=None,
        strict=True,  # a JSON boolean, not "yes" or 1
        description="false re-enables the endpoint and makes its held deliveries due",
    )

    _url = field_validator("url")(checked_url)


class RotateSecret(BaseModel):
    """Body of ``POST .../rotate-secret`` (may be empty)."""

    model_config = ConfigDict(extra="forbid")

    overlap_seconds: float | None = Field(
        default=None, ge=0, le=MAX_OVERLAP_SECONDS, allow_inf_nan=False, strict=True,
        description="how long the old secret still signs; BRIDGE_SECRET_OVERLAP when absent",
    )  # fmt: skip


class Replay(BaseModel):
    """Body of ``POST .../replay``: which ended deliveries of the endpoint to send again."""

    model_config = ConfigDict(extra="forbid")

    state: ReplayState = Field(
        default=ReplayState.DEAD, description="any: dead, failed and succeeded ones"
    )
    since: AwareDatetime | None = Field(default=None, description="RFC 3339; events at or after it")
    until: AwareDatetime | None = Field(default=None, description="RFC 3339; events before it")

    @field_validator("since", "until", mode="before")
    @classmethod
    def _rfc3339_text(cls, value: Any) -> Any:
        if value is not None and not (isinstance(value, str) and RFC3339_TIME.match(value)):
            raise ValueError("must be an RFC 3339 time with an offset, e.g. 2026-11-25T12:00:00Z")
        return value


def validated(model: Any, payload: Any, context: ValidationSettings) -> Any:
    """``payload`` as ``model``, or ``InvalidWatch`` listing every problem with its pointer."""
    if not isinstance(payload, dict):
        raise InvalidWatch([{"pointer": "#", "detail": "must be a JSON object"}])
    try:
        return TypeAdapter(model).validate_python(payload, context=context)
    except ValidationError as exc:
        raise InvalidWatch(validation_errors(exc, payload)) from None
