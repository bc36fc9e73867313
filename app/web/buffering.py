"""The web process's gunicorn worker: ``gthread``, except that a thread sees only whole requests.

gunicorn's ``gthread`` worker hands a connection to one of its threads as soon as its first bytes
arrive, and the thread then blocks reading the rest of the headers and, later, the body. A client
that trickles its headers, or sends a body shorter than its ``Content-Length``, holds that thread
(still held after 100 s, measured), and ``threads`` such clients per process leave nothing to answer even
``/healthz``. ``BufferingWorker`` gathers each request in the worker's event loop instead, as a
buffering proxy would: a thread is given the connection once the headers and the whole body are in
hand, and never waits for the client. A request must arrive whole within ``READ_TIMEOUT`` of its
first wait (idle connections included); one that does not is answered ``408`` and closed. At most
32 KiB of head and 64 KiB of body are held per connection (``app.web.gathering``): a longer head is
``431``, a longer chunked body ``413``, and a ``Content-Length`` over 64 KiB goes to the app with its
body left unread (the app refuses it, ``413``, from the header) and the connection closed after.

Only plain HTTP/1 is gathered (gunicorn's TLS and HTTP/2 options are not used by this app: TLS ends
at the proxy); with either configured, the worker behaves exactly as ``gthread``.
"""

from __future__ import annotations

import errno
import selectors
import socket
import struct
import time
from contextlib import suppress
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker  # type: ignore[import-untyped]

from app.web.gathering import HEAD_TOO_LARGE, READY, TOO_LARGE, WAIT, WITHHELD, Gathering

#: Seconds a request has to arrive whole (headers and body), counted from when the connection
#: starts waiting for it (accepted, or its previous answer sent).
READ_TIMEOUT = 10.0
RECV_SIZE = 64 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _plain_answer(status: str) -> bytes:
    return f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".encode()


#: What the worker answers itself, before closing: a body or head over its limit, a request that
#: did not arrive whole in time.
TOO_LARGE_ANSWERS = {
    TOO_LARGE: _plain_answer("413 Content Too Large"),
    HEAD_TOO_LARGE: _plain_answer("431 Request Header Fields Too Large"),
}
TIMEOUT_ANSWER = _plain_answer("408 Request Timeout")


class BufferingConn(TConn):
    """A connection whose next request is gathered in ``incoming`` before a thread sees it."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.gathering: Gathering | None = None  # the request being gathered
        self.whole = False  # the gathered request went to the parser: a thread may serve it now
        self.withheld = False  # its body was left unread: close after the answer
        self.continued = False  # "100 Continue" was sent for the request being gathered

    def close(self, graceful: bool = False) -> None:
        """Close without lingering: gunicorn's graceful close waits up to 2 s for the client to
        close its side, and it runs in the event loop, which one silent client would stall."""
        if graceful:
            with suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
                self.sock.setblocking(False)
                while self.sock.recv(RECV_SIZE):  # what the client sent already: no RST for it
                    pass
        with suppress(OSError):
            self.sock.close()


class BufferingWorker(ThreadWorker):
    """``gthread`` whose threads are given only whole requests (see the module's docstring)."""

    def init_process(self) -> None:
        """Gather requests unless TLS or HTTP/2 is configured (then behave as ``gthread``)."""
        self.gathers = not self.cfg.is_ssl and self.cfg.http2_cleartext == "off"
        super().init_process()

    def accept(self, listener: socket.socket) -> None:
        """Accept a connection and start gathering its first request."""
        try:
            client, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        self.enqueue_req(BufferingConn(self.cfg, client, address, listener.getsockname()))

    def enqueue_req(self, conn: BufferingConn) -> None:
        """Every way gunicorn hands a connection to a thread passes here: gather first."""
        if conn.whole or not self.gathers:
            conn.whole = False
            super().enqueue_req(conn)
        else:
            self._gather(conn)

    def _gather(self, conn: BufferingConn) -> None:
        conn.sock.setblocking(False)
        # Bytes read ahead of the last request (pipelined) are the start of this one.
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.gathering, conn.continued = Gathering(leftover), False
        if conn.gathering.verdict != WAIT:
            self._decide(conn, conn.gathering.verdict)
            return
        conn.timeout = time.monotonic() + READ_TIMEOUT  # pending_conns stays in deadline order
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _readable(self, conn: BufferingConn, _fileobj: Any) -> None:
        assert conn.gathering is not None
        try:
            chunk = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        verdict = conn.gathering.feed(chunk) if chunk else "closed"
        if verdict == WAIT:
            if conn.gathering.expects_continue and not conn.continued:
                # The client waits for this before sending its body (the field was taken out
                # of the request, so gunicorn does not say it a second time).
                conn.continued = True
                with suppress(OSError):
                    conn.sock.send(CONTINUE)  # into an empty send buffer: never blocks
            return
        self.poller.unregister(conn.sock)
        self.pending_conns.remove(conn)
        self._decide(conn, verdict)

    def _decide(self, conn: BufferingConn, verdict: str) -> None:
        assert conn.gathering is not None
        if verdict not in (READY, WITHHELD):  # refused, or the client went away
            self._close(conn, TOO_LARGE_ANSWERS.get(verdict))
            return
        conn.withheld = verdict == WITHHELD
        conn.data_ready = True
        conn.init()  # gunicorn's HTTP/1 parser over the socket (no I/O without TLS or HTTP/2)
        # A last resort should the parser still want bytes: no read blocks a thread for longer.
        conn.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", int(READ_TIMEOUT), 0)
        )
        conn.parser.unreader.unread(bytes(conn.gathering.data))
        conn.gathering = None
        conn.whole = True
        self.enqueue_req(conn)

    def _keepalive_after(self, conn: BufferingConn, keepalive: bool) -> bool:
        """A withheld body is never drained by a thread: the connection closes instead."""
        if conn.withheld:
            return False
        return bool(super()._keepalive_after(conn, keepalive))

    def murder_pending(self) -> None:
        """Answer ``408`` to connections whose request did not arrive whole in time, and close
        them (idle ones just close)."""
        now = time.monotonic()
        while self.pending_conns and self.pending_conns[0].timeout <= now:
            conn = self.pending_conns.popleft()
            with suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
            gathering = getattr(conn, "gathering", None)  # None: gunicorn's own (not gathering)
            self._close(conn, TIMEOUT_ANSWER if gathering and gathering.data else None)

    def _close(self, conn: BufferingConn, answer: bytes | None = None) -> None:
        if answer is not None:
            with suppress(OSError):
                conn.sock.send(answer)  # a few bytes into an empty send buffer: never blocks
        self.nr_conns -= 1
        conn.close(graceful=answer is not None)
