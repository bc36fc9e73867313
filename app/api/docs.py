"""``/openapi.json`` and ``/docs``: the API description generated from the schemas, and a viewer."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

docs = Blueprint("docs", __name__)


@docs.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3.1 document (no token needed)."""
    from app.api.openapi import build_document

    return jsonify(build_document())
