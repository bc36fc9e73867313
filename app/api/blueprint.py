"""The API blueprint: authentication for every route, JSON body parsing, and problem+json errors."""

from __future__ import annotations

from typing import Any, NoReturn

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.web.auth import bearer_token, token_fingerprint
from app.web.problems import problem
from app.web.throttle import bearer_refusal

api = Blueprint("api", __name__, url_prefix="/api/v1")

JSON_TYPES = ("application/json",)


class ApiError(Exception):
    """Raised by views to answer with a problem; carries the status, detail and field errors."""

    def __init__(
        self, status: int, detail: str, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors


def fail(status: int, detail: str, errors: list[dict[str, str]] | None = None) -> NoReturn:
    """Stop the view with a problem response."""
    raise ApiError(status, detail, errors)


@api.before_request
def _authenticate() -> Response | None:
    refusal = bearer_refusal(
        request.headers.get("Authorization"),
        lambda: problem(
            401,
            "a valid bearer token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": 'Bearer realm="mi-bridge"'},
        ),
    )
    if refusal is not None:
        return refusal
    token = bearer_token(request.headers.get("Authorization"))
    assert token is not None  # accepted above
    g.token_fingerprint = token_fingerprint(token)
    return None


@api.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return problem(exc.status, exc.detail, errors=exc.errors)


def json_body() -> tuple[Any, bytes]:
    """The request's JSON document and raw bytes; 415 for another content type, 400 if malformed."""
    mimetype = request.mimetype or ""
    if mimetype not in JSON_TYPES and not mimetype.endswith("+json"):
        fail(415, "send the body as application/json")
    raw = request.get_data(cache=True)  # MAX_CONTENT_LENGTH applies: 413 beyond 64 KiB
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail(400, "the body is not valid UTF-8")
    try:
        return current_app.json.loads(text), raw
    except ValueError as exc:
        fail(400, f"the body is not valid JSON: {exc}")


def install_error_handlers(app: Flask) -> None:
    """Answer HTTP errors under ``/api/`` (unknown routes, 405, 413...) as problem+json, and
    install the front door (``app.web.door``): impossible ids and NUL arguments refused before any
    query (database outages are ``app.web.outage``'s ``503``)."""
    from app.web import door

    door.install(app)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | HTTPException:
        if not request.path.startswith("/api/"):
            return exc
        refused = _authenticate()  # everything under /api/ needs a token, unknown paths included
        if refused is not None:
            return refused
        status = exc.code or 500
        if isinstance(exc, RequestEntityTooLarge):
            return problem(413, "the body is larger than 64 KiB")
        headers = {"Allow": exc.response.headers["Allow"]} if status == 405 and exc.response else {}
        if status == 405 and not headers:
            allow = getattr(exc, "valid_methods", None)
            headers = {"Allow": ", ".join(allow)} if allow else {}
        return problem(status, exc.description or "", headers=headers)

    @app.errorhandler(RecursionError)
    def _too_deep(exc: RecursionError) -> Response:
        return problem(400, "the body is nested too deeply")
