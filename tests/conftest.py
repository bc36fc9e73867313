"""Shared fixtures: the Media Intelligence simulator on 127.0.0.1, and small clients to drive it.

Fixtures: ``simulator`` (a started SimulatorServer, auto-create off, keys TEST_ACCESS_KEY /
TEST_SECRET_KEY), ``sim_control`` (the ``/_sim`` control API), ``sim_upstream`` (signed requests to
the simulated upstream), ``signed_client_factory`` (more of those, e.g. one per thread) and
``sim_client`` (the project's MediaIntelligenceClient pointed at it) and ``wait_until`` (wait for a
condition with a deadline instead of sleeping).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from app.simulator import SimConfig, SimulatorServer, SimulatorState
from app.upstream.client import MediaIntelligenceClient
from app.upstream.generations import status_path
from app.upstream.signing import signed_headers
from app.vocabulary import ApiGeneration

TEST_ACCESS_KEY = "test-access-key"
TEST_SECRET_KEY = "test-secret-key"
HTTP_TIMEOUT = 10


def _wait_until(predicate: Callable[[], Any], timeout: float = 5.0, message: str = "") -> Any:
    """Return the first truthy ``predicate()``; fail the test if none comes within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout} s: {message or predicate}")
        time.sleep(0.01)  # the polling interval of the condition, not a wait for work


#: Variables of the bridge's configuration; tests start from none of them (their own overrides win).
_CONFIG_PREFIXES = ("BRIDGE_", "MI_", "NCP_", "SLACK_")
_CONFIG_NAMES = {"DATABASE_URL", "SECRET_KEY", "LOG_LEVEL", "PORT"}


@pytest.fixture(autouse=True)
def _isolated_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own configuration out of every test (the test database URL stays)."""
    for name in list(os.environ):
        if name.startswith("MI_BRIDGE_TEST_"):
            continue
        if name.startswith(_CONFIG_PREFIXES) or name in _CONFIG_NAMES:
            monkeypatch.delenv(name)


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """``wait_until(predicate, timeout=5.0, message="")``."""
    return _wait_until


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """A started simulator that does not auto-create assets; stopped after the test."""
    state = SimulatorState(SimConfig(auto_create=False))
    server = SimulatorServer("127.0.0.1", 0, state, TEST_ACCESS_KEY, TEST_SECRET_KEY)
    server.start()
    yield server
    server.stop()


class SimControl:
    """The simulator's control API; paths are relative to ``/_sim``, methods return the Response."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url + "/_sim"
        self.http = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
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


@pytest.fixture
def sim_control(simulator: SimulatorServer) -> Iterator[SimControl]:
    """A control-API client of the ``simulator`` fixture."""
    control = SimControl(simulator.url)
    yield control
    control.close()


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


@pytest.fixture
def signed_client_factory(simulator: SimulatorServer) -> Iterator[Callable[[], SignedClient]]:
    """Makes SignedClients of the ``simulator`` fixture (each with its own connection pool)."""
    clients: list[SignedClient] = []

    def make() -> SignedClient:
        client = SignedClient(simulator.url, TEST_ACCESS_KEY, TEST_SECRET_KEY)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def sim_upstream(signed_client_factory: Callable[[], SignedClient]) -> SignedClient:
    """Signed requests to the ``simulator`` fixture's upstream API (workspace "ws", project "1")."""
    return signed_client_factory()


@pytest.fixture
def sim_client(simulator: SimulatorServer) -> Iterator[MediaIntelligenceClient]:
    """The project's upstream client, pointed at the ``simulator`` fixture with the test keys."""
    with MediaIntelligenceClient(simulator.url, TEST_ACCESS_KEY, TEST_SECRET_KEY) as client:
        yield client


# --- the web application -------------------------------------------------------------------------

API_TOKEN = "test-api-token"


class StaticResolver:
    """A resolver for the address guard that never touches DNS: names map to fixed addresses.

    Names not in the table raise ``socket.gaierror`` (unresolvable), like a name with no records.
    """

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = dict(table or {})

    def __call__(self, host: str, port: int) -> list[str]:
        import ipaddress
        import socket

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
        import ipaddress
        import socket

        addresses = self.resolver(host, port)
        if not all(ipaddress.ip_address(a).is_loopback for a in addresses):
            raise socket.gaierror(socket.EAI_NONAME, f"tests connect to 127.0.0.1 only, not {host}")
        return addresses


