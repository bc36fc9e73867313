"""Delivery errors people can read: a short sentence with the detail one click away, honest attempt
labels, and attempt counts that survive a manual retry.

The exceptions are real: produced by real sockets on 127.0.0.1 (a closed port, a server that never
answers, one that answers garbage or plain HTTP to TLS, one whose answer never ends), never built
by hand.
"""

from __future__ import annotations

import html
import re
import socket
import socketserver
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests

from app.notify import slack
from app.notify.context import NotifierContext
from app.notify.results import EventSnapshot, TargetSnapshot
from app.outbound import bounded
from app.outbound.errors import describe_exception, scrub
from app.outbound.http import guarded_session, operator_session
from tests.dashboardtools import sign_in
from tests.fake_slack import TOKEN
from tests.fixtures import AUTH, StaticResolver
from tests.hostile_servers import HugeAnswerReceiver
from tests.receiver import Answer
from tests.servers import ServerThread
from tests.test_delivery_webhooks import complete, delivery_of, watch_with_receiver

SECRET_PATH = "/services/T000/B000/SECRETSECRET"


@pytest.fixture
def bridge_overrides():
    return {"BRIDGE_ALLOW_PRIVATE_URLS": "true", "BRIDGE_RETRY_SCHEDULE": "1,2"}


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then closed): connecting is refused."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose server accepts connections (the kernel's backlog does) and never answers."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield sock.getsockname()[1]
    sock.close()


class _Garbage(ServerThread):
    """Reads a little of each request, answers bytes that are not HTTP, closes."""

    def __init__(self) -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.recv(65536)
                self.request.sendall(b"SSH-2.0-OpenSSH_9.6 not HTTP at all\r\n\r\n")

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        super().__init__(server)


@pytest.fixture
def garbage_server() -> Iterator[str]:
    server = _Garbage()
    server.start()
    yield server.url
    server.stop()


def _post_error(session: requests.Session, url: str, timeout: float = 2.0) -> BaseException:
    with pytest.raises(requests.RequestException) as caught:
        session.post(url, data=b"{}", timeout=timeout)
    return caught.value


def _sent(url: str, seconds: float = 2.0, session: requests.Session | None = None):
    with pytest.raises(bounded.SendFailed) as caught:
        bounded.post(session or operator_session(), url, data=b"{}", headers={}, seconds=seconds)
    return caught.value


# --- describe_exception on real failures ----------------------------------------------------------


def test_a_refused_connection_names_the_address_and_keeps_the_errno(closed_port):
    url = f"http://127.0.0.1:{closed_port}/hook"
    short, detail = describe_exception(_post_error(operator_session(), url), url)
    assert short == f"connection refused (127.0.0.1:{closed_port})"
    assert "[Errno 111] Connection refused" in detail
    failed = _sent(url)
    assert (failed.kind, str(failed)) == ("transport", short)
    assert "[Errno 111]" in failed.detail


def test_the_guarded_session_keeps_the_cause_of_a_refused_connection(closed_port):
    session = guarded_session(StaticResolver({"hooks.example.test": ["127.0.0.1"]}), True)
    failed = _sent(f"http://hooks.example.test:{closed_port}/hook", session=session)
    assert str(failed) == f"connection refused (hooks.example.test:{closed_port})"
    assert "[Errno 111]" in failed.detail


def test_a_server_that_never_answers_times_out(silent_server):
    url = f"http://127.0.0.1:{silent_server}/hook"
    short, detail = describe_exception(_post_error(operator_session(), url, timeout=0.3), url)
    assert short == f"timed out after 0.3 s (127.0.0.1:{silent_server})"
    assert "Read timed out" in detail
    failed = _sent(url, seconds=0.5)
    assert str(failed) == f"timed out after 0.5 s (127.0.0.1:{silent_server})"


def test_an_answer_that_is_not_http(garbage_server):
    failed = _sent(garbage_server + "/hook")
    assert str(failed) == f"answered something that is not HTTP ({urlsplit(garbage_server).netloc})"
    assert "SSH-2.0" in failed.detail


def test_tls_spoken_to_a_plain_http_server_is_a_failed_handshake(receiver):
    address = urlsplit(receiver.url).netloc
    failed = _sent(f"https://{address}/hook")
    assert str(failed) == f"TLS handshake failed: wrong version number ({address})"
    assert "WRONG_VERSION_NUMBER" in failed.detail


def test_a_name_that_does_not_resolve():
    session = guarded_session(StaticResolver(), True)
    failed = _sent("https://nowhere.example.test/hook", session=session)
    assert str(failed) == "name not resolved (nowhere.example.test)"
    assert "Name or service not known" in failed.detail


