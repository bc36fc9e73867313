"""The simulated Media Intelligence API: the signed status endpoints of all three generations and
their neighbours.

Every request outside the control API (``/_sim``) must carry a valid signature v2, checked against
the real clock shifted by ``clock_offset_seconds``, made with a key pair allowed for the path's
workspace (else 401, errorCode 210 "permission denied"). A status request then meets, in this
order: the generation switch, the first matching fault rule, the asset lookup (auto-create or 404),
the answer. Every other route meets the fault rules naming its endpoint first (``faults.ENDPOINTS``).

The analysis requests (``/index``, deprecated ``/analyze``) take the documented options as a JSON
object, passed through unvalidated and kept (``GET /_sim/assets/.../workflow``); a body that is
present but not a JSON object is refused (400, code 10001).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, request

from app.simulator.assets import AssetKey
from app.simulator.envelopes import INVALID_REQUEST, status_result, success
from app.simulator.fault_answers import answer_fault
from app.simulator.faults import FaultTarget
from app.simulator.responses import gateway_answer, json_answer, service_answer
from app.simulator.server import current_state, is_control_path
from app.simulator.state import AnalysisConflictError, RequestRefusedError, UnknownAssetError
from app.simulator.verify import verify_request
from app.upstream.signing import ACCESS_KEY_HEADER
from app.vocabulary import ApiGeneration

log = logging.getLogger(__name__)

upstream = Blueprint("sim_upstream", __name__, url_prefix="/api/v1/workspaces/<ws>/projects/<pid>")

#: The simulator's choice: the docs document the 409 but not its body.
CONFLICT = ("10409", "Conflict: an analysis is already waiting or running.")
CANCEL_CONFLICT = ("10409", "Conflict: no analysis is waiting or running.")
MAX_PAGE_SIZE = 1000
#: The API Gateway's "permission denied": a valid key used for a workspace it may not use.
PERMISSION_DENIED = ("210", "Permission Denied")
#: A body that cannot be read: present, but not a JSON object.
_UNREADABLE: Any = object()


@upstream.before_app_request
def authenticate() -> Response | None:
    """Refuse (401, errorCode 200) any upstream request whose signature v2 does not verify."""
    if is_control_path(request.path):
        return None
    state = current_state()
    now_ms = time.time_ns() // 1_000_000 + round(state.config.clock_offset_seconds * 1000)
    verdict = verify_request(
        request.method,
        request_target(request.environ),
        request.headers,
        state.credentials(),
        now_ms,
    )
    access_key = request.headers.get(ACCESS_KEY_HEADER)
    workspace = (request.view_args or {}).get("ws")
    allowed = (
        not verdict.ok
        or workspace is None
        or access_key is None
        or state.key_allows(access_key, workspace)
    )
    state.count_upstream_request(authenticated=verdict.ok and allowed, access_key=access_key)
    if not verdict.ok:
        log.info("401 for %s %s: %s", request.method, request.path, verdict.reason)
        return gateway_answer(401)
    if not allowed:
        log.info("401 for %s %s: key not allowed for workspace", request.method, request.path)
        return gateway_answer(401, *PERMISSION_DENIED)
    return None


def faulted(endpoint: str, asset_id: str | None = None) -> Response | None:
    """The answer of the first fault rule matching this request at ``endpoint``, if any (``slow``
    and ``hold`` wait, then answer None: the request goes on normally)."""
    state = current_state()
    target = FaultTarget(endpoint, asset_id, None, request.headers.get(ACCESS_KEY_HEADER))
    fault = state.take_fault(target)
    return None if fault is None else answer_fault(fault, state.gate)


def options_body() -> Any:
    """The request's JSON object, ``{}`` when there is no body, ``_UNREADABLE`` otherwise."""
    if not request.get_data():
        return {}
    body = request.get_json(force=True, silent=True)
    return body if isinstance(body, dict) else _UNREADABLE


@upstream.after_app_request
def stamp_request_id(response: Response) -> Response:
    """Give every upstream answer an ``x-ncp-request-id``, as NCP's API Gateway does."""
    if not is_control_path(request.path):
        response.headers.setdefault("x-ncp-request-id", str(uuid.uuid4()))
    return response


