"""``POST /api/v1/preview``: a target's message for a sample event, rendered and never sent."""

from __future__ import annotations

import json

from flask import Response

from app.api.blueprint import api, fail, json_body
from app.db import db
from app.endpoints import actions
from app.endpoints.validation import validated
from app.resources.preview import Preview
from app.services import services
from app.watches.preview_request import (
    PreviewRequest,
    endpoint_snapshot,
    preview_message,
    spec_snapshot,
)
from app.watches.validation import EndpointRefIn, InvalidWatch

INVALID = "the preview request is invalid"


@api.post("/preview")
def preview() -> Response:
    """Render a target's message for a sample event without sending anything.

    The target is one as in a registration, or `{"endpoint": name}`; `event_type` defaults to
    `analysis.completed`. Answers `{"body", "headers"}` for `http` and `webhook` targets (the body
    exactly as it would be sent; `webhook-signature` is left out; an inline `http` target's header
    values are shown rendered, since the caller just gave them, an endpoint's own as `****`) and
    `{"text", "blocks"}` for `slack` and `slack_webhook` targets, in the target's `language` (else
    `BRIDGE_LANGUAGE`) and with its `template`. Nothing is sent and nothing is stored.
    """
    try:
        wanted = validated(PreviewRequest, json_body()[0], services().validation)
    except InvalidWatch as exc:
        fail(422, INVALID, exc.errors)
    spec = wanted.target
    if isinstance(spec, EndpointRefIn):
        endpoint = actions.find_endpoint(db.session(), spec.endpoint)
        if endpoint is None:
            detail = f"names no endpoint: {spec.endpoint!r}"
            fail(422, INVALID, [{"pointer": "#/target/endpoint", "detail": detail}])
        target = endpoint_snapshot(endpoint)
    else:
        target = spec_snapshot(spec)
    withheld = [name for name, _value in target.headers or ()]
    settings = services().settings
    try:
        rendered = preview_message(
            target, wanted.event_type, services().clock(), settings.bridge_public_url,
            settings.bridge_language,
            # A stored endpoint's header values are credentials as much as its secret (the API
            # shows them as ****): its preview names the headers it sets and withholds their values.
            withheld=withheld if isinstance(spec, EndpointRefIn) else (),
        )  # fmt: skip
    except InvalidWatch as exc:
        fail(422, INVALID, exc.errors)
    body = Preview(**rendered).as_json()
    return Response(json.dumps(body), mimetype="application/json")
