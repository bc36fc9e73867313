"""Helpers for the API tests: registration bodies, secrets, times and RFC 9457 problems.

``watch_body(**fields)`` is a valid registration (one webhook target on ``hooks.example.test``, which
the ``resolver`` fixture maps to a public address); fields given replace or add to it, and a field
given as ``OMIT`` is left out.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

PUBLIC_HOOK = "https://hooks.example.test/mi"
OMIT = object()
DEFAULT_EVENTS = [
    "analysis.completed",
    "analysis.failed",
    "analysis.cancelled",
    "watch.expired",
    "watch.error",
]


def watch_body(**fields: Any) -> dict[str, Any]:
    """A valid ``POST /api/v1/watches`` body with ``fields`` applied."""
    body: dict[str, Any] = {
        "workspace": "my-workspace",
        "project_id": "1234",
        "asset_id": "5678",
        "targets": [{"type": "webhook", "url": PUBLIC_HOOK}],
    }
    body.update(fields)
    return {name: value for name, value in body.items() if value is not OMIT}


def secret_of(length: int) -> str:
    """A Standard Webhooks secret encoding ``length`` bytes."""
    return "whsec_" + base64.b64encode(bytes(range(length))).decode()


def parse_time(text: str) -> datetime:
    """An RFC 3339 UTC time as the API writes it (``...Z``), aware."""
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)


def pointers(response: Any) -> list[str]:
    """The JSON pointers of a 422 problem's ``errors``."""
    return [error["pointer"] for error in response.get_json()["errors"]]


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """Assert ``response`` is an RFC 9457 problem with ``status``; returns its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    return body
