"""Helpers for the API tests: registration bodies, a settable clock, and apps built with one.

``watch_body(**fields)`` is a valid registration (one webhook target on ``hooks.example.test``, which
the ``resolver`` fixture maps to a public address); fields given replace or add to it, and a field
given as ``OMIT`` is left out.
"""

from __future__ import annotations

import base64
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask

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


class FakeClock:
    """A scheduling clock the test moves by hand (``advance``); starts at a fixed aware UTC time."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def development_app(database_url: str, resolver: Any, clock: Any = None, **overrides: Any) -> Flask:
    """A development app like the ``app`` fixture's (token ``API_TOKEN``), not migrated."""
    from app.clock import utcnow as _utcnow
    from app.factory import create_app
    from tests.conftest import API_TOKEN

    config = {
        "BRIDGE_ENV": "development",
        "BRIDGE_API_TOKENS": API_TOKEN,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        **overrides,
    }
    from tests.conftest import LoopbackOnly, StaticResolver

    resolver = resolver or StaticResolver()
    # Notifications connect to loopback addresses only, whatever the test registers.
    return create_app(
        config, resolver=resolver, clock=clock or _utcnow, connect_resolver=LoopbackOnly(resolver)
    )


def migrated_app(database_url: str, resolver: Any, clock: Any = None, **overrides: Any) -> Flask:
    """A migrated development app like the ``app`` fixture's, with an injected ``clock``."""
    from flask_migrate import upgrade

    app = development_app(database_url, resolver, clock, **overrides)
    with app.app_context():
        upgrade()
    return app


def sqlite_template(folder: Path) -> Path:
    """A migrated SQLite database in ``folder``, made once per module and copied per test.

    Copying a migrated file is much cheaper than running the migrations for every test.
    """
    from tests.conftest import _sqlite_template

    path = folder / "template.db"
    shutil.copyfile(_sqlite_template(), path)  # migrated once per session by the real migrations
    return path


def app_from_template(
    template: Path,
    folder: Path,
    resolver: Any,
    clock: Any = None,
    name: str = "bridge.db",
    **overrides: Any,
) -> Flask:
    """A development app on a copy of ``template`` (``folder/name``)."""
    path = folder / name
    shutil.copyfile(template, path)
    return development_app(f"sqlite:///{path}", resolver, clock, **overrides)


def dispose(app: Flask) -> None:
    """Close the app's pooled connections (before its test database is dropped)."""
    from app.db import db

    with app.app_context():
        db.engine.dispose()
