"""The simulated upstream's workflow endpoints: import from Object Storage and scene summaries.

Paths and shapes follow ``media-intelligence-api.md``; signatures are checked by ``upstream_api``
(which registers the app-wide authentication). Choices where the docs are silent:

- ``POST .../assets/import/object-storage`` needs ``key`` and ``bucketName`` (non-empty strings,
  else 400 code 10001); other fields are passed through and logged. It answers a new integer
  ``result.assetId`` even for an object nobody declared; that import reads FILE_NOT_EXIST.
- ``GET .../assets/{id}/import-status`` answers ``result.uploadStatus``, ``uploadResult``,
  ``metaData`` (the last two null while IN_PROGRESS); an asset that was never imported reads
  COMPLETED.
- ``GET .../scene-summary/status`` answers ``result.status`` and ``result.summarizeStatusMessage``.
  ``POST .../scene-summary`` answers ``result.status`` (WAIT_SUMMARIZE, or the schedule's status
  when it starts later than that), 400 code 10001 unless the analysis is ANALYZE_COMPLETED, 409
  while a summary waits or runs. ``POST .../scene-summary/cancel``: 409 unless one waits or runs.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from app.simulator.envelopes import INVALID_REQUEST, success
from app.simulator.responses import gateway_answer, json_answer, service_answer
from app.simulator.server import current_state
from app.simulator.state import AnalysisConflictError, RequestRefusedError, UnknownAssetError
from app.simulator.upstream_api import faulted, options_body
from app.upstream.signing import ACCESS_KEY_HEADER

workflows = Blueprint(
    "sim_workflows", __name__, url_prefix="/api/v1/workspaces/<ws>/projects/<pid>"
)

#: The simulator's choice: the docs document neither conflict's body.
SUMMARY_CONFLICT = ("10409", "Conflict: a scene summary is already waiting or running.")
SUMMARY_CANCEL_CONFLICT = ("10409", "Conflict: no scene summary is waiting or running.")


@workflows.post("/assets/import/object-storage")
def import_object(ws: str, pid: str) -> Response:
    """Start importing an object into a new asset; answer its ``assetId`` (an integer)."""
    answer = faulted("import")
    if answer is not None:
        return answer
    body = options_body()
    if not isinstance(body, dict) or not all(
        isinstance(body.get(name), str) and body[name] for name in ("key", "bucketName")
    ):
        return service_answer(400, *INVALID_REQUEST)
    access_key = request.headers.get(ACCESS_KEY_HEADER)
    asset_id = current_state().start_import(ws, pid, body, access_key)
    return json_answer(success({"assetId": asset_id}))


@workflows.get("/assets/<asset_id>/import-status")
def import_status(ws: str, pid: str, asset_id: str) -> Response:
    """An import's ``uploadStatus``, ``uploadResult`` and ``metaData``."""
    answer = faulted("import-status", asset_id)
    if answer is not None:
        return answer
    state = current_state()
    state.resolve_asset((ws, pid, asset_id))  # auto-create, as the status endpoints do
    try:
        return json_answer(success(state.import_result((ws, pid, asset_id))))
    except UnknownAssetError:
        return gateway_answer(404)


@workflows.post("/assets/<asset_id>/scene-summary")
def request_summary(ws: str, pid: str, asset_id: str) -> Response:
    """Request a scene summary of a completed analysis (options kept as given)."""
    answer = faulted("summary", asset_id)
    if answer is not None:
        return answer
    body = options_body()
    if not isinstance(body, dict):
        return service_answer(400, *INVALID_REQUEST)
    state = current_state()
    state.resolve_asset((ws, pid, asset_id))
    try:
        status = state.request_summary((ws, pid, asset_id), body)
    except UnknownAssetError:
        return gateway_answer(404)
    except AnalysisConflictError:
        return service_answer(409, *SUMMARY_CONFLICT)
    except RequestRefusedError as refused:
        return service_answer(refused.status, refused.code, refused.message)
    return json_answer(success({"assetId": asset_id, "status": status}))


@workflows.get("/assets/<asset_id>/scene-summary/status")
def summary_status(ws: str, pid: str, asset_id: str) -> Response:
    """The scene summary's ``status`` (BEFORE_SUMMARIZE until one is requested)."""
    answer = faulted("summary-status", asset_id)
    if answer is not None:
        return answer
    state = current_state()
    state.resolve_asset((ws, pid, asset_id))
    try:
        return json_answer(success(state.summary_result((ws, pid, asset_id))))
    except UnknownAssetError:
        return gateway_answer(404)


@workflows.post("/assets/<asset_id>/scene-summary/cancel")
def cancel_summary(ws: str, pid: str, asset_id: str) -> Response:
    """Cancel a waiting or running scene summary (-> SUMMARIZE_CANCELED); 409 otherwise."""
    answer = faulted("summary-cancel", asset_id)
    if answer is not None:
        return answer
    state = current_state()
    state.resolve_asset((ws, pid, asset_id))
    try:
        status = state.cancel_summary((ws, pid, asset_id))
    except UnknownAssetError:
        return gateway_answer(404)
    except AnalysisConflictError:
        return service_answer(409, *SUMMARY_CANCEL_CONFLICT)
    return json_answer(success({"assetId": asset_id, "status": status}))
