"""Flask responses in the upstream's shapes: every simulated upstream answer is built here."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app

from app.simulator.envelopes import gateway_error, gateway_error_fields, service_error


def json_answer(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Any JSON value with ``status`` (keys kept in the upstream's order, not sorted)."""
    body = json.dumps(payload, ensure_ascii=False)
    return current_app.response_class(
        body, status=status, headers=headers, content_type="application/json;charset=UTF-8"
    )


def gateway_answer(
    http_status: int,
    error_code: str | None = None,
    message: str | None = None,
    retry_after: str | None = None,
) -> Response:
    """An API Gateway error; errorCode and message default to the gateway's table for the status."""
    default_code, default_message = gateway_error_fields(http_status)
    headers = {"Retry-After": retry_after} if retry_after else None
    return json_answer(
        gateway_error(error_code or default_code, message or default_message), http_status, headers
    )


def service_answer(http_status: int, code: str, message: str, *, wrapped: bool = False) -> Response:
    """A service error (``{"code", "message"}``, optionally wrapped in ``responseError``)."""
    return json_answer(service_error(code, message, wrapped=wrapped), http_status)