def _migrated_app(database_url: str, resolver: StaticResolver, overrides: dict[str, Any]):
    from flask_migrate import upgrade

    from app.clock import utcnow as _utcnow
    from app.factory import create_app

    clock = overrides.pop("_clock", _utcnow)

    config = {
        "BRIDGE_ENV": "development",
        "BRIDGE_API_TOKENS": API_TOKEN,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        **overrides,
    }
    fresh_sqlite = (
        database_url.startswith("sqlite:///")
        and not Path(database_url.removeprefix("sqlite:///")).exists()
    )
    if fresh_sqlite:
        # Copying a file migrated once per test session is much cheaper than migrating each time.
        shutil.copyfile(_sqlite_template(), database_url.removeprefix("sqlite:///"))
    app = create_app(
        config, resolver=resolver, clock=clock, connect_resolver=LoopbackOnly(resolver)
    )
    if not fresh_sqlite:
        with app.app_context():
            upgrade()
    return app


_TEMPLATE: dict[str, Path] = {}


def _sqlite_template() -> Path:
    """A SQLite database migrated with the real migrations, once per test session."""
    if "path" not in _TEMPLATE:
        import tempfile

        from flask_migrate import upgrade

        from app.db import db
        from app.factory import create_app

        path = Path(tempfile.mkdtemp(prefix="mi-bridge-template-")) / "template.db"
        app = create_app(
            {"BRIDGE_ENV": "development", "DATABASE_URL": f"sqlite:///{path}"},
            resolver=StaticResolver(),
        )
        with app.app_context():
            upgrade()
            db.engine.dispose()
        _TEMPLATE["path"] = path
    return _TEMPLATE["path"]


@pytest.fixture
def resolver() -> StaticResolver:
    """The address guard's resolver for the ``app`` fixture; add names with ``resolver.table``."""
    return StaticResolver({"hooks.example.test": ["93.184.216.34"]})


@pytest.fixture
def app_factory(tmp_path, resolver):
    """``app_factory(**overrides)``: a migrated app on its own SQLite file (same file per test)."""

    def make(**overrides: Any):
        url = overrides.pop("DATABASE_URL", f"sqlite:///{tmp_path}/bridge.db")
        return _migrated_app(url, resolver, overrides)

    return make


@pytest.fixture
def app(app_factory):
    """A migrated development app on SQLite, token ``API_TOKEN``, hosts resolved by ``resolver``."""
    return app_factory()


@pytest.fixture
def client(app):
    """Flask's test client of ``app``."""
    return app.test_client()


