"""Shared test helpers: constants, builders and small clients, for any test module to import.

``tests/conftest.py`` only declares the fixtures, each calling into this module; nothing imports
from conftest. What is here:

- ``API_TOKEN``, ``AUTH``, ``TEST_ACCESS_KEY``/``TEST_SECRET_KEY`` (the simulator's key pair);
- ``wait_until(predicate, timeout, message)``: wait for a condition with a deadline, never a sleep;
- ``StaticResolver``/``LoopbackOnly``: name resolution without DNS, connections to 127.0.0.1 only;
- ``FakeClock``: the one clock a test moves by hand (app scheduling clock or simulator clock);
- ``build_app(database_url, ...)``: the one builder of the app under test (the ``app`` fixture's);
- ``SimControl``/``SignedClient``: clients of the simulator's control API and upstream API;
- ``Bridge``: an app wired to the simulator and a fake clock, driven tick by tick.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from flask import Flask

from app.upstream.generations import status_path
from app.upstream.signing import signed_headers
from app.vocabulary import ApiGeneration

#: The bearer token every test app accepts (``BRIDGE_API_TOKENS``).
API_TOKEN = "test-api-token"
#: Request headers carrying ``API_TOKEN``.
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
#: The simulator's key pair in tests, and the bridge's ``NCP_ACCESS_KEY``/``NCP_SECRET_KEY``.
TEST_ACCESS_KEY = "test-access-key"
TEST_SECRET_KEY = "test-secret-key"
#: Seconds any test's HTTP request may take.
HTTP_TIMEOUT = 10

#: Variables of the bridge's configuration; tests start from none of them (their own overrides win).
_CONFIG_PREFIXES = ("BRIDGE_", "MI_", "NCP_", "SLACK_")
_CONFIG_NAMES = {"DATABASE_URL", "SECRET_KEY", "LOG_LEVEL", "PORT"}


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, message: str = "") -> Any:
    """Return the first truthy ``predicate()``; fail the test if none comes within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout} s: {message or predicate}")
        time.sleep(0.01)  # the polling interval of the condition, not a wait for work


def developer_configuration() -> list[str]:
    """Names in ``os.environ`` that configure the bridge (the test database URL is not one)."""
    return [
        name
        for name in os.environ
        if not name.startswith("MI_BRIDGE_TEST_")
        and (name.startswith(_CONFIG_PREFIXES) or name in _CONFIG_NAMES)
    ]


# --- name resolution -------------------------------------------------------------------------------


class StaticResolver:
    """A resolver for the address guard that never touches DNS: names map to fixed addresses.

    Names not in the table raise ``socket.gaierror`` (unresolvable), like a name with no records.
    """

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = dict(table or {})

    def __call__(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            pass
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])


class LoopbackOnly:
    """The resolver notifications connect with in tests: names that resolve to anything but
    loopback fail to resolve, so no test can ever send a request off this machine."""

    def __init__(self, resolver: StaticResolver) -> None:
        self.resolver = resolver

    def __call__(self, host: str, port: int) -> list[str]:
        addresses = self.resolver(host, port)
        if not all(ipaddress.ip_address(a).is_loopback for a in addresses):
            raise socket.gaierror(socket.EAI_NONAME, f"tests connect to 127.0.0.1 only, not {host}")
        return addresses


# --- time ------------------------------------------------------------------------------------------


