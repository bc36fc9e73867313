"""A real webhook receiver on 127.0.0.1 for tests: records every request, answers as scripted."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.servers import ServerThread


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: When it arrived (``time.time()``), for receivers that count requests per second.
    at: float = field(default_factory=time.time)


@dataclass
class Answer:
    """A scripted answer; ``hold`` blocks the request until ``Receiver.release()``."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    hold: bool = False


class Receiver:
    """Answers from ``route`` for its paths, else from ``script`` in order (then ``default``);
    ``requests`` lists what arrived."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[Answer] = []
        self.default = Answer()
        self.route: dict[str, Answer] = {}
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.holding = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender died mid-request (the crash tests SIGKILL it): a real
                    # receiver never sees a truncated request as a delivery.
                    self.close_connection = True
                    return
                answer = receiver._record(self, body)
                if answer.hold:
                    receiver.holding.set()
                    receiver._released.wait(60)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_PUT = do_POST  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._serving = ServerThread(self.server)
        self.url = self._serving.url

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> Answer:
        with self._lock:
            self.requests.append(
                Received(
                    handler.command,
                    handler.path,
                    {k.lower(): v for k, v in handler.headers.items()},
                    body,
                )
            )
            if handler.path in self.route:
                return self.route[handler.path]
            return self.script.pop(0) if self.script else self.default

    def answer(self, *answers: Answer) -> None:
        """Queue answers for the next requests."""
        with self._lock:
            self.script.extend(answers)

    def release(self) -> None:
        """Let held requests answer."""
        self._released.set()

    def start(self) -> Receiver:
        self._serving.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self._serving.stop()
