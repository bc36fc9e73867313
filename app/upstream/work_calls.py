"""The upstream calls of a workflow: requests that start work (import, analysis, scene summary), the
statuses of that work, and the asset list that finds an import the bridge lost track of.

Each call is one signed request on the client's loop, bounded in time and size, and comes back as a
``WorkAnswer`` value, never an exception. The answers are classified like polls (``outcomes``), with
one addition: ``409`` means "already running" for the requests that start work.

Paths and shapes are those of ``media-intelligence-api.md`` ("Import from Object Storage", "Scene
summary", "Neighbouring endpoints"). Where the docs are silent, the choices are the simulator's and
are named where they are read: the scene summary's status is ``result.status`` (as the analysis's),
its message ``result.summarizeStatusMessage``, and an imported asset is listed with its object key
as ``assetName``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from app.upstream.outcomes import (
    PollOutcome,
    classify_response,
    storable_text,
)

#: A page of the asset list large enough for a lookup, small enough to read fast.
LOOKUP_PAGE_SIZE = 100
_MAX_MESSAGE = 4000


class WorkOutcome(StrEnum):
    """What one workflow call tells the bridge."""

    ACCEPTED = "accepted"  # 2xx with a result
    CONFLICT = "conflict"  # 409 to a request that starts work: it is already running
    RETRY = "retry"  # 429, 5xx, timeouts, network, odd answers: try again later (fate unknown)
    AUTH = "auth"  # 401/403: the account's keys or clock; retried slowly
    REJECTED = "rejected"  # any other refusal: the watch cannot go on


@dataclass(frozen=True)
class WorkAnswer:
    """One classified answer; ``result`` is the envelope's ``result`` object of an accepted call."""

    outcome: WorkOutcome
    result: dict[str, Any] | None = None
    http_status: int | None = None
    message: str | None = None
    detail: str = ""
    retry_after: float | None = None
    request_id: str | None = None
    #: For RETRY: whether the request may have been carried out (no answer, or a 5xx) rather than
    #: refused before any work (429, or 401/403).
    uncertain: bool = False

    @property
    def failure(self) -> str:
        """What went wrong, for people: the bridge's words and the upstream's own."""
        if self.message and self.message not in self.detail:
            return f"{self.detail}: {self.message}"
        return self.detail or self.outcome.value


_BY_POLL_OUTCOME = {
    PollOutcome.TRANSIENT: WorkOutcome.RETRY,
    PollOutcome.RATE_LIMITED: WorkOutcome.RETRY,
    PollOutcome.AUTH: WorkOutcome.AUTH,
    PollOutcome.NOT_FOUND: WorkOutcome.REJECTED,
    PollOutcome.PERMANENT: WorkOutcome.REJECTED,
}


def classify_work_answer(
    http_status: int, headers: Any, body: bytes, now: datetime, *, starts_work: bool
) -> WorkAnswer:
    """Classify one HTTP answer of a workflow call (``starts_work``: a 409 means "running")."""
    poll = classify_response(http_status, headers, body, now)
    base = WorkAnswer(
        WorkOutcome.RETRY,
        http_status=http_status,
        message=poll.message,
        detail=poll.detail or f"HTTP {http_status}",
        retry_after=poll.retry_after,
        request_id=poll.request_id,
    )
    if http_status == 409 and starts_work:
        return _replace(base, outcome=WorkOutcome.CONFLICT, detail="HTTP 409")
    if not 200 <= http_status < 300:
        outcome = _BY_POLL_OUTCOME[poll.outcome]
        uncertain = outcome is WorkOutcome.RETRY and http_status != 429
        return _replace(base, outcome=outcome, uncertain=uncertain)
    payload = _json_or_none(body)
    if not isinstance(payload, dict):
        return _replace(base, detail="malformed body (not a JSON object)", uncertain=True)
    code = payload.get("code")
    if code not in (None, 0, "0"):
        return _replace(base, outcome=WorkOutcome.REJECTED, detail=f"service code {code}")
    result = payload.get("result")
    if not isinstance(result, dict):
        return _replace(base, detail="unexpected body shape (no result)", uncertain=True)
    return _replace(base, outcome=WorkOutcome.ACCEPTED, result=result, detail="")


def transport_failure(detail: str) -> WorkAnswer:
    """A call that got no answer (connection, timeout): it may or may not have been carried out."""
    return WorkAnswer(WorkOutcome.RETRY, detail=storable_text(detail, 512), uncertain=True)


