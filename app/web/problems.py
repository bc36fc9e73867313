"""RFC 9457 problem details: the one helper that builds every error response under ``/api/``."""

from __future__ import annotations

from flask import Response, json

from app.resources.problems import Problem

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
    title: str | None = None,
) -> Response:
    """A ``application/problem+json`` response; ``errors`` lists field problems as JSON pointers;
    ``title`` replaces the status code's standard phrase."""
    title = title or _TITLES.get(status, "Error")
    # ``errors`` is given only when there are field problems, so ``as_json`` leaves it out otherwise.
    if errors is None:
        body = Problem(type="about:blank", title=title, status=status, detail=detail)
    else:
        body = Problem(type="about:blank", title=title, status=status, detail=detail, errors=errors)
    # Flask's JSON provider, as ever: these bytes (sorted keys) are what clients have seen.
    response = Response(json.dumps(body.as_json()), status=status, mimetype=PROBLEM_TYPE)
    response.headers.update(headers or {})
    return response
