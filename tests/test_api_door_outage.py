"""While the database is unreachable the API answers ``503`` problem+json with ``Retry-After`` (not
``500``), the dashboard ``503`` too, ``/readyz`` keeps its contract, and all recover when it returns.

PostgreSQL goes away behind a TCP proxy the test cuts (``tests/tcpproxy.py``), or was never there
(a port on 127.0.0.1 that refuses connections); SQLite loses its folder.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from app.api.openapi import build_document
from tests.dashboardtools import sign_in
from tests.fixtures import build_app
from tests.tcpproxy import TcpProxy
from tests.watchtools import assert_problem, watch_body

WATCHES = "/api/v1/watches"
SOME_WATCH = f"{WATCHES}/wch_01JD3Q00000000000000000000"
#: Every operation of the API, with a body where it takes one.
API_CALLS = [
    ("GET", WATCHES, None),
    ("POST", WATCHES, watch_body()),
    ("GET", SOME_WATCH, None),
    ("DELETE", SOME_WATCH, None),
    ("POST", f"{SOME_WATCH}/test", None),
    ("GET", "/api/v1/events?after=1", None),
    ("GET", "/api/v1/deliveries", None),
    ("POST", "/api/v1/deliveries/dlv_01JD3Q00000000000000000000/retry", None),
]


def assert_unavailable(response) -> None:
    body = assert_problem(response, 503)
    assert "database" in body["detail"]
    assert int(response.headers["Retry-After"]) > 0


def assert_every_api_call_is_unavailable(client, auth_headers) -> None:
    for method, url, body in API_CALLS:
        response = client.open(url, method=method, headers=auth_headers, json=body)
        assert response.status_code == 503, f"{method} {url}"
        assert_unavailable(response)
    # the token is still judged first, and without the database
    assert client.get(WATCHES).status_code == 401


def assert_readyz_unreachable(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"
    assert client.get("/healthz").status_code == 200


@pytest.fixture
def proxied(postgres_url, resolver) -> Iterator[tuple]:
    """(app, proxy): a migrated app whose PostgreSQL connections all pass through ``proxy``."""
    from app.db import db

    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    netloc = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    url = urlunsplit(parts._replace(netloc=f"{netloc}:{proxy.port}"))
    app = build_app(url, resolver=resolver)
    try:
        yield app, proxy
    finally:
        with app.app_context():
            db.engine.dispose()
        proxy.close()


@pytest.mark.postgres
def test_a_postgres_outage_is_503_and_the_api_recovers_when_it_returns(proxied, auth_headers):
    app, proxy = proxied
    client = app.test_client()
    created = client.post(WATCHES, json=watch_body(), headers=auth_headers)
    assert created.status_code == 201
    watch_url = f"{WATCHES}/{created.get_json()['id']}"

    proxy.cut()
    assert_every_api_call_is_unavailable(client, auth_headers)
    assert_unavailable(client.get(watch_url, headers=auth_headers))
    assert_unavailable(client.get("/metrics", headers=auth_headers))
    assert_readyz_unreachable(client)

    proxy.restore()
    assert client.get(watch_url, headers=auth_headers).status_code == 200
    assert client.post(WATCHES, json=watch_body(), headers=auth_headers).status_code == 201


@pytest.mark.postgres
def test_the_dashboard_answers_503_during_a_postgres_outage(proxied):
    app, proxy = proxied
    client = app.test_client()
    sign_in(client)
    proxy.cut()
    for url in ("/", "/watches/wch_01JD3Q00000000000000000000", "/deliveries"):
        response = client.get(url)
        assert response.status_code == 503, url
        assert int(response.headers["Retry-After"]) > 0
        assert "database is unavailable" in response.get_data(as_text=True)
    proxy.restore()
    assert client.get("/").status_code == 200


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 bound but not listening: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_a_postgres_that_was_never_there_is_503(refusing_port, resolver, auth_headers):
    url = f"postgresql://mi_bridge:mi_bridge@127.0.0.1:{refusing_port}/mi_bridge"
    app = build_app(url, resolver=resolver, migrate=False)
    client = app.test_client()
    assert_every_api_call_is_unavailable(client, auth_headers)
    assert_readyz_unreachable(client)


def test_a_sqlite_database_that_cannot_be_opened_is_503(tmp_path, resolver, auth_headers):
    folder = tmp_path / "data"
    app = build_app(f"sqlite:///{folder}/bridge.db", resolver=resolver)
    client = app.test_client()
    assert client.get(WATCHES, headers=auth_headers).status_code == 200

    from app.db import db

    with app.app_context():
        db.engine.dispose()  # as a restarted process would, open the path afresh
    folder.rename(tmp_path / "moved-away")
    folder.write_text("a file where the database folder was")
    assert_every_api_call_is_unavailable(client, auth_headers)
    assert_readyz_unreachable(client)


def test_the_document_lists_503_with_retry_after_for_every_api_operation():
    document = build_document()
    components = document["components"]
    unavailable = components["responses"]["ServiceUnavailable"]
    assert set(unavailable["headers"]) == {"Retry-After"}
    assert unavailable["content"]["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
    for path, item in document["paths"].items():
        if not path.startswith("/api/") or item.get("x-mi-bridge-status"):
            continue
        for method, operation in item.items():
            if method == "parameters" or operation.get("x-mi-bridge-status"):
                continue
            answer = operation["responses"]["503"]
            assert answer["$ref"].endswith("/ServiceUnavailable"), f"{method} {path}"
