"""The JSON bodies Media Intelligence answers with, as the simulator reproduces them.

Shapes follow ``media-intelligence-api.md``: the success envelope, the API Gateway's error
envelope and its errorCode table, and service errors (bare or wrapped in ``responseError``).
"""

from __future__ import annotations

from typing import Any

from app.simulator.assets import Snapshot

#: HTTP status -> (errorCode, message) of the API Gateway's error table.
GATEWAY_ERRORS: dict[int, tuple[str, str]] = {
    400: ("100", "Bad Request Exception"),
    401: ("200", "Authentication Failed"),
    404: ("300", "Not Found"),
    413: ("430", "Request Entity Too Large"),
    429: ("420", "Rate Limited"),
    500: ("900", "Unexpected Error"),
    503: ("500", "Endpoint Error"),
    504: ("510", "Endpoint Timeout"),
}
#: For statuses outside the table the gateway's catch-all "unexpected error" is the closest answer.
FALLBACK_GATEWAY_ERROR = ("900", "Unexpected Error")

INVALID_REQUEST = ("10001", "Invalid Request.")


def gateway_error_fields(http_status: int) -> tuple[str, str]:
    """(errorCode, message) the gateway uses for ``http_status``."""
    return GATEWAY_ERRORS.get(http_status, FALLBACK_GATEWAY_ERROR)


def gateway_error(error_code: str, message: str) -> dict[str, Any]:
    """``{"error": {"errorCode": ..., "message": ...}}``; errorCode a string, as in the examples."""
    return {"error": {"errorCode": error_code, "message": message}}


def gateway_error_for(http_status: int) -> dict[str, Any]:
    """The gateway's error body for ``http_status``."""
    return gateway_error(*gateway_error_fields(http_status))


def service_error(code: str, message: str, *, wrapped: bool = False) -> dict[str, Any]:
    """A service error: the success envelope's keys without ``result``, optionally wrapped."""
    body = {"code": code, "message": message}
    return {"responseError": body} if wrapped else body


def success(result: Any, *, code_as_number: bool = False) -> dict[str, Any]:
    """``{"code": "0", "message": "success", "result": ...}``; ``code_as_number`` sends ``0``."""
    return {"code": 0 if code_as_number else "0", "message": "success", "result": result}


def status_result(snapshot: Snapshot, message_field: str) -> dict[str, Any]:
    """The ``result`` of a status answer; ``indexId`` only when there is one."""
    result: dict[str, Any] = {"status": snapshot.status, message_field: snapshot.message}
    if snapshot.index_id is not None:
        result["indexId"] = snapshot.index_id
    return result
