"""Reading the workflow parts of the control API's bodies: objects to import, key pairs.

Like ``specs``: every parser raises ``SpecError`` naming the offending field; unknown fields are
refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from app.simulator.assets import Schedule
from app.simulator.credentials import ALL_WORKSPACES, KeyPair, key_pair
from app.simulator.imports import DEFAULT_META_DATA, IMPORT_OUTCOMES, ImportPlan
from app.simulator.specs import (
    MAX_SCHEDULE_SECONDS,
    AssetSpec,
    SpecError,
    parse_asset_spec,
    read_choice,
    read_number,
    read_optional_str,
    reject_unknown,
    require_object,
)

OBJECT_FIELDS = ("import_seconds", "outcome", "upload_result", "meta_data", "analysis")
MAX_WORKSPACES = 1000


@dataclass(frozen=True)
class ObjectSpec:
    """A declared Object Storage object: how its import goes, and the imported asset's spec (whose
    analysis always waits for an index request)."""

    plan: ImportPlan
    analysis: AssetSpec
    analysis_body: dict[str, Any]

    def view(self, bucket: str, key: str) -> dict[str, Any]:
        """The control API's description."""
        return {"bucket": bucket, "key": key, **self.plan.to_dict(), "analysis": self.analysis_body}


def parse_object_spec(body: Any, default_schedule: Schedule) -> ObjectSpec:
    """A ``PUT /_sim/objects/{bucket}/{key}`` body; every field optional."""
    body = require_object(body)
    reject_unknown(body, OBJECT_FIELDS)
    meta_data = body.get("meta_data", DEFAULT_META_DATA)
    if meta_data is not None and not isinstance(meta_data, dict):
        raise SpecError("meta_data must be a JSON object or null")
    analysis_body = body.get("analysis", {})
    try:
        analysis = parse_asset_spec(analysis_body, default_schedule)
    except SpecError as exc:
        raise SpecError(f"analysis: {exc}") from None
    plan = ImportPlan(
        seconds=read_number(body, "import_seconds", 2.0, low=0, high=MAX_SCHEDULE_SECONDS),
        outcome=read_choice(body, "outcome", IMPORT_OUTCOMES[0], IMPORT_OUTCOMES),
        upload_result=read_optional_str(body, "upload_result", None),
        meta_data=meta_data,
    )
    return ObjectSpec(plan, replace(analysis, await_index=True), analysis_body)


def parse_key_pair(body: Any) -> KeyPair:
    """A ``PUT /_sim/credentials/{access_key}`` body: ``{"secret_key", "workspaces": [..] | ["*"]}``.

    ``workspaces`` is optional (every workspace).
    """
    body = require_object(body)
    reject_unknown(body, ("secret_key", "workspaces"))
    secret_key = body.get("secret_key")
    if not isinstance(secret_key, str) or not secret_key:
        raise SpecError("secret_key must be a non-empty string")
    workspaces = body.get("workspaces", [ALL_WORKSPACES])
    if (
        not isinstance(workspaces, list)
        or not 0 < len(workspaces) <= MAX_WORKSPACES
        or not all(isinstance(name, str) and name for name in workspaces)
    ):
        raise SpecError('workspaces must be a non-empty list of workspace names, or ["*"]')
    return key_pair(secret_key, workspaces)
