"""The control API's workflow resources (``/_sim``, JSON, no authentication).

- ``PUT/DELETE /_sim/objects/{bucket}/{key...}``, ``GET /_sim/objects``: Object Storage objects
  that imports find (``workflow_specs.parse_object_spec``); an undeclared one imports to
  FILE_NOT_EXIST.
- ``GET /_sim/imports``: every import request made, oldest first, and ``now``.
- ``GET /_sim/assets/{ws}/{pid}/{id}/workflow``: an asset's import, analysis plan, index refusal,
  index and summary requests (with the last bodies as sent) and summary status.
- ``PUT/DELETE /_sim/credentials/{access_key}``, ``GET /_sim/credentials``: accepted key pairs and
  the workspaces each may use (secrets are never shown), with their request counts.
- ``GET /_sim/clock``, ``POST /_sim/clock/advance`` ``{"seconds": n}``: read or move the schedule
  clock forward (for good), so tests run schedules without waiting.

Errors as in ``control_api``: ``{"error": "..."}`` with 400 or 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.simulator.control_api import ASSET_PATH, control_error, read_body
from app.simulator.server import CONTROL_PREFIX, current_state
from app.simulator.specs import (
    MAX_SCHEDULE_SECONDS,
    SpecError,
    read_number,
    reject_unknown,
    require_object,
)
from app.simulator.workflow_specs import parse_key_pair, parse_object_spec

workflow_control = Blueprint("sim_workflow_control", __name__, url_prefix=CONTROL_PREFIX)

OBJECT_PATH = "/objects/<bucket>/<path:key>"


@workflow_control.errorhandler(SpecError)
def _bad_spec(exc: SpecError) -> Response:
    return control_error(str(exc), 400)


@workflow_control.put(OBJECT_PATH)
def put_object(bucket: str, key: str) -> tuple[Response, int]:
    """Declare (201) or redeclare (200) an object: how its imports go and what they create."""
    state = current_state()
    spec = parse_object_spec(read_body(), state.config.default_schedule)
    view, created = state.put_object(bucket, key, spec)
    return jsonify(view), 201 if created else 200


@workflow_control.get("/objects")
def list_objects() -> Response:
    """Every declared object, in declaration order."""
    return jsonify({"objects": current_state().object_views()})


@workflow_control.delete(OBJECT_PATH)
def delete_object(bucket: str, key: str) -> Response:
    """Forget an object (204): later imports of it end FILE_NOT_EXIST; 404 if unknown."""
    if not current_state().delete_object(bucket, key):
        return control_error(f"no object {bucket}/{key}", 404)
    return Response(status=204)


@workflow_control.get("/imports")
def list_imports() -> Response:
    """Every import request (workspace, project_id, bucket, key, asset_id, at, access_key, body)."""
    state = current_state()
    return jsonify({"now": state.now(), "imports": state.import_log()})


@workflow_control.get(ASSET_PATH + "/workflow")
def asset_workflow(ws: str, pid: str, asset_id: str) -> Response:
    """One asset's workflow side, or 404."""
    view = current_state().work_view((ws, pid, asset_id))
    if view is None:
        return control_error(f"no asset {ws}/{pid}/{asset_id}", 404)
    return jsonify(view)


@workflow_control.get("/credentials")
def list_credentials() -> Response:
    """Every accepted key pair: access key, workspaces (``["*"]`` for all), request count."""
    return jsonify({"credentials": current_state().credential_views()})


@workflow_control.put("/credentials/<access_key>")
def put_credentials(access_key: str) -> tuple[Response, int]:
    """Accept (201) or change (200) a key pair: ``{"secret_key", "workspaces": [...] | ["*"]}``."""
    state = current_state()
    created = state.put_key_pair(access_key, parse_key_pair(read_body()))
    return jsonify(state.credential_view(access_key)), 201 if created else 200


@workflow_control.delete("/credentials/<access_key>")
def delete_credentials(access_key: str) -> Response:
    """Stop accepting an access key (204), or 404."""
    if not current_state().remove_credentials(access_key):
        return control_error(f"no access key {access_key}", 404)
    return Response(status=204)


@workflow_control.get("/clock")
def get_clock() -> Response:
    """The schedule clock: ``now`` and how far the control API has ``advanced`` it in total."""
    state = current_state()
    return jsonify({"now": state.now(), "advanced_seconds": state.advanced_seconds()})


@workflow_control.post("/clock/advance")
def advance_clock() -> Response:
    """Move the schedule clock ``seconds`` forward (0 to 7 days); answers like ``GET /clock``."""
    body = require_object(read_body())
    reject_unknown(body, ("seconds",))
    if "seconds" not in body:
        raise SpecError("seconds is required")
    seconds = read_number(body, "seconds", 0.0, low=0, high=MAX_SCHEDULE_SECONDS)
    state = current_state()
    now = state.advance_clock(seconds)
    return jsonify({"now": now, "advanced_seconds": state.advanced_seconds()})
