"""The OpenAPI 3.1 document of the API, generated from the pydantic schemas (placeholder)."""

from __future__ import annotations

from typing import Any


def build_document() -> dict[str, Any]:
    """The document served at ``/openapi.json``."""
    return {"openapi": "3.1.0", "info": {"title": "mi-bridge", "version": "0.1.0"}, "paths": {}}