class FakeClock:
    """A clock the test moves by hand: ``clock()`` answers ``clock.now`` until ``advance`` moves it.

    By default ``now`` is an aware UTC datetime (the app's scheduling clock), starting at the real
    time to whole milliseconds, the API's precision, so a time the API writes reads back equal to
    ``clock.now``. A number as ``start`` makes it a clock of seconds (the simulator's). Wire
    timestamps (signatures) never use it: they always come from the real clock.
    """

    def __init__(self, start: datetime | float | None = None) -> None:
        if start is None:
            start = datetime.now(UTC)
            start = start.replace(microsecond=start.microsecond // 1000 * 1000)
        self.now = start

    def __call__(self) -> Any:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move ``now`` forward by ``seconds``."""
        if isinstance(self.now, datetime):
            self.now += timedelta(seconds=seconds)
        else:
            self.now += seconds


# --- the app under test ----------------------------------------------------------------------------


#: The default bot token and Slack API of test apps (``build_app``): ``SLACK_BOT_TOKEN=None`` unsets it.
UNUSED_SLACK_TOKEN = "xoxb-test-token-of-no-workspace"
CLOSED_SLACK_API_URL = "http://127.0.0.1:9/api/"


def build_app(
    database_url: str,
    *,
    resolver: Callable[[str, int], list[str]] | None = None,
    clock: Callable[[], datetime] | None = None,
    connect_resolver: Callable[[str, int], list[str]] | None = None,
    migrate: bool = True,
    **config: Any,
) -> Flask:
    """A development app accepting ``API_TOKEN``, on ``database_url``, with ``config`` applied.

    Hosts resolve through ``resolver`` (default: an empty ``StaticResolver``); notifications connect
    through ``connect_resolver`` (default: ``LoopbackOnly(resolver)``). ``clock`` is the scheduling
    clock (default: the real one). With ``migrate``, a new SQLite file in an existing folder starts
    as a copy of ``sqlite_template()``; any other database is migrated with the real migrations.
    """
    from flask_migrate import upgrade

    from app.clock import utcnow
    from app.config import load_settings
    from app.factory import create_app

    resolver = resolver or StaticResolver()
    settings = {
        "BRIDGE_ENV": "development",
        "BRIDGE_API_TOKENS": API_TOKEN,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        # slack targets are refused while no bot token is set; a test that sends to Slack points
        # SLACK_API_URL at the fake Slack, any other one reaches a closed port on 127.0.0.1.
        "SLACK_BOT_TOKEN": UNUSED_SLACK_TOKEN,
        "SLACK_API_URL": CLOSED_SLACK_API_URL,
        **config,
    }
    settings = {key: value for key, value in settings.items() if value is not None}
    path = Path(database_url.removeprefix("sqlite:///"))
    copied = (
        migrate
        and database_url.startswith("sqlite:///")
        and path.parent.is_dir()
        and not path.exists()
    )
    if copied:
        # Copying a file migrated once per test session is much cheaper than migrating each time.
        shutil.copyfile(sqlite_template(), path)
    app = create_app(
        # Never the developer's ``.env``: a test sees only the configuration it states.
        load_settings(settings, env_file=None),
        resolver=resolver,
        clock=clock or utcnow,
        connect_resolver=connect_resolver or LoopbackOnly(resolver),
    )
    if migrate and not copied:
        with app.app_context():
            upgrade()
    return app


_TEMPLATE: dict[str, Path] = {}


def sqlite_template() -> Path:
    """A SQLite database migrated with the real migrations, once per test session."""
    if "path" not in _TEMPLATE:
        from flask_migrate import upgrade

        path = Path(tempfile.mkdtemp(prefix="mi-bridge-template-")) / "template.db"
        app = build_app(f"sqlite:///{path}", migrate=False)
        with app.app_context():
            upgrade()
        dispose(app)
        _TEMPLATE["path"] = path
    return _TEMPLATE["path"]


def dispose(app: Flask) -> None:
    """Close the app's pooled connections (before its test database is dropped)."""
    from app.db import db

    with app.app_context():
        db.engine.dispose()


def simulator_config(simulator_url: str) -> dict[str, str]:
    """Configuration pointing an app at the simulator with the test keys, on the index API."""
    return {
        "MI_API_URL": simulator_url,
        "NCP_ACCESS_KEY": TEST_ACCESS_KEY,
        "NCP_SECRET_KEY": TEST_SECRET_KEY,
        "MI_DEFAULT_API": "index",
    }


#: The ``bridge`` fixture's timings: 1 s base poll interval, 8 s cap, 5 s leases.
TICK_TIMINGS = {
    "BRIDGE_POLL_INTERVAL": "1",
    "BRIDGE_POLL_MAX_INTERVAL": "8",
    "BRIDGE_LEASE_SECONDS": "5",
}


# --- the simulator's clients -----------------------------------------------------------------------


class SimControl:
    """The simulator's control API; paths are relative to ``/_sim``, methods return the Response."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url + "/_sim"
        self.http = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send ``method`` to ``/_sim`` + ``path``."""
        return self.http.request(method, self.base_url + path, timeout=HTTP_TIMEOUT, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self.http.close()


class SignedClient:
    """Requests to the simulated upstream signed with a key pair (by the project's signer)."""

    def __init__(self, base_url: str, access_key: str, secret_key: str) -> None:
        self.base_url = base_url
        self.access_key = access_key
        self.secret_key = secret_key
        self.http = requests.Session()

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> requests.Response:
        """Sign the request target exactly as sent; ``headers`` are applied after signing."""
        prepared = self.http.prepare_request(
            requests.Request(method, self.base_url + path, **kwargs)
        )
        prepared.headers.update(
            signed_headers(method, prepared.path_url, self.access_key, self.secret_key)
        )
        prepared.headers.update(headers or {})
        return self.http.send(prepared, timeout=HTTP_TIMEOUT)

    def status(
        self,
        asset_id: str,
        generation: ApiGeneration = ApiGeneration.INDEX,
        workspace: str = "ws",
        project_id: str = "1",
    ) -> requests.Response:
        """GET one asset's status from ``generation``'s endpoint."""
        return self.request("GET", status_path(generation, workspace, project_id, asset_id))

    def close(self) -> None:
        self.http.close()


# --- the bridge against the simulator, driven tick by tick ---------------------------------------


class Bridge:
    """An app wired to a simulator, a fake clock and a worker runtime (close ``runtime`` after)."""

    def __init__(self, app: Flask, clock: FakeClock, simulator: Any, control: SimControl) -> None:
        import random

        from app.worker.runtime import WorkerRuntime

        self.app, self.clock, self.simulator, self.control = app, clock, simulator, control
        self.client = app.test_client()
        self.runtime = WorkerRuntime.from_app(app, rng=random.Random(7))

    def register(self, asset_id: str, **fields: Any) -> dict[str, Any]:
        """POST a watch of (ws, 1, asset_id) with a webhook target unless told otherwise."""
        body = {
            "workspace": "ws",
            "project_id": "1",
            "asset_id": asset_id,
            "targets": [{"type": "webhook", "url": "https://hooks.example.test/in"}],
            **fields,
        }
        response = self.client.post("/api/v1/watches", json=body, headers=AUTH)
        assert response.status_code == 201, response.json
        return response.json

    def watch(self, watch_id: str) -> dict[str, Any]:
        """The API's view of one watch."""
        response = self.client.get(f"/api/v1/watches/{watch_id}", headers=AUTH)
        assert response.status_code == 200
        return response.json

    def set_status(self, asset_id: str, status: str, **extra: Any) -> None:
        """Pin the simulated asset (ws, 1, asset_id) at ``status``."""
        response = self.control.put(f"/assets/ws/1/{asset_id}", json={"status": status, **extra})
        assert response.status_code in (200, 201), response.text

    def fault(self, **spec: Any) -> None:
        """Add a fault rule to the simulator."""
        response = self.control.post("/faults", json=spec)
        assert response.status_code == 201, response.text

    def tick(self, advance: float = 0.0):
        """Move the clock by ``advance`` seconds, then run one tick of the poll job and one of
        the workflow job (a worker runs them side by side); returns the poll's report."""
        from app.worker.polling import poll_once
        from app.worker.workflows import workflow_once

        self.clock.advance(advance)
        report = poll_once(self.runtime)
        workflow_once(self.runtime)
        return report

    def upstream_requests(self) -> int:
        """How many upstream requests the simulator has answered."""
        return self.control.get("/stats").json()["requests"]

    def events(self, watch_id: str | None = None) -> list[dict[str, Any]]:
        """Events from the API (up to 500), of one watch if given."""
        params = {"limit": 500, **({"watch_id": watch_id} if watch_id else {})}
        response = self.client.get("/api/v1/events", query_string=params, headers=AUTH)
        return response.json["items"]

    def db(self):
        """An app context whose ``db.session`` reads the bridge's database."""
        return self.app.app_context()
