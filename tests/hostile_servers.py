"""Misbehaving peers on 127.0.0.1 for the poison matrix (``tests/test_poison_matrix.py``).

- ``TimedReceiver``: ``tests/receiver.py``'s receiver that also notes when each request arrived.
- ``DripReceiver``: reads the request, then answers one byte every ``interval`` seconds.
- ``HugeAnswerReceiver``: answers ``200`` with a body of ``size`` bytes, written lazily from one
  small chunk (never held in memory), for as long as the client keeps reading.
- ``SlackFront``: stands between the bridge and ``tests/fake_slack.py``: forwards Web API calls to
  the fake, but drops the connection (no answer at all) for calls to "unreachable" channels and for
  thread replies in channels told to lose them.

Every server records what it saw with wall-clock times (``time.time()``) so tests can compare them
with the database's timestamps. ``hang_up()`` (raw receivers) ends the open connections and closes
later ones unanswered; ``stop()`` ends everything.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import socketserver
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import requests

from tests.fake_slack import FakeSlack
from tests.receiver import Receiver
from tests.servers import ServerThread

MIB = 1024 * 1024


@dataclass(frozen=True)
class Arrival:
    """One request: when it arrived, its ``webhook-id`` and path."""

    at: float
    webhook_id: str | None
    path: str


class TimedReceiver(Receiver):
    """A ``tests.receiver.Receiver`` that also keeps ``arrivals`` (time, webhook-id, path)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[Arrival] = []

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> Any:
        with self._lock:
            self.arrivals.append(
                Arrival(time.time(), handler.headers.get("webhook-id"), handler.path)
            )
        return super()._record(handler, body)


@dataclass
class Hit:
    """One connection to a raw receiver: the request, and what the receiver wrote back."""

    arrival: Arrival
    sent: int = 0
    closed_at: float | None = None  # when the client went away (or the receiver stopped)


class _RawReceiver:
    """Reads one HTTP request per connection, records it, then ``answer``s with raw socket writes."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._stopping = threading.Event()
        receiver = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                receiver._serve(self.request, self.rfile)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._serving = ServerThread(self.server)
        self.url = self._serving.url

    def start(self) -> _RawReceiver:
        self._serving.start()
        return self

    def hang_up(self) -> None:
        """End the open connections; later ones are closed without an answer."""
        self._stopping.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """End every open connection, then the server."""
        self.hang_up()
        self._serving.stop()

    def _serve(self, sock: socket.socket, rfile: Any) -> None:
        request_line = rfile.readline(65537)
        if not request_line:
            return
        headers: dict[str, str] = {}
        while (line := rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        rfile.read(int(headers.get("content-length") or 0))
        path = request_line.decode("latin-1").split(" ")[1]
        hit = Hit(Arrival(time.time(), headers.get("webhook-id"), path))
        with self._lock:
            self.hits.append(hit)
            self._sockets.add(sock)
        try:
            if not self._stopping.is_set():
                self.answer(sock, hit)
        finally:
            hit.closed_at = time.time()
            with self._lock:
                self._sockets.discard(sock)

    def answer(self, sock: socket.socket, hit: Hit) -> None:
        raise NotImplementedError


class DripReceiver(_RawReceiver):
    """Answers ``HTTP/1.1 200 OK ... ok`` one byte every ``interval`` seconds: a whole answer takes
    minutes, and no single read ever waits longer than ``interval``."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

    def __init__(self, interval: float = 5.0) -> None:
        super().__init__()
        self.interval = interval

    def answer(self, sock: socket.socket, hit: Hit) -> None:
        for byte in self.ANSWER:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return
            hit.sent += 1
            # The next byte after ``interval``, unless the client hangs up (readable: EOF) first.
            readable, _, _ = select.select([sock], [], [], self.interval)
            if readable:  # the client hung up, or ``hang_up`` shut the socket
                return


class HugeAnswerReceiver(_RawReceiver):
    """Answers ``200`` with ``Content-Length: size`` and writes that many bytes, lazily, for as long
    as the client reads them; ``hit.sent`` says how far it got."""

    CHUNK = b"x" * (64 * 1024)

    def __init__(self, size: int = 300 * MIB) -> None:
        super().__init__()
        self.size = size

    def answer(self, sock: socket.socket, hit: Hit) -> None:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {self.size}\r\n\r\n"
        ).encode()
        try:
            sock.sendall(head)
            while hit.sent < self.size and not self._stopping.is_set():
                chunk = self.CHUNK[: self.size - hit.sent]
                sock.sendall(chunk)
                hit.sent += len(chunk)
        except OSError:  # the client closed the connection: what a bounded reader does
            return


@dataclass(frozen=True)
class FrontCall:
    """One Web API call through the ``SlackFront``: what it was and whether it was dropped."""

    at: float
    method: str
    channel: str | None
    thread_reply: bool
    dropped: bool


class SlackFront:
    """Slack's Web API as the bridge sees it (``api_url``), backed by a ``FakeSlack``.

    ``unreachable``: channel names or ids whose every call loses its connection (the request is
    read, then the connection closed without an answer). ``lose_thread_replies``: channel names or
    ids whose ``chat.postMessage`` with ``thread_ts`` is dropped the same way. Anything else is
    forwarded to the fake and its answer relayed. ``calls`` lists every call.
    """

    def __init__(self, fake: FakeSlack) -> None:
        self.fake = fake
        self.unreachable: set[str] = set()
        self.lose_thread_replies: set[str] = set()
        self.calls: list[FrontCall] = []
        self._lock = threading.Lock()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if front._drops(self.path, self.headers.get("Content-Type", ""), raw):
                    self.close_connection = True
                    return
                status, headers, data = front._forward(self.path, self.headers, raw)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._serving = ServerThread(self.server)
        self.api_url = self._serving.url + "/api/"

    def start(self) -> SlackFront:
        self._serving.start()
        return self

    def stop(self) -> None:
        self._serving.stop()

    def restore_thread_replies(self) -> None:
        """Forward thread replies again, in every channel."""
        with self._lock:
            self.lose_thread_replies.clear()

    def _drops(self, path: str, content_type: str, raw: bytes) -> bool:
        fields = _fields(content_type, raw)
        method = path.rstrip("/").rsplit("/", 1)[-1]
        channel = fields.get("channel")
        channel = channel if isinstance(channel, str) else None
        thread_reply = method == "chat.postMessage" and bool(fields.get("thread_ts"))
        with self._lock:
            dropped = channel in self.unreachable or (
                thread_reply and channel in self.lose_thread_replies
            )
            self.calls.append(FrontCall(time.time(), method, channel, thread_reply, dropped))
        return dropped

    def _forward(self, path: str, headers: Any, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        sent = {
            name: headers[name] for name in ("Content-Type", "Authorization") if headers.get(name)
        }
        answer = requests.post(self.fake.url + path, data=raw, headers=sent, timeout=10)
        relayed = {
            name: answer.headers[name]
            for name in ("Content-Type", "Retry-After")
            if name in answer.headers
        }
        return answer.status_code, relayed, answer.content


def _fields(content_type: str, raw: bytes) -> dict[str, Any]:
    """A Web API call's fields, sent as JSON or as a form; empty when neither."""
    try:
        text = raw.decode("utf-8")
        if "json" in content_type:
            value = json.loads(text) if text.strip() else {}
            return value if isinstance(value, dict) else {}
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    except ValueError:
        return {}
