"""A watch's targets as the API shows them. Secrets never leave here, except a generated webhook
secret in the 201 answer that generated it; a Slack incoming-webhook URL is masked."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from app.models import Target as TargetRow
from app.outbox.envelopes import ContractModel, sometimes
from app.resources.fields import TargetId
from app.vocabulary import Language, TargetType

#: A path segment short enough to be an id rather than a credential (Slack's T.../B... ids).
_SHORT_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,15}$")


def mask_slack_webhook(url: str) -> str:
    """Hide the credential in an incoming-webhook URL: the path from its last segment, or from its
    first long one, becomes ``****`` (query and fragment are dropped).

    Slack's ``/services/T000/B000/<secret>`` keeps its short workspace and app ids visible;
    Slack-compatible tools carry their key elsewhere (Mattermost ``/hooks/<key>``, Discord
    ``/api/webhooks/<id>/<token>/slack``), so a long segment hides everything after it too.
    """
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    shown: list[str] = []
    for segment in segments[:-1]:
        if not _SHORT_SEGMENT.match(segment):
            break
        shown.append(segment)
    return urlunsplit((parts.scheme, parts.netloc, "/".join(["", *shown, "****"]), "", ""))


TEMPLATE_FIELD = sometimes("the message template, when it has one")
LANGUAGE_FIELD = sometimes("the language of its default messages, when it names one")
ENDPOINT_FIELD = sometimes("the name of the endpoint this target is (its destination and health)")

# Each target model spells all its fields: the key order of the JSON (id, type, where it goes,
# disabled, disabled_reason) is the field order, and a shared base class would put its own
# fields first.


class WebhookTarget(ContractModel):
    """A webhook target. ``secret`` appears only in the 201 answer that generated it (and its replay)."""

    id: TargetId
    type: Literal[TargetType.WEBHOOK]
    url: str
    disabled: bool
    disabled_reason: str | None
    endpoint: str | SkipJsonSchema[None] = ENDPOINT_FIELD
    secret: str | SkipJsonSchema[None] = sometimes(
        "the generated Standard Webhooks secret, shown once", pattern=r"^whsec_[A-Za-z0-9+/]+=*$"
    )


class SlackTarget(ContractModel):
    """A Slack channel target."""

    id: TargetId
    type: Literal[TargetType.SLACK]
    channel: str
    disabled: bool
    disabled_reason: str | None
    endpoint: str | SkipJsonSchema[None] = ENDPOINT_FIELD
    template: str | SkipJsonSchema[None] = TEMPLATE_FIELD
    language: Language | SkipJsonSchema[None] = LANGUAGE_FIELD


class SlackWebhookTarget(ContractModel):
    """A Slack incoming-webhook target; the URL's last path segment (a credential) is ``****``."""

    id: TargetId
    type: Literal[TargetType.SLACK_WEBHOOK]
    url: Annotated[str, StringConstraints(pattern=r"^[^?#]*/\*\*\*\*$")]
    disabled: bool
    disabled_reason: str | None
    endpoint: str | SkipJsonSchema[None] = ENDPOINT_FIELD
    template: str | SkipJsonSchema[None] = TEMPLATE_FIELD
    language: Language | SkipJsonSchema[None] = LANGUAGE_FIELD


#: What every header value of an ``http`` target shows: values often carry tokens.
MASKED = "****"


def masked_headers(headers: dict[str, str] | None) -> dict[str, str]:
    """Header names as given, every value ``****``."""
    return dict.fromkeys(headers or {}, MASKED)


class HttpTarget(ContractModel):
    """An ``http`` target: its request's method, header names (values masked) and body template."""

    id: TargetId
    type: Literal[TargetType.HTTP]
    url: str
    method: Literal["POST", "PUT"]
    headers: dict[str, Literal["****"]] = Field(description="every value is shown as ****")
    body: str = Field(description="the body template")
    disabled: bool
    disabled_reason: str | None
    endpoint: str | SkipJsonSchema[None] = ENDPOINT_FIELD
    language: Language | SkipJsonSchema[None] = LANGUAGE_FIELD


Target = Annotated[
    WebhookTarget | SlackTarget | SlackWebhookTarget | HttpTarget, Field(discriminator="type")
]


def message_fields(source: Any) -> dict[str, Any]:
    """``template`` and ``language`` of a target or endpoint row, each only when it has one."""
    fields = {"template": source.template, "language": source.language}
    return {name: value for name, value in fields.items() if value is not None}


def target_resource(
    target: TargetRow, generated_secret: str | None = None
) -> WebhookTarget | SlackTarget | SlackWebhookTarget | HttpTarget:
    """A target row as the API shows it; ``generated_secret`` only for the answer that made it.

    A target that is an endpoint shows the endpoint's destination and state, and its name. Built
    field by field, never from the row's attributes: the row holds the secret in clear.
    """
    source = target.endpoint or target
    shared = {
        "id": target.id,
        "disabled": source.disabled,
        "disabled_reason": source.disabled_reason,
    }
    if target.endpoint is not None:
        shared["endpoint"] = target.endpoint.name
    shared |= message_fields(source)
    if target.type == TargetType.SLACK:
        return SlackTarget(type=target.type, channel=source.channel, **shared)
    if target.type == TargetType.SLACK_WEBHOOK:
        return SlackWebhookTarget(
            type=target.type, url=mask_slack_webhook(source.url or ""), **shared
        )
    if target.type == TargetType.HTTP:
        return HttpTarget(
            type=target.type, url=source.url, method=source.method or "POST",
            headers=masked_headers(source.headers), body=source.body or "", **shared,
        )  # fmt: skip
    # The secret is given only when there is one, so ``as_json`` leaves the key out otherwise.
    if generated_secret is not None:
        shared["secret"] = generated_secret
    return WebhookTarget(type=target.type, url=source.url, **shared)
