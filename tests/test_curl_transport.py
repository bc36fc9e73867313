"""``app.upstream.curl_transport``: libcurl's multi interface on an asyncio loop, against real
servers on 127.0.0.1 (scripted raw answers from ``asyncio.start_server``, and the drip and huge
answer receivers of ``tests/hostile_servers.py``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import pytest

from app.upstream.curl_transport import CurlPool, TransferError
from tests.hostile_servers import DripReceiver, HugeAnswerReceiver

Answerer = Callable[[bytes], bytes | None]


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """A certificate and key for 127.0.0.1 that no CA signed (made by the openssl command)."""
    openssl = shutil.which("openssl")
    assert openssl, "the openssl command is needed to make a test certificate"
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


class ScriptedServer:
    """Answers each request read on a kept-alive connection with ``answer(request_head)``'s bytes
    (``None``: close the connection without answering); counts connections and requests."""

    def __init__(self, answer: Answerer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                head += await reader.readexactly(length)
                self.requests.append(head)
                answer = self.answer(head)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra
        + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )  # fmt: skip


#: How the pools made here watch curl's sockets (set for each test by ``socket_watching``).
USE_EPOLL = True


@pytest.fixture(params=[True, False], ids=["epoll", "loop-watches-sockets"], autouse=True)
def socket_watching(request, monkeypatch):
    """Every test runs twice: sockets in the pool's epoll set (Linux), and watched by the loop itself
    (the way on systems without epoll)."""
    monkeypatch.setattr(sys.modules[__name__], "USE_EPOLL", request.param)


def run(test: Callable[[CurlPool], Awaitable[None]], max_body: int = 1 << 20) -> None:
    async def main() -> None:
        pool = CurlPool(connections=8, max_body=max_body, use_epoll=USE_EPOLL)
        try:
            await test(pool)
        finally:
            pool.close()

    asyncio.run(main())


def test_answers_come_back_with_status_headers_and_body_on_one_kept_alive_connection():
    async def test(pool: CurlPool) -> None:
        async with ScriptedServer(lambda head: ok(extra=b"X-Seen: 1\r\nx-seen: 2\r\n")) as server:
            for _ in range(20):
                answer = await pool.request("GET", server.url + "/a", ["A: b"], connect=1, total=2)
                assert (answer.status, answer.body) == (200, b'{"ok":true}')
                assert answer.headers.get("X-SEEN") == "2"  # any case; the last of repeated ones
            assert server.connections == 1
            assert len(server.requests) == 20
            assert b"\r\nA: b\r\n" in server.requests[0]

    run(test)


def test_many_requests_at_once_all_get_their_own_answer():
    async def test(pool: CurlPool) -> None:
        def echo_path(head: bytes) -> bytes:
            return ok(head.split(b" ")[1])

        async with ScriptedServer(echo_path) as server:
            paths = [f"/p{i}" for i in range(200)]
            answers = await asyncio.gather(
                *(pool.request("GET", server.url + p, [], connect=1, total=5) for p in paths)
            )
            assert [a.body.decode() for a in answers] == paths
            assert server.connections <= 8  # the pool's bound

    run(test)


def test_a_post_sends_its_body_and_method_and_a_get_after_it_is_still_a_get():
    async def test(pool: CurlPool) -> None:
        async with ScriptedServer(lambda head: ok()) as server:
            await pool.request(
                "POST", server.url + "/w", ["Content-Type: application/json", "Expect:"],
                body=b'{"x":1}', connect=1, total=2,
            )  # fmt: skip
            await pool.request("GET", server.url + "/s", [], connect=1, total=2)
            post, get = server.requests
            assert post.startswith(b"POST /w ")
            assert post.endswith(b'\r\n\r\n{"x":1}')
            assert get.startswith(b"GET /s ")

    run(test)


def test_an_interim_100_answer_leaves_only_the_final_answers_headers():
    async def test(pool: CurlPool) -> None:
        interim = b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
        async with ScriptedServer(lambda head: interim + ok(extra=b"X-Final: yes\r\n")) as server:
            answer = await pool.request("GET", server.url + "/", [], connect=1, total=2)
            assert answer.status == 200
            assert answer.headers.get("x-final") == "yes"
            assert answer.headers.get("x-interim") is None

    run(test)


def test_a_redirect_is_an_answer_not_followed():
    async def test(pool: CurlPool) -> None:
        moved = b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"
        async with ScriptedServer(lambda head: moved) as server:
            answer = await pool.request("GET", server.url + "/", [], connect=1, total=2)
            assert (answer.status, answer.headers.get("location")) == (302, "/elsewhere")
            assert len(server.requests) == 1

    run(test)


def test_a_connection_closed_without_an_answer_is_a_connection_error_and_the_pool_goes_on():
    async def test(pool: CurlPool) -> None:
        calls = []

        def first_hangs_up(head: bytes) -> bytes | None:
            calls.append(head)
            return None if len(calls) == 1 else ok()

        async with ScriptedServer(first_hangs_up) as server:
            with pytest.raises(TransferError) as caught:
                await pool.request("GET", server.url + "/", [], connect=1, total=2)
            assert caught.value.kind == "connection"
            answer = await pool.request("GET", server.url + "/", [], connect=1, total=2)
            assert answer.status == 200

    run(test)


def test_connection_refused_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there

    async def test(pool: CurlPool) -> None:
        with pytest.raises(TransferError) as caught:
            await pool.request("GET", f"http://127.0.0.1:{port}/", [], connect=1, total=2)
        assert caught.value.kind == "connection"

    run(test)


def test_a_dripping_answer_is_cut_at_the_total_time():
    receiver = DripReceiver(interval=0.2).start()  # the whole answer would take 13 s
    try:

        async def test(pool: CurlPool) -> None:
            started = time.monotonic()
            with pytest.raises(TransferError) as caught:
                await pool.request("GET", receiver.url + "/", [], connect=1, total=0.5)
            assert caught.value.kind == "timeout"
            assert time.monotonic() - started < 2.0

        run(test)
    finally:
        receiver.stop()


def test_a_declared_body_past_the_cap_is_too_large_and_stops_the_transfer():
    receiver = HugeAnswerReceiver(size=64 * 1024 * 1024).start()
    try:

        async def test(pool: CurlPool) -> None:
            with pytest.raises(TransferError) as caught:
                await pool.request("GET", receiver.url + "/", [], connect=1, total=10)
            assert caught.value.kind == "too_large"
            assert caught.value.status == 200

        run(test, max_body=64 * 1024)
        # ``sent`` only grows, and the client has hung up by now: a client that read the whole
        # body would have let it reach 64 MiB before returning.
        assert receiver.hits[0].sent < 16 * 1024 * 1024
    finally:
        receiver.stop()


def test_a_chunked_body_past_the_cap_is_too_large():
    chunk = b"x" * 16384
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    streamed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked

    async def test(pool: CurlPool) -> None:
        async with ScriptedServer(lambda head: streamed) as server:
            with pytest.raises(TransferError) as caught:
                await pool.request("GET", server.url + "/", [], connect=1, total=5)
            assert caught.value.kind == "too_large"
            # Under the cap, the same kind of answer is whole.
            small = CurlPool(connections=1, max_body=len(chunk) * 20, use_epoll=USE_EPOLL)
            try:
                answer = await small.request("GET", server.url + "/", [], connect=1, total=5)
                assert answer.body == chunk * 20
            finally:
                small.close()

    run(test, max_body=64 * 1024)


def test_the_environments_proxy_is_not_used(monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")

    async def test(pool: CurlPool) -> None:
        async with ScriptedServer(lambda head: ok()) as server:
            answer = await pool.request("GET", server.url + "/", [], connect=1, total=2)
            assert answer.status == 200

    run(test)


def test_a_cancelled_request_stops_and_the_pool_still_serves_the_next():
    async def test(pool: CurlPool) -> None:
        requests_seen = []

        def never_answers_the_first(head: bytes) -> bytes | None:
            requests_seen.append(head)
            return b"" if len(requests_seen) == 1 else ok()

        async with ScriptedServer(never_answers_the_first) as server:
            pending = asyncio.ensure_future(
                pool.request("GET", server.url + "/slow", [], connect=1, total=30)
            )
            while not requests_seen:
                await asyncio.sleep(0.01)
            pending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending
            answer = await pool.request("GET", server.url + "/next", [], connect=1, total=2)
            assert answer.status == 200
            assert server.connections == 2  # the cancelled transfer's connection was not reused

    run(test)


def test_closing_the_pool_fails_the_requests_in_flight_and_refuses_new_ones():
    async def test(pool: CurlPool) -> None:
        async with ScriptedServer(lambda head: b"") as server:  # reads, never answers
            pending = asyncio.ensure_future(
                pool.request("GET", server.url + "/", [], connect=1, total=30)
            )
            while not server.requests:
                await asyncio.sleep(0.01)
            pool.close()
            with pytest.raises(TransferError) as caught:
                await pending
            assert caught.value.kind == "failed"
            with pytest.raises(RuntimeError):
                await pool.request("GET", server.url + "/", [], connect=1, total=1)

    run(test)


def test_a_certificate_no_trusted_ca_signed_is_refused_as_a_connection_error(self_signed):
    async def test(pool: CurlPool) -> None:
        async with ScriptedServer(lambda head: ok(), tls=self_signed) as server:
            with pytest.raises(TransferError) as caught:
                await pool.request("GET", server.url + "/", [], connect=2, total=5)
            assert caught.value.kind == "connection"
            assert "certificate" in caught.value.message.lower()
            assert server.requests == []  # nothing was sent over the unverified connection

    run(test)


def test_endless_headers_end_the_transfer_long_before_its_time_is_up():
    """libcurl caps an answer's headers (300 kB in all); they are never collected without bound."""
    header = b"X-Filler: " + b"y" * 1000 + b"\r\n"
    endless = b"HTTP/1.1 200 OK\r\n" + header * 2000  # 2 MB of headers, no end of them

    async def test(pool: CurlPool) -> None:
        async with ScriptedServer(lambda head: endless) as server:
            started = time.monotonic()
            with pytest.raises(TransferError) as caught:
                await pool.request("GET", server.url + "/", [], connect=1, total=20)
            assert caught.value.kind == "connection"
            assert "headers" in caught.value.message.lower()
            assert time.monotonic() - started < 5

    run(test)


def test_a_dripping_peer_holds_up_none_of_the_requests_beside_it():
    receiver = DripReceiver(interval=0.2).start()  # its whole answer would take 13 s
    try:

        async def test(pool: CurlPool) -> None:
            async with ScriptedServer(lambda head: ok()) as server:
                dripping = asyncio.ensure_future(
                    pool.request("GET", receiver.url + "/", [], connect=1, total=3)
                )
                started = time.monotonic()
                answers = await asyncio.gather(
                    *(pool.request("GET", server.url + f"/{i}", [], connect=1, total=3)
                      for i in range(100))
                )  # fmt: skip
                beside = time.monotonic() - started
                assert [a.status for a in answers] == [200] * 100
                assert not dripping.done()  # all 100 answered while the drip still went on
                with pytest.raises(TransferError) as caught:
                    await dripping
                assert caught.value.kind == "timeout"
                assert beside < 2.0

        run(test)
    finally:
        receiver.stop()
