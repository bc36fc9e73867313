"""The control API (``/_sim``, JSON, no authentication): shape what the simulated upstream answers.

Errors are ``{"error": "<message naming the field>"}`` with 400 (bad body) or 404 (unknown thing).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.simulator.faults import parse_fault_spec
from app.simulator.server import CONTROL_PREFIX, current_state
from app.simulator.specs import (
    SpecError,
    parse_asset_spec,
    parse_config_changes,
    parse_generation_switch,
)
from app.vocabulary import ApiGeneration

control = Blueprint("sim_control", __name__, url_prefix=CONTROL_PREFIX)

ASSET_PATH = "/assets/<ws>/<pid>/<asset_id>"


def control_error(message: str, status: int) -> Response:
    """Every control-API error response."""
    response = jsonify({"error": message})
    response.status_code = status
    return response


@control.errorhandler(SpecError)
def _bad_spec(exc: SpecError) -> Response:
    return control_error(str(exc), 400)


def read_body() -> Any:
    """The request's JSON body; SpecError (400) if it is not JSON."""
    # Content-Type is not required: curl -d sends form encoding by default.
    body = request.get_json(force=True, silent=True)
    if body is None:
        raise SpecError("body must be a JSON object")
    return body


@control.get("/health")
def health() -> Response:
    """Liveness: ``{"ok": true}``."""
    return jsonify({"ok": True})


@control.get("/assets")
def list_assets() -> Response:
    """Every asset's view, in creation order."""
    return jsonify({"assets": current_state().asset_views()})


@control.put(ASSET_PATH)
def put_asset(ws: str, pid: str, asset_id: str) -> tuple[Response, int]:
    """Create (201) or replace (200) an asset: a pinned status or a schedule starting now."""
    state = current_state()
    spec = parse_asset_spec(read_body(), state.config.default_schedule)
    view, created = state.put_asset((ws, pid, asset_id), spec)
    return jsonify(view), 201 if created else 200


@control.get(ASSET_PATH)
def get_asset(ws: str, pid: str, asset_id: str) -> Response:
    """One asset's view, or 404."""
    view = current_state().asset_view((ws, pid, asset_id))
    if view is None:
        return control_error(f"no asset {ws}/{pid}/{asset_id}", 404)
    return jsonify(view)


@control.delete(ASSET_PATH)
def delete_asset(ws: str, pid: str, asset_id: str) -> Response:
    """Forget an asset (204); later polls get 404 unless auto-create makes it anew."""
    if not current_state().delete_asset((ws, pid, asset_id)):
        return control_error(f"no asset {ws}/{pid}/{asset_id}", 404)
    return Response(status=204)


@control.get("/faults")
def list_faults() -> Response:
    """Every fault rule in matching order, with ``remaining`` and ``matched`` counts."""
    return jsonify({"faults": current_state().fault_views()})


@control.post("/faults")
def add_fault() -> tuple[Response, int]:
    """Add a fault rule after the existing ones (201)."""
    view = current_state().add_fault(parse_fault_spec(read_body()))
    return jsonify(view), 201


@control.delete("/faults")
def clear_faults() -> Response:
    """Drop every fault rule (204)."""
    current_state().clear_faults()
    return Response(status=204)


@control.delete("/faults/<rule_id>")
def delete_fault(rule_id: str) -> Response:
    """Drop one fault rule (204), or 404."""
    if not current_state().remove_fault(rule_id):
        return control_error(f"no fault {rule_id}", 404)
    return Response(status=204)


@control.get("/generations")
def list_generations() -> Response:
    """Every status generation's switch."""
    return jsonify(current_state().generation_views())


@control.put("/generations/<name>")
def put_generation(name: str) -> Response:
    """Turn a generation on or off (``{"enabled": false, "status_code": 404|410}``)."""
    names = [generation.value for generation in ApiGeneration]
    if name not in names:
        return control_error(f"no generation {name!r}; one of: {', '.join(names)}", 404)
    switch = parse_generation_switch(read_body())
    current_state().set_generation_switch(ApiGeneration(name), switch)
    return jsonify({name: switch.to_dict()})


@control.get("/config")
def get_config() -> Response:
    """``auto_create``, ``default_schedule``, ``clock_offset_seconds``."""
    return jsonify(current_state().config.to_dict())


@control.put("/config")
def put_config() -> Response:
    """Change any of the config's fields (``default_schedule`` fields merge)."""
    body = read_body()
    config = current_state().update_config(lambda current: parse_config_changes(body, current))
    return jsonify(config.to_dict())


@control.get("/stats")
def stats() -> Response:
    """Connections, upstream requests, per generation, auth failures, max in-flight, held."""
    return jsonify(current_state().stats())


@control.get("/requests")
def request_log() -> Response:
    """Arrival times of the status requests per asset (``?asset_id=`` for one), and ``now``."""
    state = current_state()
    log = state.request_log(request.args.get("asset_id"))
    return jsonify({"now": state.now(), "requests": log})


@control.post("/release")
def release() -> Response:
    """Free every request a ``hold`` fault is holding."""
    return jsonify({"released": current_state().gate.release_all()})


@control.post("/reset")
def reset() -> Response:
    """Back to the state the server started with (keeps credentials); frees held requests."""
    current_state().reset()
    return jsonify({"ok": True})
