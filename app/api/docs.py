"""``/openapi.json`` and ``/docs``: the API description generated from the code, and a page to read it.

Swagger UI 5 (which renders OpenAPI 3.1) comes from the ``flask-swagger-ui`` wheel; its files are this
blueprint's static folder, served at ``/docs/assets/``. The page loads nothing from another origin,
so it works offline, and its Content-Security-Policy says so to the browser.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Response, render_template, request
from werkzeug.wrappers import Response as BaseResponse

SWAGGER_UI_FILES = Path(flask_swagger_ui.__file__).parent / "dist"

docs = Blueprint(
    "docs", __name__, static_folder=str(SWAGGER_UI_FILES), static_url_path="/docs/assets"
)


@docs.get("/openapi.json")
def openapi_json() -> BaseResponse:
    """The OpenAPI 3.1 document, built once per process; no token needed, ETag for revalidation."""
    from app.api.openapi import document_json

    response = Response(document_json(), mimetype="application/json")
    response.add_etag()
    return response.make_conditional(request)


@docs.get("/docs")
def docs_page() -> Response:
    """Swagger UI showing ``/openapi.json``; every asset comes from this app, no token needed."""
    nonce = secrets.token_urlsafe(16)
    response = Response(render_template("docs/index.html", nonce=nonce), mimetype="text/html")
    # Same-origin only: Swagger UI sets inline styles and its CSS embeds data: images.
    response.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
    return response