@pytest.fixture
def auth_headers() -> dict[str, str]:
    """Headers carrying the test API token."""
    return {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[tuple[str, str]]:
    """A migrated PostgreSQL template database for this test session: (admin URL, name)."""
    from tests import dbtools

    admin_url = dbtools.postgres_admin_url()
    name = dbtools.create_database(admin_url)
    try:
        template_app = _migrated_app(dbtools.with_database(admin_url, name), StaticResolver(), {})
        with template_app.app_context():
            from app.db import db

            db.engine.dispose()  # a template database must have no open connections
        yield admin_url, name
    finally:
        dbtools.drop_database(admin_url, name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def door_app(request):
    """``app`` on SQLite, then ``pg_app``: for tests that must hold on both databases."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


@pytest.fixture
def door_client(door_app):
    return door_app.test_client()


@pytest.fixture
def pg_app(app_factory, postgres_url):
    """An in-process app on the test's PostgreSQL database (index API, private URLs allowed for
    the receiver on 127.0.0.1); its pooled connections are closed before the database is dropped."""
    from app.db import db

    app = app_factory(
        DATABASE_URL=postgres_url, MI_DEFAULT_API="index", BRIDGE_ALLOW_PRIVATE_URLS="true"
    )
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def postgres_url(postgres_template) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test (copied from the template)."""
    from tests import dbtools

    admin_url, template = postgres_template
    name = dbtools.create_database(admin_url, template=template)
    try:
        yield dbtools.with_database(admin_url, name)
    finally:
        dbtools.drop_database(admin_url, name)


# --- the bridge against the simulator, driven tick by tick ----------------------------------------


class FakeClock:
    """The scheduling clock of the app under test: stands still until ``advance`` moves it.

    Wire timestamps (signatures) never use it: they always come from the real clock.
    """

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.now = datetime.now(UTC)

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


class Bridge:
    """An app wired to the ``simulator`` fixture, a fake clock and a worker runtime (one per test)."""

    def __init__(self, app, clock: FakeClock, simulator, control: SimControl) -> None:
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
        response = self.client.post(
            "/api/v1/watches", json=body, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert response.status_code == 201, response.json
        return response.json

    def watch(self, watch_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"/api/v1/watches/{watch_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        assert response.status_code == 200
        return response.json

    def set_status(self, asset_id: str, status: str, **extra: Any) -> None:
        response = self.control.put(f"/assets/ws/1/{asset_id}", json={"status": status, **extra})
        assert response.status_code in (200, 201), response.text

    def fault(self, **spec: Any) -> None:
        response = self.control.post("/faults", json=spec)
        assert response.status_code == 201, response.text

    def tick(self, advance: float = 0.0):
        """Move the clock by ``advance`` seconds, then run one poll tick; returns its report."""
        from app.worker.polling import poll_once

        self.clock.advance(advance)
        return poll_once(self.runtime)

    def upstream_requests(self) -> int:
        return self.control.get("/stats").json()["requests"]

    def events(self, watch_id: str | None = None) -> list[dict[str, Any]]:
        params = {"limit": 500, **({"watch_id": watch_id} if watch_id else {})}
        response = self.client.get(
            "/api/v1/events", query_string=params, headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        return response.json["items"]

    def db(self):
        """An app context whose ``db.session`` reads the bridge's database."""
        return self.app.app_context()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bridge_overrides() -> dict[str, Any]:
    """Extra configuration for the ``bridge`` fixture (override this fixture in a test module)."""
    return {}


@pytest.fixture
def bridge(app_factory, clock, simulator, sim_control, bridge_overrides) -> Iterator[Bridge]:
    """The bridge on SQLite, polling the simulator (1 s base interval, 8 s cap), tick by tick."""
    bridge = _tick_bridge(app_factory, clock, simulator, sim_control, **bridge_overrides)
    yield bridge
    bridge.runtime.close()


@pytest.fixture
def pg_bridge(app_factory, clock, simulator, sim_control, postgres_url) -> Iterator[Bridge]:
    """``bridge`` on the test's PostgreSQL database."""
    from app.db import db

    bridge = _tick_bridge(app_factory, clock, simulator, sim_control, DATABASE_URL=postgres_url)
    yield bridge
    bridge.runtime.close()
    with bridge.app.app_context():
        db.engine.dispose()


def _tick_bridge(app_factory, clock, simulator, sim_control, **overrides: Any) -> Bridge:
    app = app_factory(
        MI_API_URL=simulator.url,
        NCP_ACCESS_KEY=TEST_ACCESS_KEY,
        NCP_SECRET_KEY=TEST_SECRET_KEY,
        BRIDGE_POLL_INTERVAL="1",
        BRIDGE_POLL_MAX_INTERVAL="8",
        BRIDGE_LEASE_SECONDS="5",
        MI_DEFAULT_API="index",
        _clock=clock,
        **overrides,
    )
    return Bridge(app, clock, simulator, sim_control)


@pytest.fixture
def receiver():
    """A real webhook receiver on 127.0.0.1 (``tests/receiver.py``)."""
    from tests.receiver import Receiver

    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def deliver(bridge):
    """``deliver(advance=0)``: move the bridge's clock, then run one delivery tick."""
    from app.worker.delivery import deliver_once

    def tick(advance: float = 0.0):
        bridge.clock.advance(advance)
        return deliver_once(bridge.runtime)

    return tick


@pytest.fixture
def fake_slack():
    """A started fake Slack on 127.0.0.1 (``tests/fake_slack.py``): token ``tests.fake_slack.TOKEN``,
    channel "general" = C0GENERAL; stopped after the test."""
    from tests.fake_slack import FakeSlack

    fake = FakeSlack().start()
    yield fake
    fake.stop()
