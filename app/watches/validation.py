"""Request schemas of the API (pydantic v2). They validate input and generate the OpenAPI document.

Outbound URLs are checked against the address guard inside validation, with the resolver and the
``BRIDGE_ALLOW_PRIVATE_URLS`` switch passed as validation context (``ValidationSettings``), so every
problem of a body comes back in one ``errors`` list.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from app.notify import mrkdwn_templates
from app.notify.http_target import MAX_HEADERS
from app.notify.templating import TemplateFailed
from app.notify.webhook import SECRET_PREFIX
from app.outbound.addresses import BlockedAddress, Resolver, check_url, system_resolver
from app.vocabulary import (
    DEFAULT_EVENTS,
    SUBSCRIBABLE_EVENTS,
    ApiGeneration,
    EventType,
    Language,
    TargetType,
)
from app.watches.refusals import UPSTREAM_ID_RULE, describe, one_of
from app.watches.template_checks import (
    checked_body,
    checked_header_name,
    checked_header_value,
    event_errors,
)

MIN_TIMEOUT_SECONDS = 60
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600
MAX_TARGETS = 10
MAX_LABELS = 20
MIN_SECRET_BYTES, MAX_SECRET_BYTES = 24, 64
MAX_HEADER_VALUE = 4096


def _subscribable(value: Any) -> Any:
    # Checked before the enum so that the error lists only what a registration may name.
    if isinstance(value, str) and value in SUBSCRIBABLE_EVENTS:
        return value
    expected = one_of([event.value for event in SUBSCRIBABLE_EVENTS])
    raise PydanticCustomError("enum", "must be {expected}", {"expected": expected})


#: An event type a registration may subscribe to.
SubscribableEvent = Annotated[
    EventType,
    BeforeValidator(_subscribable),
    WithJsonSchema({"type": "string", "enum": [event.value for event in SUBSCRIBABLE_EVENTS]}),
]


@dataclass(frozen=True)
class ValidationSettings:
    """What URL validation needs from the running bridge (passed as pydantic context)."""

    resolver: Resolver = system_resolver
    allow_private: bool = False
    #: ``SLACK_BOT_TOKEN`` is set: ``slack`` targets can be posted to.
    slack_configured: bool = True


SLACK_NOT_CONFIGURED = (
    "slack targets need the bridge's bot token, and SLACK_BOT_TOKEN is not set: set it, "
    "or use a slack_webhook target"
)


def _id_to_text(value: Any) -> Any:
    # Ids may be JSON numbers; they are stored as text. Booleans and fractions are not ids; an
    # integral float (10.0) is the integer JSON Schema says it is ("integer" in the document).
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


UPSTREAM_ID_MAX_LENGTH = 128
#: The same rule as a JSON Schema pattern (with ``maxLength``), without lookarounds so that every
#: engine reads it alike: dots only when there are three or more, else at least one other character.
UPSTREAM_ID_PATTERN = r"^(?:\.{3,}|\.*[A-Za-z0-9_-][A-Za-z0-9._-]*)$"
_UPSTREAM_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{UPSTREAM_ID_MAX_LENGTH}}}")
#: Segments the upstream URL would resolve as "this" and "parent" directory (RFC 3986 5.2.4).
DOT_SEGMENTS = (".", "..")


def _upstream_id(value: str) -> str:
    # fullmatch, never "$": Python's "$" also matches before a trailing newline.
    if not _UPSTREAM_ID.fullmatch(value) or value in DOT_SEGMENTS:
        raise ValueError(UPSTREAM_ID_RULE)
    return value


UpstreamId = Annotated[
    str,
    BeforeValidator(_id_to_text),
    AfterValidator(_upstream_id),
    Field(
        description="1 to 128 letters, digits, '.', '_' or '-', not '.' or '..'; "
        "a JSON number is accepted too"
    ),
]
NoControlText = r"^[^\x00-\x1f\x7f]*$"
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NoControlText)]
LabelValue = Annotated[str, StringConstraints(max_length=256, pattern=NoControlText)]
OutboundUrl = Annotated[
    str,
    # No whitespace or control characters: a URL is sent as-is and stored as text (PostgreSQL
    # refuses NUL), and spaces or newlines in it only ever mean a mistake or an injection attempt.
    StringConstraints(min_length=1, max_length=2048, pattern=r"^[^\x00-\x20\x7f]+$"),
    Field(description="http(s) URL of a globally routable host"),
]


def checked_message_template(source: str) -> str:
    """``source`` if it compiles as a Slack message template (at most 4 KiB); else ValueError."""
    try:
        mrkdwn_templates.check_syntax(source)
    except TemplateFailed as exc:
        raise ValueError(str(exc)) from None
    return source


MessageTemplate = Annotated[
    str,
    AfterValidator(checked_message_template),
    Field(
        description="a Jinja2 template of the message text (mrkdwn, at most 4 KiB; every value is "
        "escaped for mrkdwn); variables: event, watch, asset, analysis, labels, dashboard_url, "
        "message"
    ),
]
MessageLanguage = Annotated[
    Language,
    Field(description="the language of the default messages; BRIDGE_LANGUAGE when absent"),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def checked_url(url: str, info: ValidationInfo) -> str:
    settings = (
        info.context if isinstance(info.context, ValidationSettings) else ValidationSettings()
    )
    try:
        check_url(url, resolver=settings.resolver, allow_private=settings.allow_private)
    except BlockedAddress as exc:
        raise ValueError(str(exc)) from None
    return url


def standard_webhooks_secret(value: str | None) -> str | None:
    """``value`` if it is a Standard Webhooks secret (or None); else ValueError saying why."""
    if value is None:
        return None
    if not value.startswith(SECRET_PREFIX):
        raise ValueError("must start with whsec_")
    try:
        raw = base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be whsec_ followed by standard base64") from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise ValueError(f"must encode {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return value


class WebhookTargetIn(_Strict):
    """A signed HTTP webhook (Standard Webhooks). Without ``secret`` one is generated and shown once."""

    type: Literal[TargetType.WEBHOOK]
    url: OutboundUrl
    secret: str | None = Field(
        default=None, description="whsec_ followed by the base64 of 24 to 64 random bytes"
    )

    _url = field_validator("url")(checked_url)

    _secret = field_validator("secret")(standard_webhooks_secret)


class SlackTargetIn(_Strict):
    """A Slack channel, posted to with the bridge's bot token (``SLACK_BOT_TOKEN``)."""

    type: Literal[TargetType.SLACK]
    channel: Annotated[
        str,
        StringConstraints(pattern=r"^#?[A-Za-z0-9._-]{1,80}$"),
        Field(description="channel id (C0123456789) or name"),
    ]
    template: MessageTemplate | None = None
    language: MessageLanguage | None = None

    @field_validator("type")
    @classmethod
    def _slack_is_configured(cls, value: TargetType, info: ValidationInfo) -> TargetType:
        # Accepting it would hold its deliveries forever behind a token nobody set.
        settings = info.context
        if isinstance(settings, ValidationSettings) and not settings.slack_configured:
            raise ValueError(SLACK_NOT_CONFIGURED)
        return value


