"""A threaded WSGI server with HTTP/1.1 keep-alive that counts the TCP connections it accepts.

Why not werkzeug's handler as is: since Werkzeug 2.1 it sends ``Connection: close`` on every
response, and after each response it reads and discards whatever the client sent next (to drain
unread bodies), which would eat a pooled client's next request. The simulator must show how a
real client reuses connections, so ``KeepAliveRequestHandler`` reads each request body up front,
buffers each response (status answers are small) and sends an exact ``Content-Length``, leaving
the connection open.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

#: Request bodies of the simulated API are small JSON documents.
MAX_REQUEST_BODY = 1 << 20
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding"})


class KeepAliveRequestHandler(WSGIRequestHandler):
    """Serves requests one after another on one connection until the client closes it."""

    protocol_version = "HTTP/1.1"
    server: CountingWSGIServer

    def run_wsgi(self) -> None:
        """Answer one request (werkzeug calls this for every method)."""
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.server.mark_busy(self.connection, True)
        try:
            self._run_wsgi()
        finally:
            self.server.mark_busy(self.connection, False)

    def _run_wsgi(self) -> None:
        self.environ = environ = self.make_environ()
        if self.request_version != "HTTP/1.1":
            self.close_connection = True  # HTTP/1.0 keep-alive is not worth supporting
        refusal = self._take_body(environ)
        if refusal is not None:
            self.close_connection = True  # the unread body makes the stream unusable
            self._respond(refusal, [("Content-Type", "text/plain; charset=utf-8")], b"")
            return
        try:
            status, headers, body = self._call_app(environ)
        except Exception:
            self.server.log("error", f"Error on request:\n{traceback.format_exc()}")
            self.close_connection = True
            status, headers, body = "500 INTERNAL SERVER ERROR", [], b"Internal Server Error"
        self._respond(status, headers, body)

    def _take_body(self, environ: dict[str, Any]) -> str | None:
        """Read the whole request body into ``wsgi.input``; an HTTP status line if refused."""
        if "HTTP_TRANSFER_ENCODING" in environ:
            return "411 LENGTH REQUIRED"
        text = environ.get("CONTENT_LENGTH") or "0"
        if not text.isdigit():
            return "400 BAD REQUEST"
        length = int(text)
        if length > MAX_REQUEST_BODY:
            return "413 REQUEST ENTITY TOO LARGE"
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            return "400 BAD REQUEST"
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(length)
        return None

    def _call_app(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        captured: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            # Nothing is sent before the app returns, so a late error may always replace headers.
            captured["status"], captured["headers"] = status, headers
            return chunks.append

        result: Iterable[bytes] = self.server.app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return captured["status"], captured["headers"], b"".join(chunks)

    def _respond(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        code_text, _, reason = status.partition(" ")
        code = int(code_text)
        if self.server.stopping:
            self.close_connection = True  # answer this request, then let the connection go
        self.send_response(code, reason)
        declared = None
        for name, value in headers:
            if name.lower() == "content-length":
                declared = value
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        bodyless = code < 200 or code in (204, 304)
        if self.command == "HEAD":
            # No body is sent; announce the length a GET would have had.
            self.send_header("Content-Length", declared or str(len(body)))
        elif not bodyless:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and not bodyless and self.command != "HEAD":
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """One access-log line, only when the server is verbose."""
        if self.server.verbose:
            super().log_request(code, size)


class CountingWSGIServer(ThreadedWSGIServer):
    """Serves ``app`` on an already bound, listening socket; one daemon thread per connection.

    ``on_connection`` is called once per accepted TCP connection. ``close_connections`` ends every
    open connection (idle keep-alive ones at once, busy ones after their current answer) so a stop
    never waits on a client.
    """

    def __init__(
        self,
        listener: socket.socket,
        app: Any,
        on_connection: Callable[[], None],
        *,
        verbose: bool = False,
    ) -> None:
        host, port = listener.getsockname()[:2]
        # Werkzeug duplicates the descriptor; binding ourselves lets bind errors raise OSError
        # instead of werkzeug's print-and-sys.exit.
        super().__init__(host, port, app, handler=KeepAliveRequestHandler, fd=listener.fileno())
        self.verbose = verbose
        self._on_connection = on_connection
        self.stopping = False
        self._open: set[socket.socket] = set()
        self._busy: set[socket.socket] = set()
        self._open_changed = threading.Condition()

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept one connection, count it and remember it until it closes."""
        connection, address = super().get_request()
        # Headers and body leave in two writes; without NODELAY, Nagle's algorithm holds the body
        # back until the client's delayed ACK (~40 ms per keep-alive request).
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._open_changed:
            self._open.add(connection)
        self._on_connection()
        return connection, address

    def mark_busy(self, connection: socket.socket, busy: bool) -> None:
        """Record whether ``connection`` is in the middle of a request."""
        with self._open_changed:
            if busy:
                self._busy.add(connection)
            else:
                self._busy.discard(connection)

    def shutdown_request(self, request: Any) -> None:
        """Called once a connection's thread is done with it."""
        with self._open_changed:
            self._open.discard(request)
            self._open_changed.notify_all()
        super().shutdown_request(request)

    def close_connections(self, timeout: float) -> bool:
        """End every connection; True if all their threads finished within ``timeout`` s.

        Idle connections are shut at once. Busy ones finish their current answer (sent with
        ``Connection: close``) and are shut when ``timeout`` runs out if still open.
        """
        with self._open_changed:
            self.stopping = True
            idle = self._open - self._busy
        _shut(idle)
        with self._open_changed:
            if self._open_changed.wait_for(lambda: not self._open, timeout):
                return True
            stuck = set(self._open)
        _shut(stuck)
        return False


def _shut(connections: Iterable[socket.socket]) -> None:
    for connection in connections:
        with contextlib.suppress(OSError):  # already closed by its thread
            connection.shutdown(socket.SHUT_RDWR)