def request_target(environ: dict[str, Any]) -> str:
    """The request target as received: path plus ``?query`` when present (what the client signed).

    Werkzeug's and gunicorn's servers pass it raw in RAW_URI/REQUEST_URI. Targets are ASCII on the
    wire (clients percent-encode), so no charset decoding is needed.
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        if not raw.startswith("/"):
            # Absolute form (http://host/path): scheme and host are not part of what is signed.
            parts = urlsplit(raw)
            raw = parts.path + (f"?{parts.query}" if parts.query else "")
        return raw
    # Without the raw target, rebuild it; a client that encoded differently will not verify.
    path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""))
    query = environ.get("QUERY_STRING", "")
    return path + (f"?{query}" if query else "")


@upstream.get("/video-assets/<asset_id>/analyze-status")
def video_asset_status(ws: str, pid: str, asset_id: str) -> Response:
    """Status, first generation (deprecated, to be turned off January 2027)."""
    return _answer_status(ApiGeneration.VIDEO_ASSETS, (ws, pid, asset_id))


@upstream.get("/assets/<asset_id>/analyze-status")
def asset_status(ws: str, pid: str, asset_id: str) -> Response:
    """Status, second generation (deprecated, to be removed January 2027)."""
    return _answer_status(ApiGeneration.ASSETS, (ws, pid, asset_id))


@upstream.get("/assets/<asset_id>/index/status")
def index_status(ws: str, pid: str, asset_id: str) -> Response:
    """Status, current index API."""
    return _answer_status(ApiGeneration.INDEX, (ws, pid, asset_id))


def _answer_status(generation: ApiGeneration, key: AssetKey) -> Response:
    state = current_state()
    with state.tracking_status_request(key, generation):
        switch = state.generation_switch(generation)
        if not switch.enabled:
            return gateway_answer(switch.status_code)
        access_key = request.headers.get(ACCESS_KEY_HEADER)
        fault = state.take_fault(FaultTarget("status", key[2], generation, access_key))
        if fault is not None:
            answer = answer_fault(fault, state.gate)
            if answer is not None:
                return answer
        asset = state.resolve_asset(key)
        if asset is None:
            return gateway_answer(404)
        # Read after any slow/hold delay: the answer describes the moment it is sent.
        snapshot = asset.snapshot(state.now())
        result = status_result(snapshot, asset.message_field)
        return json_answer(success(result, code_as_number=asset.code_as_number))


@upstream.post("/assets/<asset_id>/index")
def request_index(ws: str, pid: str, asset_id: str) -> Response:
    """Request analysis: the asset's analysis restarts at WAIT_ANALYZE (409 while one runs)."""
    answer = faulted("index", asset_id)
    if answer is not None:
        return answer
    return _start_analysis((ws, pid, asset_id), options_body())


@upstream.post("/assets/<asset_id>/analyze")
def request_analyze(ws: str, pid: str, asset_id: str) -> Response:
    """Deprecated analysis request: like ``/index`` but needs ``analysisPersonCount`` 0-10."""
    answer = faulted("index", asset_id)
    if answer is not None:
        return answer
    body = options_body()
    count = body.get("analysisPersonCount") if isinstance(body, dict) else None
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 10:
        return service_answer(400, *INVALID_REQUEST)
    return _start_analysis((ws, pid, asset_id), body)


def _start_analysis(key: AssetKey, body: Any) -> Response:
    if body is _UNREADABLE:
        return service_answer(400, *INVALID_REQUEST)
    state = current_state()
    try:
        asset = state.request_analysis(key, body)
    except UnknownAssetError:
        return gateway_answer(404)
    except AnalysisConflictError:
        return service_answer(409, *CONFLICT)
    except RequestRefusedError as refused:
        return service_answer(refused.status, refused.code, refused.message)
    snapshot = asset.snapshot(state.now())
    return json_answer(success({"assetId": asset.asset_id, "status": snapshot.status}))


@upstream.post("/assets/<asset_id>/index/cancel")
def cancel_index(ws: str, pid: str, asset_id: str) -> Response:
    """Cancel a waiting or running analysis (-> ANALYZE_CANCEL); 409 otherwise."""
    answer = faulted("index-cancel", asset_id)
    if answer is not None:
        return answer
    state = current_state()
    try:
        asset = state.cancel_analysis((ws, pid, asset_id))
    except UnknownAssetError:
        return gateway_answer(404)
    except AnalysisConflictError:
        return service_answer(409, *CANCEL_CONFLICT)
    snapshot = asset.snapshot(state.now())
    return json_answer(success({"assetId": asset.asset_id, "status": snapshot.status}))


@upstream.get("/assets")
def list_assets(ws: str, pid: str) -> Response:
    """One page of the project's assets (``pageNum`` from 1; ``pageSize`` 1-1000, default 100)."""
    answer = faulted("list")
    if answer is not None:
        return answer
    page_num = _positive_int(request.args.get("pageNum", "1"))
    page_size = _positive_int(request.args.get("pageSize", "100"))
    if page_num is None or page_size is None or page_size > MAX_PAGE_SIZE:
        return service_answer(400, *INVALID_REQUEST)
    state = current_state()
    assets = state.project_assets(ws, pid)
    now = state.now()
    page = assets[(page_num - 1) * page_size : page_num * page_size]
    content = []
    for asset in page:
        snapshot = asset.snapshot(now)
        entry = {"assetId": asset.asset_id, **status_result(snapshot, asset.message_field)}
        if asset.work.import_job is not None:
            # The simulator's assumption (the docs list no fields): an imported asset is listed
            # under its object key, which is how the bridge finds an import it lost track of.
            entry["assetName"] = asset.work.import_job.key
        content.append(entry)
    return json_answer(
        success(
            {
                "totalCount": len(assets),
                "pageNum": page_num,
                "pageSize": page_size,
                "content": content,
            }
        )
    )


def _positive_int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None
