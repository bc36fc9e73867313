"""Property-based API tests: schemathesis generates requests from ``/openapi.json`` and checks answers.

Every operation of the document is exercised with a bearer token, seeded (``derandomize``) and
bounded (``MAX_EXAMPLES`` per operation, valid and invalid data alike, and one time budget per
operation). Each answer must not be a 5xx and must conform to the document: a documented status
code, content type, body schema and headers; invalid data must be refused with a 4xx.

Nothing leaves this machine: generated webhook hosts resolve through the ``resolver`` fixture
(unknown names are unresolvable, which registration accepts), and notifications (``POST
.../test``) connect through the conftest's loopback-only resolver, so a generated public address or
name fails to resolve instead of being contacted. ``test_notifications_of_the_app_fixture_stay_on_loopback``
proves that wiring.
"""

from __future__ import annotations

import base64
import ipaddress
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.api.openapi import build_document
from tests.fixtures import API_TOKEN

pytestmark = pytest.mark.slow

#: Examples per operation (valid and invalid requests together).
MAX_EXAMPLES = 100
#: The bearer token goes in through the document's security scheme, so negative cases never "break"
#: it (a missing or mangled token is ``test_api_auth``-style territory, covered in
#: test_hostile_input). Unknown query parameters are ignored by design, so none are generated.
CONFIG = {
    "auth": {"openapi": {"bearer": {"bearer": API_TOKEN}}},
    "generation": {"allow-extra-parameters": False},
}
#: Resolves to a public address (``resolver`` fixture), so notifications to it never connect.
DEFAULT_TARGET = {
    "type": "webhook",
    "url": "https://hooks.example.test/in",
    "secret": "whsec_" + base64.b64encode(bytes(range(32))).decode(),
}
#: Registration checks what JSON Schema cannot say (a URL's scheme and resolved address, a
#: secret's decoded length), so a schema-valid registration may rightly be 422; so may an endpoint
#: (the same target rules), a change of its URL (checked before the endpoint is looked up), and a
#: preview (the same target rules, and a body template must render JSON).
EXCLUDED = {
    ("POST", "/api/v1/watches"): [positive_data_acceptance],
    ("POST", "/api/v1/endpoints"): [positive_data_acceptance],
    ("PATCH", "/api/v1/endpoints/{ref}"): [positive_data_acceptance],
    ("POST", "/api/v1/preview"): [positive_data_acceptance],
}
METHODS = ("get", "put", "post", "delete", "patch")
OPERATIONS = [
    (method.upper(), path)
    for path, item in build_document()["paths"].items()
    for method in item
    if method in METHODS
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_as_documented(app_factory, method, path):
    # The document makes ``targets`` optional (BRIDGE_DEFAULT_TARGETS may supply them): set them.
    app = app_factory(BRIDGE_DEFAULT_TARGETS=json.dumps([DEFAULT_TARGET]))
    _worker_seen_now(app)  # /readyz answers 200 (its 503 without a worker is tested elsewhere)
    app.wsgi_app = _AddressPerRequest(app.wsgi_app)
    config = SchemathesisConfig.from_dict(CONFIG)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)
    operation = schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,  # bounded by the examples and the timeout above, not per example
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        case.call_and_validate(excluded_checks=EXCLUDED.get((method, path), []))

    check()


class _AddressPerRequest:
    """Each request from another client address: schemathesis checks that a wrong or missing token
    is refused for every example, and ten of those from one address would get every later request
    throttled (``429``, documented), leaving the rest of the examples untested. Throttling has its
    own tests (``tests/test_front_door.py``)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app
        self.requests = 0

    def __call__(self, environ, start_response):
        self.requests += 1
        environ["REMOTE_ADDR"] = str(ipaddress.IPv4Address("10.0.0.0") + self.requests)
        return self.wsgi_app(environ, start_response)


def _worker_seen_now(app):
    from datetime import UTC, datetime

    from app.db import db
    from app.models import WorkerHeartbeat

    with app.app_context():
        now = datetime.now(UTC)
        beat = WorkerHeartbeat(worker_id="schemathesis", hostname="test-host", pid=1)
        beat.started_at = beat.last_seen_at = now
        db.session.add(beat)
        db.session.commit()


def test_notifications_of_the_app_fixture_stay_on_loopback(app, resolver):
    """The ``app`` fixture's notification session refuses to resolve anything but loopback."""
    import requests

    from app.services import services

    resolver.table["public.example.test"] = ["93.184.216.34"]
    with app.app_context():
        session = services().notifier.http
    for url in (
        "http://public.example.test/hook",
        "http://93.184.216.34/hook",
        "http://unknown-name.example.test/hook",
    ):
        with pytest.raises(requests.ConnectionError, match=r"resolve|Name or service"):
            session.post(url, data=b"{}", timeout=2)