# --- paths ---------------------------------------------------------------------------------------


def _project(workspace: str, project_id: str) -> str:
    return f"/api/v1/workspaces/{quote(workspace, safe='')}/projects/{quote(project_id, safe='')}"


def _asset(workspace: str, project_id: str, asset_id: str) -> str:
    return f"{_project(workspace, project_id)}/assets/{quote(asset_id, safe='')}"


def import_path(workspace: str, project_id: str) -> str:
    return f"{_project(workspace, project_id)}/assets/import/object-storage"


def import_status_path(workspace: str, project_id: str, asset_id: str) -> str:
    return f"{_asset(workspace, project_id, asset_id)}/import-status"


def index_path(workspace: str, project_id: str, asset_id: str) -> str:
    return f"{_asset(workspace, project_id, asset_id)}/index"


def summary_path(workspace: str, project_id: str, asset_id: str) -> str:
    return f"{_asset(workspace, project_id, asset_id)}/scene-summary"


def summary_status_path(workspace: str, project_id: str, asset_id: str) -> str:
    return f"{_asset(workspace, project_id, asset_id)}/scene-summary/status"


def asset_list_path(workspace: str, project_id: str, page: int = 1) -> str:
    return f"{_project(workspace, project_id)}/assets?pageNum={page}&pageSize={LOOKUP_PAGE_SIZE}"


# --- reading results -----------------------------------------------------------------------------


def asset_id_of(result: dict[str, Any]) -> str | None:
    """``result.assetId`` (an integer, or a string of digits) as text; None if there is none."""
    value = result.get("assetId")
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 64:
        return value
    return None


@dataclass(frozen=True)
class Progress:
    """A status of some work (the import's ``uploadStatus``, the summary's ``status``)."""

    status: str
    message: str | None = None
    metadata: dict[str, Any] | None = None


def import_progress(result: dict[str, Any]) -> Progress | None:
    """The import-status answer, or None when it carries no ``uploadStatus``."""
    status = _word(result.get("uploadStatus"))
    if status is None:
        return None
    metadata = result.get("metaData")
    return Progress(status, _text(result.get("uploadResult")),
                    metadata if isinstance(metadata, dict) else None)  # fmt: skip


def summary_progress(result: dict[str, Any]) -> Progress | None:
    """The scene summary status answer, or None when it carries no ``status``."""
    status = _word(result.get("status"))
    if status is None:
        return None
    return Progress(status, _text(result.get("summarizeStatusMessage")))


def listed_imports(result: dict[str, Any], key: str) -> list[str]:
    """The ids of the listed assets whose ``assetName`` is the object ``key``; None-safe."""
    content = result.get("content")
    if not isinstance(content, list):
        return []
    found = []
    for entry in content:
        if isinstance(entry, dict) and entry.get("assetName") == key:
            asset_id = asset_id_of(entry)
            if asset_id is not None:
                found.append(asset_id)
    return found


def listed_count(result: dict[str, Any]) -> int:
    """How many assets one page of the asset list holds."""
    content = result.get("content")
    return len(content) if isinstance(content, list) else 0


def total_count(result: dict[str, Any]) -> int | None:
    """The list's ``totalCount``, when it gives one."""
    total = result.get("totalCount")
    return total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None


def _word(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= 32 and value.replace("_", "").isalnum():
        return value
    return None


def _text(value: Any) -> str | None:
    return (storable_text(value, _MAX_MESSAGE) or None) if isinstance(value, str) else None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _replace(answer: WorkAnswer, **changes: Any) -> WorkAnswer:
    from dataclasses import replace

    return replace(answer, **changes)


# --- sending -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkCall:
    """One workflow request: its method, path (with any query), JSON body, and whether a ``409``
    to it means "already running"."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    starts_work: bool = False


async def send_work_call(client: Any, workspace: str, call: WorkCall, budget: float) -> WorkAnswer:
    """Send ``call`` signed with ``workspace``'s account on ``client``'s loop, within ``budget``
    seconds in all; the answer classified, never an exception."""
    from app.upstream.client import transfer_failure_text
    from app.upstream.curl_transport import TransferError

    data = None if call.body is None else json.dumps(call.body, ensure_ascii=False).encode()
    try:
        answer = await client.send(workspace, call.method, call.path, body=data, budget=budget)
    except TransferError as exc:
        return transport_failure(transfer_failure_text(exc))
    return classify_work_answer(
        answer.status, answer.headers, answer.body, client._clock(), starts_work=call.starts_work
    )
