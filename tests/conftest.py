"""The fixtures of the test suite. Each is declared here and built by ``tests/fixtures.py`` (import
constants, builders and clients from there: nothing imports from conftest).

The simulator: ``simulator`` (a started SimulatorServer, auto-create off, keys TEST_ACCESS_KEY /
TEST_SECRET_KEY), ``sim_control`` (the ``/_sim`` control API), ``sim_upstream`` (signed requests to
the simulated upstream), ``signed_client_factory`` (more of those, e.g. one per thread),
``sim_client`` (the project's MediaIntelligenceClient pointed at it) and ``wait_until`` (wait for a
condition with a deadline instead of sleeping).

The app: ``app``/``client`` (migrated SQLite, token ``API_TOKEN``), ``app_factory`` (more of them,
with configuration overrides or a ``clock``), ``clocked_app`` (on the ``clock`` fixture),
``pg_app``/``postgres_url`` (PostgreSQL), ``door_app``/``door_client`` (SQLite, then PostgreSQL),
``resolver``, ``auth_headers``, ``csrf`` (``client`` signed in to the dashboard).

The bridge: ``bridge``/``pg_bridge`` (the app polling the simulator tick by tick on a ``clock``,
extra configuration from ``bridge_overrides``), ``any_bridge`` (SQLite, then PostgreSQL),
``deliver``, ``receiver``, ``fake_slack``. The browser tests' ``browser`` (headless Chromium).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.simulator import SimConfig, SimulatorServer, SimulatorState
from app.upstream.client import MediaIntelligenceClient
from tests import fixtures
from tests.fixtures import (
    API_TOKEN,
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    TICK_TIMINGS,
    Bridge,
    FakeClock,
    SignedClient,
    SimControl,
    StaticResolver,
    build_app,
    dispose,
    simulator_config,
)


def pytest_configure(config: pytest.Config) -> None:
    """Give Ctrl-C back to the suite and every process it starts.

    A shell without job control starts a background job (``scripts/test &`` in a script, some CI
    runners) with SIGINT ignored, and an ignored signal stays ignored across ``exec``: every
    ``mi-bridge`` the tests start would then ignore the SIGINT that the Ctrl-C tests send, and
    those tests would wait in vain (issue 20, item 7). A Python-level handler is reset to the
    default on ``exec``, so installing Python's own handler here restores it for the children too.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _isolated_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own configuration out of every test (the test database URL stays)."""
    for name in fixtures.developer_configuration():
        monkeypatch.delenv(name)


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """``wait_until(predicate, timeout=5.0, message="")`` (``tests.fixtures.wait_until``)."""
    return fixtures.wait_until


# --- the simulator -------------------------------------------------------------------------------


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """A started simulator that does not auto-create assets; stopped after the test."""
    state = SimulatorState(SimConfig(auto_create=False))
    server = SimulatorServer("127.0.0.1", 0, state, TEST_ACCESS_KEY, TEST_SECRET_KEY)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sim_control(simulator: SimulatorServer) -> Iterator[SimControl]:
    """A control-API client of the ``simulator`` fixture."""
    control = SimControl(simulator.url)
    yield control
    control.close()


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


@pytest.fixture
def resolver() -> StaticResolver:
    """The address guard's resolver for the ``app`` fixture; add names with ``resolver.table``."""
    return StaticResolver({"hooks.example.test": ["93.184.216.34"]})


@pytest.fixture
def clock() -> FakeClock:
    """A scheduling clock that stands still until ``advance`` moves it (``tests.fixtures``)."""
    return FakeClock()


@pytest.fixture
def app_factory(tmp_path, resolver):
    """``app_factory(clock=None, **config)``: a migrated app (``tests.fixtures.build_app``) on the
    test's SQLite file ``bridge.db`` unless ``DATABASE_URL`` says otherwise."""

    def make(clock: Callable[[], Any] | None = None, **config: Any):
        url = config.pop("DATABASE_URL", f"sqlite:///{tmp_path}/bridge.db")
        return build_app(url, resolver=resolver, clock=clock, **config)

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
def clocked_app(app_factory, tmp_path, clock):
    """An app on its own SQLite file (``clocked.db``) whose scheduling clock is ``clock``."""
    return app_factory(clock=clock, DATABASE_URL=f"sqlite:///{tmp_path}/clocked.db")