class SlackWebhookTargetIn(_Strict):
    """A Slack incoming webhook (or a Slack-compatible one): one message per event."""

    type: Literal[TargetType.SLACK_WEBHOOK]
    url: OutboundUrl
    template: MessageTemplate | None = None
    language: MessageLanguage | None = None

    _url = field_validator("url")(checked_url)


HttpMethod = Literal["POST", "PUT"]
HeaderTemplates = Annotated[
    dict[
        Annotated[str, AfterValidator(checked_header_name)],
        Annotated[
            str,
            StringConstraints(max_length=MAX_HEADER_VALUE),
            AfterValidator(checked_header_value),
        ],
    ],
    Field(
        max_length=MAX_HEADERS,
        description="header name to value template (at most 20); host, content-length, "
        "transfer-encoding, connection and webhook-* are refused",
    ),
]
BodyTemplate = Annotated[
    str,
    AfterValidator(checked_body),
    Field(
        description="a Jinja2 template (sandboxed, JSON-string autoescape) that must render valid "
        "JSON; variables: event, watch, asset, analysis, labels, dashboard_url"
    ),
]


class HttpTargetIn(_Strict):
    """Any chat tool or API: a JSON body rendered from a template per event, sent with the
    Standard Webhooks headers (signed when ``secret`` is given; none is generated)."""

    type: Literal[TargetType.HTTP]
    url: OutboundUrl
    method: HttpMethod = "POST"
    headers: HeaderTemplates = Field(default_factory=dict)
    body: BodyTemplate
    secret: str | None = Field(
        default=None, description="whsec_ followed by the base64 of 24 to 64 random bytes"
    )
    language: MessageLanguage | None = None

    _url = field_validator("url")(checked_url)
    _secret = field_validator("secret")(standard_webhooks_secret)


#: An endpoint's name: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit.
ENDPOINT_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"


ENDPOINT_REF_TAG = "endpoint reference"


class EndpointRefIn(_Strict):
    """A target that is a shared endpoint (``/api/v1/endpoints``), by name or id."""

    endpoint: Annotated[
        str,
        StringConstraints(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9._-]+$"),
        Field(description="the name or id (ept_...) of an endpoint"),
    ]


