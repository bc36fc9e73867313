"""RFC 9457 problem details: the one helper that builds every error response under ``/api/``."""

from __future__ import annotations

from typing import Any

from flask import Response, json
from pydantic import ValidationError

PROBLEM_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A ``application/problem+json`` response; ``errors`` lists field problems as JSON pointers."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_TYPE)
    response.headers.update(headers or {})
    return response


def validation_errors(exc: ValidationError, data: Any) -> list[dict[str, str]]:
    """Every pydantic error as ``{"pointer": "#/targets/0/url", "detail": ...}``, in input order."""
    return [
        {"pointer": _pointer(error, data), "detail": _detail(error)}
        for error in exc.errors(include_url=False, include_input=False)
    ]


def _pointer(error: Any, data: Any) -> str:
    """The JSON pointer into the *input* document: union tags and ``[key]`` markers are dropped."""
    parts: list[str] = []
    current = data
    loc = list(error["loc"])
    for position, element in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(current, list) and isinstance(element, int):
            parts.append(str(element))
            current = current[element] if element < len(current) else None
        elif isinstance(current, dict) and (element in current or last):
            parts.append(str(element))
            current = current.get(element)
        # anything else is a discriminator tag or pydantic's "[key]" marker: not in the input
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        parts.append("type")
    return "#" + "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def _detail(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return "required"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return message
