"""The OpenAPI 3.1 document of the bridge, generated from the code and built once per process.

Request bodies come from the pydantic request model (``app.watches.validation``), response bodies
from the models that also build every answer (``app.resources``), the paths from
``openapi_paths``. The webhook receivers get is a top-level ``webhooks`` entry. Every schema lives
in ``components/schemas`` under its model's class name.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import metadata

from pydantic import BaseModel, TypeAdapter

from app.api.idempotency import MAX_KEY_LENGTH
from app.api.openapi_paths import JSON, PROBLEMS, Spec, json_response, paths, ref
from app.endpoints.validation import EndpointChange, EndpointCreate, Replay, RotateSecret
from app.resources import models as shapes
from app.watches.preview_request import PreviewRequest
from app.watches.validation import UPSTREAM_ID_MAX_LENGTH, UPSTREAM_ID_PATTERN, WatchCreate
from app.web.problems import PROBLEM_TYPE

REF_TEMPLATE = "#/components/schemas/{model}"
DESCRIPTION = (
    "Register an asset to watch: the bridge polls its Media Intelligence analysis status and "
    "notifies Slack and webhooks. Everything under `/api/` needs `Authorization: Bearer <token>` "
    "and answers errors as RFC 9457 `application/problem+json`. Lists answer "
    "`{items, next_cursor}`; times are RFC 3339 UTC."
)


def build_document() -> Spec:
    """The document served at ``/openapi.json`` (a fresh copy of the one built for this process)."""
    return json.loads(document_json())


@cache
def document_json() -> str:
    """The document as JSON text: built on first use, then the same text for the whole process."""
    return json.dumps(_document())


def _document() -> Spec:
    bearer = {"type": "http", "scheme": "bearer", "description": "A token of BRIDGE_API_TOKENS."}
    return {
        "openapi": "3.1.0",
        "info": {"title": "mi-bridge", "version": _version(), "description": DESCRIPTION},
        "tags": [
            {"name": "watches", "description": "Register, list, read and stop watches."},
            {
                "name": "endpoints",
                "description": "Named notification targets shared by watches, with their health.",
            },
            {"name": "events", "description": "The event feed, deliveries, and what webhooks get."},
            {"name": "operations", "description": "Health, readiness, metrics and this document."},
        ],
        "security": [{"bearer": []}],
        "paths": paths(),
        "webhooks": {"event": {"post": _webhook()}},
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {"bearer": bearer},
            "parameters": _parameters(),
            "headers": _headers(),
            "responses": _problem_responses(),
        },
    }


def _version() -> str:
    try:
        return metadata.version("mi-bridge")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def _schemas() -> Spec:
    """Every model's JSON schema under its class name, nested ``$defs`` hoisted beside it.

    Raises ``ValueError`` if two different schemas would share a name.
    """
    collected: Spec = {}
    models: tuple[type[BaseModel], ...] = (
        WatchCreate,
        EndpointChange,
        RotateSecret,
        Replay,
        PreviewRequest,
        *shapes.RESPONSE_MODELS,
    )
    named = [
        (model.__name__, model.model_json_schema(ref_template=REF_TEMPLATE)) for model in models
    ]
    # A union has no class of its own to name it: the name its view and the contract use.
    create = TypeAdapter(EndpointCreate).json_schema(ref_template=REF_TEMPLATE)
    named.insert(1, ("EndpointCreate", create))
    for model_name, schema in named:
        for name, definition in {**schema.pop("$defs", {}), model_name: schema}.items():
            if collected.setdefault(name, definition) != definition:
                raise ValueError(f"two different schemas are named {name}")
    _add_what_pydantic_omits(collected["WatchCreate"]["properties"])
    return collected


def _add_what_pydantic_omits(properties: Spec) -> None:
    """Put in ``WatchCreate``'s schema the rules it enforces that pydantic leaves out.

    Upstream ids accept JSON integers and are checked by a validator once they are text; pydantic
    shows neither (the document states the validator's rule as a pattern). Label keys are checked
    by a pattern that pydantic files under ``patternProperties``, which would leave keys not
    matching it unchecked.
    """
    text = {"type": "string", "maxLength": UPSTREAM_ID_MAX_LENGTH, "pattern": UPSTREAM_ID_PATTERN}
    for name in ("workspace", "project_id", "asset_id"):
        properties[name] = {
            "description": properties[name].get("description", ""),
            "anyOf": [text, {"type": "integer"}],
        }
    labels = properties["labels"]
    if len(labels.get("patternProperties", {})) == 1:
        ((key_pattern, value_schema),) = labels.pop("patternProperties").items()
        labels.setdefault("propertyNames", {})["pattern"] = key_pattern
        labels["additionalProperties"] = value_schema


def _parameters() -> Spec:
    def path(name: str, description: str) -> Spec:
        schema = {"type": "string"}
        return {
            "name": name,
            "in": "path",
            "required": True,
            "schema": schema,
            "description": description,
        }

    key = {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": "^[ -~]+$"}
    return {
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "schema": key,
            "description": "Kept 24 h per token: a retry gets the first answer again.",
        },
        "WatchId": path("watch_id", "A watch id (`wch_...`); any other text is 404."),
        "EndpointRef": path(
            "ref", "An endpoint's id (`ept_...`) or name; any text that is neither is 404."
        ),
        "DeliveryId": path("delivery_id", "A delivery id (`dlv_...`); any other text is 404."),
    }


def _headers() -> Spec:
    def header(description: str, schema: Spec, required: bool = True) -> Spec:
        return {"description": description, "required": required, "schema": schema}

    return {
        "Location": header(
            "The new watch's or endpoint's URL.", {"type": "string", "format": "uri-reference"}
        ),
        "Idempotent-Replayed": header(
            "`true` when this is the stored answer to an earlier request with the same key.",
            {"type": "string", "enum": ["true"]},
            required=False,
        ),
        "WWW-Authenticate": header(
            "The bearer challenge.", {"type": "string", "pattern": "^Bearer"}
        ),
        "Allow": header("The methods this path takes.", {"type": "string"}),
        "Retry-After": header(
            "Seconds to wait before trying again.", {"type": "string", "pattern": "^[0-9]+$"}
        ),
    }


def _problem_responses() -> Spec:
    responses = {}
    for name, description, model, headers in PROBLEMS.values():
        response = json_response(model, description, PROBLEM_TYPE)
        if headers:
            response["headers"] = {header: ref("headers", header) for header in headers}
        responses[name] = response
    return responses


def _webhook() -> Spec:
    """What a webhook target receives: a signed POST (Standard Webhooks 1.0)."""

    def header(name: str, pattern: str, description: str) -> Spec:
        schema = {"type": "string", "pattern": pattern}
        return {
            "name": name,
            "in": "header",
            "required": True,
            "schema": schema,
            "description": description,
        }

    return {
        "tags": ["events"],
        "operationId": "receive_event",
        "summary": "An event, POSTed to each webhook target of its watch.",
        "description": (
            "Every attempt of a delivery sends the same bytes, signed as sent: `webhook-signature` "
            "is `v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, "
            "keyed with the bytes the target's `whsec_` secret encodes. Redirects are not "
            "followed; the timeout is 15 s. Deliveries to one target go out in event order."
        ),
        "security": [],
        "parameters": [
            header("webhook-id", "^evt_[0-9A-Z]{26}$", "The event id, the same on every retry."),
            header("webhook-timestamp", "^[0-9]+$", "Unix seconds of this attempt."),
            header("webhook-signature", "^v1,[A-Za-z0-9+/]{43}=$", "The signature."),
        ],
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": ref("schemas", "EventEnvelope")}},
        },
        "responses": {
            "2XX": {"description": "Delivered."},
            "410": {"description": "Gone: the target is disabled."},
            "429": {"description": "Retried after `Retry-After` (at most 1 h), not counted."},
            "503": {"description": "Retried, honouring `Retry-After`."},
            "default": {"description": "Any other answer (3xx included) fails this attempt."},
        },
    }