def _target_kind(value: Any) -> str | None:
    """The union tag of a target: ``endpoint`` for a reference, else its ``type``."""
    # The tag is not a key of the input, so error pointers skip it (``_pointer``).
    if isinstance(value, dict):
        return ENDPOINT_REF_TAG if "endpoint" in value else value.get("type")
    return ENDPOINT_REF_TAG if isinstance(value, EndpointRefIn) else getattr(value, "type", None)


InlineTargetIn = Annotated[
    WebhookTargetIn | SlackTargetIn | SlackWebhookTargetIn | HttpTargetIn,
    Field(discriminator="type"),
]


def _an_object(value: Any) -> Any:
    """A target must be a JSON object before its kind can be told (a pointer to the target itself)."""
    if not isinstance(value, dict | BaseModel):
        raise PydanticCustomError("target_not_object", "must be an object")
    return value


TargetIn = Annotated[
    Annotated[WebhookTargetIn, Tag(TargetType.WEBHOOK)]
    | Annotated[SlackTargetIn, Tag(TargetType.SLACK)]
    | Annotated[SlackWebhookTargetIn, Tag(TargetType.SLACK_WEBHOOK)]
    | Annotated[HttpTargetIn, Tag(TargetType.HTTP)]
    | Annotated[EndpointRefIn, Tag(ENDPOINT_REF_TAG)],
    Discriminator(_target_kind),
    BeforeValidator(_an_object),
]


#: A bucket name of NCP Object Storage (S3's rules: 3 to 63 lower-case letters, digits, '.', '-').
BUCKET_NAME_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
MAX_OBJECT_KEY = 1024
#: The options of an analysis or summary request: passed through to NCP as given, within bounds.
MAX_WORK_OPTIONS = 20
MAX_WORK_OPTIONS_BYTES = 4096
MAX_STALLED_AFTER_SECONDS = 30 * 86400


def _object_key(value: str) -> str:
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in value):
        raise ValueError("must not contain control characters (a newline, a tab...)")
    return value


class ImportIn(_Strict):
    """An Object Storage object to import as the watch's asset (``POST .../assets/import/object-storage``)."""

    bucket_name: Annotated[
        str,
        StringConstraints(pattern=BUCKET_NAME_PATTERN),
        Field(
            description="the Object Storage bucket (3 to 63 lower-case letters, digits, '.', '-')"
        ),
    ]
    key: Annotated[
        str,
        StringConstraints(min_length=1, max_length=MAX_OBJECT_KEY),
        AfterValidator(_object_key),
        Field(description="the object's key in the bucket (1 to 1,024 characters)"),
    ]


def _work_options(value: dict[str, Any]) -> dict[str, Any]:
    """Options are NCP's to judge; the bridge only bounds their size."""
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_WORK_OPTIONS_BYTES:
        raise ValueError("must be at most 4 KiB of JSON")
    return value


WorkOptions = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], JsonValue],
    Field(max_length=MAX_WORK_OPTIONS),
    AfterValidator(_work_options),
]


