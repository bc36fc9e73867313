"""The answer of ``POST /api/v1/preview``: what a target would be sent for a sample event."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import SkipJsonSchema

from app.outbox.envelopes import ContractModel, sometimes


class Preview(ContractModel):
    """``body`` and ``headers`` for ``http`` and ``webhook`` targets (``webhook-signature`` left
    out); ``text`` and ``blocks`` for ``slack`` and ``slack_webhook`` ones."""

    text: str | SkipJsonSchema[None] = sometimes("the Slack message's fallback text")
    blocks: list[dict[str, Any]] | SkipJsonSchema[None] = sometimes("the Slack Block Kit blocks")
    body: str | SkipJsonSchema[None] = sometimes("the body exactly as it would be sent")
    headers: dict[str, str] | SkipJsonSchema[None] = sometimes(
        "the request's headers, rendered (without webhook-signature)"
    )