@pytest.fixture
def csrf(client) -> str:
    """Signs ``client`` in through the dashboard's form; returns a CSRF token of its session."""
    from tests.dashboardtools import sign_in

    return sign_in(client)


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
        # A template database must have no open connections.
        dispose(build_app(dbtools.with_database(admin_url, name)))
        yield admin_url, name
    finally:
        dbtools.drop_database(admin_url, name)


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


@pytest.fixture
def pg_app(app_factory, postgres_url):
    """An in-process app on the test's PostgreSQL database (index API, private URLs allowed for
    the receiver on 127.0.0.1); its pooled connections are closed before the database is dropped."""
    app = app_factory(
        DATABASE_URL=postgres_url, MI_DEFAULT_API="index", BRIDGE_ALLOW_PRIVATE_URLS="true"
    )
    yield app
    dispose(app)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def door_app(request):
    """``app`` on SQLite, then ``pg_app``: for tests that must hold on both databases."""
    return request.getfixturevalue("app" if request.param == "sqlite" else "pg_app")


@pytest.fixture
def door_client(door_app):
    """Flask's test client of ``door_app``."""
    return door_app.test_client()


# --- the bridge against the simulator, driven tick by tick ----------------------------------------


@pytest.fixture
def bridge_overrides() -> dict[str, Any]:
    """Extra configuration for the ``bridge`` fixture (override this fixture in a test module)."""
    return {}


@pytest.fixture
def bridge(app_factory, clock, simulator, sim_control, bridge_overrides) -> Iterator[Bridge]:
    """The bridge on SQLite, polling the simulator (1 s base interval, 8 s cap), tick by tick."""
    app = app_factory(
        clock=clock, **simulator_config(simulator.url), **{**TICK_TIMINGS, **bridge_overrides}
    )
    bridge = Bridge(app, clock, simulator, sim_control)
    yield bridge
    bridge.runtime.close()


@pytest.fixture
def pg_bridge(
    app_factory, clock, simulator, sim_control, postgres_url, bridge_overrides
) -> Iterator[Bridge]:
    """``bridge`` on the test's PostgreSQL database (with the same ``bridge_overrides``)."""
    app = app_factory(
        clock=clock,
        DATABASE_URL=postgres_url,
        **simulator_config(simulator.url),
        **{**TICK_TIMINGS, **bridge_overrides},
    )
    bridge = Bridge(app, clock, simulator, sim_control)
    yield bridge
    bridge.runtime.close()
    dispose(bridge.app)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_bridge(request) -> Bridge:
    """``bridge`` on SQLite, then ``pg_bridge``; ``.database`` names which."""
    bridge = request.getfixturevalue("bridge" if request.param == "sqlite" else "pg_bridge")
    bridge.database = request.param
    return bridge


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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (``tests/browser.py``), one per test module."""
    from playwright.sync_api import sync_playwright

    from tests.browser import launch_chromium

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


# --- the dashboard in a browser, with a worker ------------------------------------------------------


@pytest.fixture
def bridge_app(app_factory, simulator):
    """The bridge polling the simulator on short timings, allowed to reach the local receiver."""
    return app_factory(
        MI_API_URL=simulator.url,
        NCP_ACCESS_KEY=TEST_ACCESS_KEY,
        NCP_SECRET_KEY=TEST_SECRET_KEY,
        MI_DEFAULT_API="index",
        BRIDGE_POLL_INTERVAL="0.2",
        BRIDGE_POLL_MAX_INTERVAL="1",
        BRIDGE_RETRY_SCHEDULE="0.5",
        BRIDGE_LEASE_SECONDS="5",
        BRIDGE_ALLOW_PRIVATE_URLS="true",
    )


@pytest.fixture
def served(bridge_app):
    """``bridge_app`` served on 127.0.0.1 (``tests.browser.LiveServer``) with a worker thread."""
    from tests.browser import LiveServer, WorkerThread

    server = LiveServer(bridge_app).start()
    worker = WorkerThread(bridge_app).start()
    yield server
    worker.stop()
    server.stop()


@pytest.fixture
def sim_advance(sim_control):
    """``sim_advance(seconds)``: move the simulator's schedule clock forward (for good)."""

    def advance(seconds: float) -> None:
        response = sim_control.post("/clock/advance", json={"seconds": seconds})
        assert response.status_code == 200, response.text

    return advance