class WatchCreate(_Strict):
    """Body of ``POST /api/v1/watches``: exactly one of ``asset_id`` and ``import``."""

    workspace: UpstreamId
    project_id: UpstreamId
    asset_id: UpstreamId | None = Field(
        default=None,
        description="the asset to watch (absent when import gives it): " + UPSTREAM_ID_RULE,
    )
    import_: ImportIn | None = Field(
        default=None,
        alias="import",
        description="import this Object Storage object as the asset first (instead of asset_id)",
    )
    analyze: WorkOptions | None = Field(
        default=None,
        description="request an analysis first (POST .../index) with these options, e.g. "
        "sceneRange, minSceneDurationSec, analysisPersonCount, sourceLanguage ({} for none)",
    )
    summarize: WorkOptions | None = Field(
        default=None,
        description="request a scene summary once the analysis completes, with these options",
    )
    stalled_after_seconds: float | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_STALLED_AFTER_SECONDS,
        allow_inf_nan=False,
        description="analysis.stalled after the status stayed the same this long; "
        "BRIDGE_STALLED_AFTER when absent",
    )
    api: ApiGeneration | None = Field(
        default=None, description="status endpoint generation; MI_DEFAULT_API when absent"
    )
    targets: list[TargetIn] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TARGETS,
        description="1 to 10 targets; BRIDGE_DEFAULT_TARGETS when absent",
    )
    events: list[SubscribableEvent] = Field(default=list(DEFAULT_EVENTS), min_length=1)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=MAX_LABELS)
    timeout_seconds: float | None = Field(
        default=None,
        strict=True,  # a JSON number, not a string that looks like one
        ge=MIN_TIMEOUT_SECONDS,
        le=MAX_TIMEOUT_SECONDS,
        allow_inf_nan=False,
        description="deadline after registration; BRIDGE_WATCH_TIMEOUT when absent",
    )

    @field_validator("events")
    @classmethod
    def _unique_events(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class DefaultTargets(_Strict):
    """``BRIDGE_DEFAULT_TARGETS``: like a registration's targets, but webhooks need a secret."""

    targets: list[TargetIn] = Field(min_length=1, max_length=MAX_TARGETS)

    @field_validator("targets")
    @classmethod
    def _webhooks_carry_secrets(cls, value: list[Any]) -> list[Any]:
        for target in value:
            if isinstance(target, WebhookTargetIn) and target.secret is None:
                raise ValueError("default webhook targets must carry their own secret")
        return value


class InvalidWatch(ValueError):
    """A registration that cannot be accepted; ``errors`` are ``{"pointer", "detail"}`` items."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


def validate_watch(
    payload: Any, context: ValidationSettings, has_default_targets: bool
) -> WatchCreate:
    """The one validation of a registration, for the API, the CLI and the dashboard alike.

    Raises ``InvalidWatch`` listing every problem with its JSON pointer into ``payload`` (a
    missing target list among them, when there are no default targets to fall back on).
    """
    if not isinstance(payload, dict):
        raise InvalidWatch([{"pointer": "#", "detail": "must be a JSON object"}])
    errors: list[dict[str, str]] = []
    model = None
    try:
        model = WatchCreate.model_validate(payload, context=context)
    except ValidationError as exc:
        errors = validation_errors(exc, payload)
    errors = _with_asset_choice(errors, payload)
    if payload.get("targets") is None and not has_default_targets:
        errors.append({"pointer": "#/targets", "detail": "required"})
    if errors or model is None:
        raise InvalidWatch(errors)
    errors = _workflow_errors(model) + _http_event_errors(model)
    if errors:
        raise InvalidWatch(errors)
    return model


def _with_asset_choice(
    errors: list[dict[str, str]], payload: dict[str, Any]
) -> list[dict[str, str]]:
    """``errors`` and, in input order (after the workspace's and project's), the refusal of a
    registration that names neither or both of ``asset_id`` and ``import``."""
    has_asset, has_import = payload.get("asset_id") is not None, payload.get("import") is not None
    if has_asset != has_import:
        return errors
    detail = "give exactly one of asset_id and import" if has_asset else "required"
    before = [e for e in errors if e["pointer"].startswith(("#/workspace", "#/project_id"))]
    after = [e for e in errors if e not in before]
    return [*before, {"pointer": "#/asset_id", "detail": detail}, *after]


def _workflow_errors(model: WatchCreate) -> list[dict[str, str]]:
    """What the fields of a workflow cannot ask together."""
    if model.import_ is not None and model.summarize is not None and model.analyze is None:
        return [{"pointer": "#/summarize", "detail": "an imported asset needs analyze first"}]
    return []


def _http_event_errors(model: WatchCreate) -> list[dict[str, str]]:
    """Problems of inline ``http`` targets' templates with the other events the watch subscribes
    (each was checked with ``analysis.completed`` by its own validators)."""
    errors: list[dict[str, str]] = []
    for position, target in enumerate(model.targets or ()):
        if isinstance(target, HttpTargetIn):
            events = [str(event) for event in model.events]
            errors += event_errors(target.body, target.headers, events, f"#/targets/{position}")
    return errors


def validation_errors(exc: ValidationError, data: Any) -> list[dict[str, str]]:
    """Every pydantic error as ``{"pointer": "#/targets/0/url", "detail": ...}``, in input order;
    each detail is a sentence for people (``app.watches.refusals``), never a pattern."""
    return [
        {"pointer": _pointer(error, data), "detail": describe(error)}
        for error in exc.errors(include_url=False, include_input=False)
    ]


def _pointer(error: Any, data: Any) -> str:
    """The JSON pointer into the *input* document: union tags and ``[key]`` markers are dropped."""
    parts: list[str] = []
    current = data
    loc = list(error["loc"])
    for position, element in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(current, list) and isinstance(element, int):
            parts.append(str(element))
            current = current[element] if element < len(current) else None
        elif isinstance(current, dict) and (element in current or last):
            parts.append(str(element))
            current = current.get(element)
        # anything else is a discriminator tag or pydantic's "[key]" marker: not in the input
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        parts.append("type")
    return "#" + "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)