def test_an_address_the_guard_refuses_is_named_without_connecting():
    session = guarded_session(StaticResolver({"inside.example.test": ["10.0.0.1"]}), False)
    failed = _sent("https://inside.example.test/hook", session=session)
    assert failed.kind == "refused"
    assert (
        str(failed)
        == "address not allowed: inside.example.test resolves to 10.0.0.1, a private address"
    )
    literal = _sent("http://10.0.0.1:8080/hook", session=session)
    assert str(literal) == "address not allowed: 10.0.0.1 is a private address"


def test_neither_text_holds_the_path_or_query_of_a_secret_url(closed_port):
    url = f"http://127.0.0.1:{closed_port}{SECRET_PATH}?token=xoxb-123-456"
    failed = _sent(url)
    for text in (str(failed), failed.detail):
        assert "SECRET" not in text
        assert "token" not in text
        assert "xoxb" not in text
        assert "services" not in text
    assert "with url: [hidden]" in failed.detail
    assert scrub(f"see {url} or https://u:p@hooks.example.test/x?y=1") == (
        f"see http://127.0.0.1:{closed_port} or https://hooks.example.test"
    )


def test_a_slack_answer_that_never_ends_is_too_large():
    huge = HugeAnswerReceiver().start()
    try:
        client = slack.make_client(TOKEN, huge.url + "/api/")
        context = NotifierContext(http=operator_session(), slack=client)
        target = TargetSnapshot("tgt_1", "slack", None, "C0GENERAL", None, False)
        result = slack.send(context, _event(), target)
    finally:
        huge.stop()
    assert result.outcome.value == "retry"
    address = urlsplit(huge.url).netloc
    assert result.error == f"Slack API: response larger than {slack.ANSWER_LIMIT} bytes ({address})"
    assert "HTTP 200 OK" in result.error_detail


def _event() -> EventSnapshot:
    body = (
        '{"id": "evt_1", "type": "bridge.test", "timestamp": "2026-11-25T12:00:00Z", "data": {'
        '"watch": {"id": "wch_1", "labels": {}}, "asset": {"workspace": "ws", "project_id": "1",'
        ' "asset_id": "a1", "api": "video-assets"}, "analysis": {"status": null,'
        ' "previous_status": null, "index_id": null, "message": null}, "detection": {}}}'
    )
    return EventSnapshot("evt_1", "bridge.test", body, datetime.now(UTC))


# --- through the outbox, the API and the dashboard -------------------------------------------------


def test_a_refused_delivery_shows_the_short_error_and_keeps_the_detail(
    bridge, receiver, deliver, closed_port
):
    url = f"http://127.0.0.1:{closed_port}{SECRET_PATH}"
    watch = watch_with_receiver(bridge, receiver, targets=[{"type": "webhook", "url": url}])
    complete(bridge)
    deliver()
    delivery = delivery_of(bridge, watch["id"])
    [attempt] = delivery["attempts"]
    assert attempt["error"] == f"connection refused (127.0.0.1:{closed_port})"
    assert "[Errno 111] Connection refused" in attempt["error_detail"]
    assert (attempt["outcome"], attempt["final"]) == ("retry", False)
    assert delivery["last_error"] == attempt["error"]
    assert delivery["last_error_detail"] == attempt["error_detail"]
    assert "SECRET" not in str(delivery)


def test_the_attempt_that_kills_a_delivery_is_labelled_final(bridge, receiver, deliver):
    watch = watch_with_receiver(bridge, receiver)
    complete(bridge)
    receiver.default = Answer(500, body=b"down")
    for advance in (0, 1.2, 2.3):
        deliver(advance=advance)
    delivery = delivery_of(bridge, watch["id"])
    assert (delivery["state"], delivery["attempt_count"]) == ("dead", 3)
    attempts = delivery["attempts"]
    assert [a["outcome"] for a in attempts] == ["retry", "retry", "gave_up"]
    assert [a["final"] for a in attempts] == [False, False, True]
    assert {a["error"] for a in attempts} == {"answered HTTP 500"}
    assert attempts[-1]["error_detail"] == "HTTP 500 Internal Server Error"


def test_a_throttle_that_costs_an_attempt_is_not_labelled_throttled(bridge, receiver, deliver):
    watch = watch_with_receiver(bridge, receiver)
    complete(bridge)
    receiver.default = Answer(429, headers={"Retry-After": "1"})  # below the floor: it costs one
    deliver()
    [attempt] = delivery_of(bridge, watch["id"])["attempts"]
    assert attempt["outcome"] == "retry"
    assert attempt["error"] == "answered HTTP 429, retry after 1 s"
    assert attempt["error_detail"] == "HTTP 429 Too Many Requests; Retry-After: 1"


