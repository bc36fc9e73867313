"""The front door under attack: wrong tokens throttled per address (API, /metrics, dashboard sign-in)
and counted in the database by every process alike, sign-out that really ends a session, the
security headers every answer carries, and slow clients that cannot starve the real gunicorn."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from app.dashboard import SESSION_LIFETIME
from app.db import db
from app.models import AuthFailure, DashboardSession
from app.web import buffering
from app.web.gathering import HEAD_TOO_LARGE, READY, TOO_LARGE, WAIT, WITHHELD, Gathering, scan
from app.web.throttle import FRESH_FOR, MAX_FAILURES, RETENTION, WINDOW
from tests.dashboardtools import csrf_from, sign_in
from tests.fixtures import API_TOKEN, AUTH, dispose
from tests.processes import Processes, answers, bridge_env, free_port, run_db_upgrade

WATCHES = "/api/v1/watches"
GUESSER = "198.51.100.7"


@pytest.fixture
def door(app_factory, clock):
    """An app whose scheduling clock (the throttle's) is the fake ``clock``."""
    return app_factory(clock=clock)


def wrong(client, path: str = WATCHES, address: str = GUESSER):
    headers = {"Authorization": "Bearer not-the-token"}
    return client.get(path, headers=headers, environ_base={"REMOTE_ADDR": address})


def right(client, path: str = WATCHES, address: str = GUESSER):
    return client.get(path, headers=AUTH, environ_base={"REMOTE_ADDR": address})


# --- throttling wrong tokens -----------------------------------------------------------------------


@pytest.mark.parametrize("path", [WATCHES, "/metrics"])
def test_wrong_tokens_are_throttled_per_address_then_the_right_one_works_again(door, clock, path):
    client = door.test_client()
    for _ in range(MAX_FAILURES):
        assert wrong(client, path).status_code == 401
    throttled = wrong(client, path)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == str(int(WINDOW.total_seconds()))
    assert throttled.mimetype == "application/problem+json"
    assert "too many wrong tokens" in throttled.get_json()["detail"]
    # While throttled the right token is refused too: a 200 would tell a guesser it was right.
    assert right(client, path).status_code == 429
    # Another address is not concerned.
    assert right(client, path, address="203.0.113.9").status_code == 200
    clock.advance(WINDOW.total_seconds() - 1)
    assert int(right(client, path).headers["Retry-After"]) == 1
    clock.advance(1)  # 60 s after the last counted failure: the refused attempts did not count
    assert right(client, path).status_code == 200


def test_failures_spread_beyond_the_window_are_never_throttled(door, clock):
    client = door.test_client()
    for _ in range(3 * MAX_FAILURES):
        assert wrong(client).status_code == 401
        clock.advance(WINDOW.total_seconds())


def test_a_request_without_a_token_is_not_a_guess(door):
    client = door.test_client()
    for _ in range(2 * MAX_FAILURES):
        answer = client.get(WATCHES, environ_base={"REMOTE_ADDR": GUESSER})
        assert answer.status_code == 401
    assert right(client).status_code == 200


def test_an_ipv6_client_is_counted_per_64(door):
    client = door.test_client()
    for n in range(MAX_FAILURES):
        assert wrong(client, address=f"2001:db8:1:2::{n + 1:x}").status_code == 401
    assert wrong(client, address="2001:db8:1:2:ffff::1").status_code == 429
    assert right(client, address="2001:db8:1:3::1").status_code == 200


def test_dashboard_sign_in_is_throttled_with_a_page(door, clock):
    client = door.test_client()
    form = csrf_from(client.get("/login").get_data(as_text=True))
    for _ in range(MAX_FAILURES):
        answer = client.post("/login", data={"token": "guess", "csrf_token": form})
        assert answer.status_code == 401
    answer = client.post("/login", data={"token": API_TOKEN, "csrf_token": form})
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "60"
    assert "too many wrong tokens" in answer.get_data(as_text=True)
    clock.advance(WINDOW.total_seconds())
    answer = client.post("/login", data={"token": API_TOKEN, "csrf_token": form})
    assert answer.status_code == 302


def test_an_empty_sign_in_form_is_not_a_guess(door):
    client = door.test_client()
    form = csrf_from(client.get("/login").get_data(as_text=True))
    for _ in range(MAX_FAILURES + 1):
        assert client.post("/login", data={"token": "", "csrf_token": form}).status_code == 401
    sign_in(client)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_processes(request, app_factory, clock, tmp_path):
    """Two apps on one database, as two gunicorn processes are, on the fake clock."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/shared.db"
    else:
        url = request.getfixturevalue("postgres_url")
    apps = [app_factory(clock=clock, DATABASE_URL=url) for _ in range(2)]
    yield apps
    for app in apps:
        dispose(app)


def test_every_process_counts_into_one_budget_and_no_failure_is_lost(two_processes):
    first, second = two_processes

    def guess(n: int) -> int:
        return wrong(two_processes[n % 2].test_client()).status_code

    with ThreadPoolExecutor(8) as pool:  # concurrent failures, half of them in each process
        assert list(pool.map(guess, range(MAX_FAILURES))) == [401] * MAX_FAILURES
    with first.app_context():
        assert db.session.get(AuthFailure, GUESSER).failures == MAX_FAILURES
    assert wrong(second.test_client()).status_code == 429
    assert right(first.test_client()).status_code == 429


def test_a_right_token_is_judged_on_a_read_kept_for_a_second_a_wrong_one_never(
    two_processes, clock
):
    first, second = two_processes
    assert right(first.test_client()).status_code == 200  # first reads the (absent) row, keeps it
    for _ in range(MAX_FAILURES):
        assert wrong(second.test_client()).status_code == 401
    assert wrong(second.test_client()).status_code == 429
    # Throttled through second's counts: first's read is younger than FRESH_FOR, and answers.
    assert right(first.test_client()).status_code == 200
    # A wrong token is judged afresh (429, not counted), and that throttled read is kept.
    assert wrong(first.test_client()).status_code == 429
    assert right(first.test_client()).status_code == 429
    with first.app_context():
        assert db.session.get(AuthFailure, GUESSER).failures == MAX_FAILURES


def test_a_kept_read_answers_for_fresh_for_only(two_processes, clock):
    first, second = two_processes
    assert right(first.test_client()).status_code == 200
    for _ in range(MAX_FAILURES):
        assert wrong(second.test_client()).status_code == 401
    clock.advance(FRESH_FOR.total_seconds())
    assert right(first.test_client()).status_code == 429


def test_quiet_addresses_are_forgotten_when_a_new_one_fails(door, clock):
    client = door.test_client()
    wrong(client, address="198.51.100.1")
    clock.advance(RETENTION.total_seconds() + 1)
    wrong(client, address="198.51.100.2")
    with door.app_context():
        assert list(db.session.scalars(select(AuthFailure.client))) == ["198.51.100.2"]


# --- sessions ---------------------------------------------------------------------------------------


def test_signing_out_ends_the_session_for_a_copied_cookie_too(door):
    client = door.test_client()
    sign_in(client)
    cookie = client.get_cookie(door.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    copied = door.test_client()
    copied.set_cookie(door.config["SESSION_COOKIE_NAME"], cookie.value)
    assert copied.get("/").status_code == 200  # the copy works while the session lives
    token = csrf_from(client.get("/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    answer = copied.get("/")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login")


def test_a_session_ends_when_its_lifetime_is_over_whatever_the_cookie_says(door, clock):
    client = door.test_client()
    sign_in(client)
    clock.advance(SESSION_LIFETIME.total_seconds() - 1)
    assert client.get("/").status_code == 200
    clock.advance(2)
    assert client.get("/").status_code == 302


def test_a_sign_in_deletes_the_sessions_that_ended(door, clock):
    sign_in(door.test_client())
    clock.advance(SESSION_LIFETIME.total_seconds())
    sign_in(door.test_client())
    with door.app_context():
        assert db.session.scalar(select(func.count()).select_from(DashboardSession)) == 1


# --- security headers -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/healthz", WATCHES, "/docs", "/api/v1/nothing"])
def test_security_headers_on_every_answer(client, path):
    answer = client.get(path, headers=AUTH)
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert answer.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in answer.headers  # plain HTTP: no HSTS


def test_hsts_over_https_through_the_proxy(client):
    answer = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert answer.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


# --- slow clients -----------------------------------------------------------------------------------

POST_HEAD = b"POST /api/v1/watches HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
CHUNKED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "verdict"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", WAIT),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", READY),
        (b"\r\nGET /healthz HTTP/1.1\r\n\r\n", READY),
        (POST_HEAD + b"Content-Length: 5\r\n\r\nabc", WAIT),
        (POST_HEAD + b"Content-Length: 5\r\n\r\nabcde", READY),
        (POST_HEAD + b"Content-Length: five\r\n\r\n", READY),  # gunicorn answers 400
        (POST_HEAD + b"Content-Length: 65537\r\n\r\n", WITHHELD),
        (CHUNKED + b"3\r\nabc\r\n", WAIT),
        (CHUNKED + b"3\r\nabc\r\n0\r\n\r\n", READY),
        (CHUNKED + b"10001\r\n" + b"a" * 100, TOO_LARGE),
        (b"GET / HTTP/1.1\r\n" + b"X-Pad: 0123456789abcdef\r\n" * 1500, HEAD_TOO_LARGE),
    ],
)
def test_a_request_is_whole_once_its_head_and_body_are_in(data, verdict):
    assert scan(data) == verdict


def test_a_request_fed_a_byte_at_a_time_is_judged_as_at_once():
    body = b'{"workspace": "ws"}'
    for data in (
        POST_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body,
        CHUNKED + b"5\r\nabcde\r\n3;x=y\r\nfgh\r\n0\r\nTrailer: z\r\n\r\n",
    ):
        gathering = Gathering()
        verdicts = [gathering.feed(data[i : i + 1]) for i in range(len(data))]
        assert verdicts == [WAIT] * (len(data) - 1) + [READY]
        assert bytes(gathering.data) == data


def test_a_client_waiting_to_send_its_body_is_told_once_and_the_field_taken_out():
    head = POST_HEAD + b"Expect: 100-CONTINUE\r\nContent-Length: 2\r\n\r\n"
    gathering = Gathering(head)
    assert gathering.verdict == WAIT
    assert gathering.expects_continue
    assert gathering.feed(b"{}") == READY
    assert bytes(gathering.data) == POST_HEAD + b"Content-Length: 2\r\n\r\n{}"
    assert not Gathering(head.replace(b"HTTP/1.1", b"HTTP/1.0")).expects_continue


def test_a_chunked_trailer_section_cannot_grow_for_ever():
    gathering = Gathering(CHUNKED + b"0\r\n")
    while gathering.verdict == WAIT:
        gathering.feed(b"X-Trailer: 1\r\n")
    assert gathering.verdict == TOO_LARGE


def _slow_client(port: int, first_bytes: bytes) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    connection.sendall(first_bytes)
    return connection


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_slow_clients_cannot_starve_healthz(tmp_path, wait_until):
    """The repository's gunicorn (2 processes x 4 threads): 12 clients trickling their headers and
    6 whose body stays shorter than its Content-Length leave /healthz answering at once, and
    each half-sent request is answered 408 when its time is up."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = bridge_env(f"sqlite:///{tmp_path}/bridge.db", "http://127.0.0.1:9", PORT=str(port))
    run_db_upgrade(env, tmp_path)
    procs = Processes(tmp_path)
    loris: list[socket.socket] = []
    short_bodies: list[socket.socket] = []
    try:
        procs.web("web", env, port)
        wait_until(lambda: answers(f"{base}/healthz"), timeout=30, message="web serves")
        opened = time.monotonic()
        loris += [_slow_client(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n") for _ in range(12)]
        short = POST_HEAD + b"Content-Length: 1000\r\n\r\n" + b'{"workspace": '
        short_bodies += [_slow_client(port, short) for _ in range(6)]
        latencies = []
        for _ in range(4):  # a round a second: each trickling client sends one more header line
            started = time.monotonic()
            for connection in loris:
                connection.sendall(b"X-Slow: 1\r\n")
            answer = requests.get(f"{base}/healthz", timeout=5)
            latencies.append(round(time.monotonic() - started, 3))
            assert answer.status_code == 200
            wait_until(lambda started=started: time.monotonic() - started >= 1, timeout=2)
        print(f"\n/healthz beside 18 slow clients, seconds: {latencies}")
        assert max(latencies) < 2
        for connection in short_bodies:  # cut off with an answer, READ_TIMEOUT after it began
            connection.settimeout(buffering.READ_TIMEOUT + 5)
            assert connection.recv(64).startswith(b"HTTP/1.1 408 ")
        waited = time.monotonic() - opened
        assert buffering.READ_TIMEOUT - 1 < waited < buffering.READ_TIMEOUT + 3
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        assert procs.stop("web") == 0
    finally:
        for connection in loris + short_bodies:
            connection.close()
        procs.stop_all()