def test_a_manual_retry_keeps_counting_and_gets_the_whole_schedule_again(bridge, receiver, deliver):
    watch = watch_with_receiver(bridge, receiver)
    complete(bridge)
    receiver.default = Answer(500)
    for advance in (0, 1.2, 2.3):
        deliver(advance=advance)
    delivery = delivery_of(bridge, watch["id"])
    assert (delivery["state"], delivery["attempt_count"]) == ("dead", 3)

    _retry(bridge, delivery["id"])
    assert delivery_of(bridge, watch["id"])["attempt_count"] == 3  # not back to 0
    deliver()
    delivery = delivery_of(bridge, watch["id"])
    assert (delivery["state"], delivery["attempt_count"]) == ("pending", 4)
    assert deliver(advance=0.5).claimed == 0  # the schedule's first delay (1 s) again
    deliver(advance=0.7)
    delivery = delivery_of(bridge, watch["id"])
    assert (delivery["state"], delivery["attempt_count"]) == ("pending", 5)
    deliver(advance=2.3)
    delivery = delivery_of(bridge, watch["id"])
    assert (delivery["state"], delivery["attempt_count"]) == ("dead", 6)
    outcomes = [a["outcome"] for a in delivery["attempts"]]
    assert outcomes == ["retry", "retry", "gave_up"] * 2

    _retry(bridge, delivery["id"])
    receiver.default = Answer(200)
    deliver()
    delivery = delivery_of(bridge, watch["id"])
    assert (delivery["state"], delivery["attempt_count"]) == ("succeeded", 7)
    assert delivery["attempts"][-1]["final"] is True
    assert len(receiver.requests) == 7


def _retry(bridge, delivery_id: str) -> None:
    response = bridge.client.post(f"/api/v1/deliveries/{delivery_id}/retry", headers=AUTH)
    assert response.status_code == 202, response.json


def test_the_watch_page_shows_the_short_error_with_the_detail_in_a_disclosure(
    bridge, receiver, deliver, closed_port
):
    url = f"http://127.0.0.1:{closed_port}/hook"
    watch = watch_with_receiver(bridge, receiver, targets=[{"type": "webhook", "url": url}])
    complete(bridge)
    for advance in (0, 1.2, 2.3):
        deliver(advance=advance)
    assert delivery_of(bridge, watch["id"])["state"] == "dead"
    sign_in(bridge.client)
    page = bridge.client.get(f"/watches/{watch['id']}").get_data(as_text=True)
    short = f"connection refused (127.0.0.1:{closed_port})"
    errors = [html.unescape(text) for text in ERROR.findall(page)]
    assert errors == [short] * 4  # the delivery's last error, then each of its three attempts
    details = [html.unescape(text) for text in DETAIL.findall(page)]
    assert len(details) == 4
    assert all("[Errno 111] Connection refused" in text for text in details)
    labels = OUTCOME.findall(page)
    assert labels == [
        ("retry", "failed, retry scheduled"),
        ("retry", "failed, retry scheduled"),
        ("gave_up", "failed, gave up"),
    ]

    attention = bridge.client.get("/deliveries").get_data(as_text=True)
    assert OUTCOME.findall(attention) == [("gave_up", "failed, gave up")]
    assert [html.unescape(text) for text in ERROR.findall(attention)] == [short]
    assert len(DETAIL.findall(attention)) == 1


ERROR = re.compile(r'<span data-field="error">([^<]*)</span>')
DETAIL = re.compile(
    r'<details class="error-detail" data-field="error-detail"><summary[^>]*>Details</summary>\s*'
    r'<p class="small muted">([^<]*)</p></details>'
)
OUTCOME = re.compile(r'<span data-field="attempt-outcome" data-outcome="(\w+)">([^<]*)</span>')


# --- Slack's own errors -----------------------------------------------------------------------------


def test_a_slack_api_error_is_named_as_slack_says_it(
    app_factory, clock, simulator, sim_control, fake_slack
):
    from app.worker.delivery import deliver_once
    from tests.fixtures import TICK_TIMINGS, Bridge, simulator_config

    app = app_factory(
        clock=clock, **simulator_config(simulator.url), **TICK_TIMINGS,
        SLACK_API_URL=fake_slack.api_url, SLACK_BOT_TOKEN=TOKEN, BRIDGE_ALLOW_PRIVATE_URLS="true",
    )  # fmt: skip
    bridge = Bridge(app, clock, simulator, sim_control)
    try:
        bridge.set_status("a1", "ANALYZE_COMPLETED", index_id=1)
        watch = bridge.register("a1", targets=[{"type": "slack", "channel": "no-such-channel"}])
        bridge.tick()
        deliver_once(bridge.runtime)
        [delivery] = bridge.watch(watch["id"])["deliveries"]
    finally:
        bridge.runtime.close()
    [attempt] = delivery["attempts"]
    assert (delivery["state"], attempt["outcome"], attempt["final"]) == (
        "failed", "disable_target", True,
    )  # fmt: skip
    assert attempt["error"] == "Slack: channel_not_found"
    assert "channel_not_found" in attempt["error_detail"]
    assert TOKEN not in attempt["error_detail"]
