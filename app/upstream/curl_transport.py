"""HTTP requests to Media Intelligence on libcurl's multi interface (pycurl), on an asyncio loop.

Why libcurl: a status poll is one small GET on a kept-alive connection, thousands a second per
worker, so the CPU spent per request bounds how many assets a worker follows. libcurl does the whole
request in C (writing, reading, parsing, connection reuse, timeouts); measured on the same far end,
one loop with 64 requests in flight spent 100-150 microseconds of CPU per request this way against
290-330 with aiohttp (``docs/performance.md``, "Round 3, fourth pass").

How it runs on the loop: curl tells which sockets it wants watched (``M_SOCKETFUNCTION``) and when
it next needs a call (``M_TIMERFUNCTION``). On Linux its sockets go into one epoll set of our own,
and the loop watches only that set's descriptor: registering each kept-alive socket with the loop
again for every request cost more than the request itself. Elsewhere (no ``select.epoll``: macOS,
for development) each socket is watched by the loop itself, slower and the same otherwise. Requests
made in one pass of the loop start in one call (the zero timers curl asks for are coalesced); later
timers keep only the earliest.

Bounds, per request: ``connect`` seconds to connect, ``total`` seconds for everything, at most
``max_body`` bytes of body (the transfer stops as soon as it is exceeded, and its connection is
closed, not reused); libcurl's own cap on an answer's headers (300 kB) ends endless ones. No
redirects, no proxies from the environment, no ``.netrc``, only HTTP(S), HTTP/1.1 only.

Everything here runs on the loop's thread; ``CurlPool`` is not thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
from dataclasses import dataclass
from typing import Any

import certifi
import pycurl

#: curl's codes for trouble reaching or keeping the connection (anything else: "request failed").
_CONNECTION_ERRORS = frozenset(
    {
        pycurl.E_COULDNT_RESOLVE_PROXY,
        pycurl.E_COULDNT_RESOLVE_HOST,
        pycurl.E_COULDNT_CONNECT,
        pycurl.E_PARTIAL_FILE,
        pycurl.E_SSL_CONNECT_ERROR,
        pycurl.E_PEER_FAILED_VERIFICATION,  # the server's certificate did not verify
        pycurl.E_GOT_NOTHING,
        pycurl.E_SEND_ERROR,
        pycurl.E_RECV_ERROR,
    }
)
_EPOLL_FOR_CURL = (
    {
        pycurl.POLL_IN: select.EPOLLIN,
        pycurl.POLL_OUT: select.EPOLLOUT,
        pycurl.POLL_INOUT: select.EPOLLIN | select.EPOLLOUT,
        pycurl.POLL_NONE: 0,
    }
    if hasattr(select, "epoll")
    else {}
)
_HANDLES_KEPT = 256


class Headers(dict[str, str]):
    """An answer's headers by lower-case name (the last of repeated ones); ``get`` ignores case."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


@dataclass(frozen=True)
class Answer:
    """What came back: the HTTP status, the headers and the whole body."""

    status: int
    headers: Headers
    body: bytes


class TransferError(Exception):
    """A request that got no complete answer. ``kind`` is ``timeout``, ``connection``,
    ``too_large`` (the body passed the cap; ``status`` is what the answer said) or ``failed``;
    ``message`` is curl's own words."""

    def __init__(self, kind: str, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.kind, self.message, self.status = kind, message, status


class _Transfer:
    """One request in flight: what its answer has delivered so far, and who waits for it."""

    __slots__ = ("chunks", "future", "handle", "limit", "lines", "over", "pooled", "size")

    def __init__(self, handle: Any, future: asyncio.Future[Answer], limit: int, pooled: bool):
        self.handle, self.future, self.limit, self.pooled = handle, future, limit, pooled
        self.chunks: list[bytes] = []
        self.lines: list[bytes] = []
        self.size = 0
        self.over = False

    def write(self, data: bytes) -> int | None:
        """Body bytes from curl; returning 0 makes curl stop the transfer (the cap was passed)."""
        self.size += len(data)
        if self.size > self.limit:
            self.over = True
            return 0
        self.chunks.append(data)
        return None

    def headers(self) -> Headers:
        """The final answer's headers (those of an interim ``1xx`` answer are dropped)."""
        headers = Headers()
        for raw in self.lines:
            if raw.startswith(b"HTTP/"):
                headers.clear()
                continue
            name, colon, value = raw.partition(b":")
            if colon:
                headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
        return headers


class CurlPool:
    """Requests on one curl multi handle, driven by the running loop; at most ``connections``
    connections open at once, kept alive between requests."""

    def __init__(self, connections: int, max_body: int, *, use_epoll: bool | None = None) -> None:
        """``use_epoll``: None chooses epoll where the system has it (tests choose each way)."""
        self._loop = asyncio.get_running_loop()
        self._max_body = max_body
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self._multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, connections)
        self._multi.setopt(pycurl.M_MAXCONNECTS, connections)
        if use_epoll is None:
            use_epoll = hasattr(select, "epoll")
        self._epoll = select.epoll() if use_epoll else None
        self._watched: set[int] = set()
        if self._epoll is not None:
            self._loop.add_reader(self._epoll.fileno(), self._on_ready)
        self._transfers: dict[Any, _Transfer] = {}
        self._idle: list[Any] = []
        self._kick_pending = False
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def request(
        self,
        method: str,
        url: str,
        headers: list[str],
        *,
        body: bytes | None = None,
        connect: float,
        total: float,
    ) -> Answer:
        """Send one request (``url`` already escaped; ``headers`` as ``"Name: value"`` lines) and
        return its answer; raises ``TransferError`` for anything short of a whole answer.

        A cancelled caller's transfer is stopped at once and its connection closed."""
        if self._closed:
            raise RuntimeError("the HTTP pool is closed")
        pooled = method == "GET" and body is None
        handle = self._idle.pop() if pooled and self._idle else self._new_handle()
        transfer = _Transfer(handle, self._loop.create_future(), self._max_body, pooled)
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.HTTPHEADER, headers)
        handle.setopt(pycurl.WRITEFUNCTION, transfer.write)
        handle.setopt(pycurl.HEADERFUNCTION, transfer.lines.append)
        handle.setopt(pycurl.TIMEOUT_MS, max(1, int(total * 1000)))
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(min(connect, total) * 1000)))
        if not pooled:
            handle.setopt(pycurl.CUSTOMREQUEST, method)
            if body is not None:
                handle.setopt(pycurl.POSTFIELDS, body)
        self._transfers[handle] = transfer
        self._multi.add_handle(handle)
        try:
            return await transfer.future
        finally:
            self._finish(transfer)

    def _new_handle(self) -> Any:
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.PROXY, "")  # "" turns off the proxies of the environment too
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        # HTTP/1.1 as before libcurl: it would offer HTTP/2 over https, never run against NCP.
        handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        handle.setopt(pycurl.MAXFILESIZE_LARGE, self._max_body)  # a declared larger body: at once
        handle.setopt(pycurl.CAINFO, certifi.where())
        return handle

    def _finish(self, transfer: _Transfer) -> None:
        """Take a transfer out (finished, failed or cancelled) and keep its handle for reuse."""
        handle = transfer.handle
        if self._transfers.pop(handle, None) is not None and not self._closed:
            self._multi.remove_handle(handle)  # still running: cancelled; its connection closes
        handle.setopt(pycurl.WRITEFUNCTION, _discard)
        handle.setopt(pycurl.HEADERFUNCTION, _discard)
        if transfer.pooled and not self._closed and len(self._idle) < _HANDLES_KEPT:
            self._idle.append(handle)
        else:
            handle.close()

    # curl's callbacks (called from inside curl; they must not call curl back) ------------------

    def _on_socket(self, event: int, fd: int, multi: Any, data: Any) -> None:
        if self._epoll is None:
            self._watch_on_loop(event, fd)
            return
        if event == pycurl.POLL_REMOVE:
            if fd in self._watched:
                self._watched.discard(fd)
                # OSError: curl closed it first, and the kernel already dropped it.
                with contextlib.suppress(OSError):
                    self._epoll.unregister(fd)
            return
        mask = _EPOLL_FOR_CURL[event]
        try:
            if fd in self._watched:
                self._epoll.modify(fd, mask)
            else:
                self._epoll.register(fd, mask)
        except FileNotFoundError:  # a closed descriptor's number, reused by a new socket
            self._epoll.register(fd, mask)
        except FileExistsError:
            self._epoll.modify(fd, mask)
        self._watched.add(fd)

    def _watch_on_loop(self, event: int, fd: int) -> None:
        """Without epoll: the loop watches curl's socket ``fd`` for what ``event`` asks."""
        wants_in = event in (pycurl.POLL_IN, pycurl.POLL_INOUT)
        wants_out = event in (pycurl.POLL_OUT, pycurl.POLL_INOUT)
        if wants_in:
            self._loop.add_reader(fd, self._act, fd, pycurl.CSELECT_IN)
        else:
            self._loop.remove_reader(fd)
        if wants_out:
            self._loop.add_writer(fd, self._act, fd, pycurl.CSELECT_OUT)
        else:
            self._loop.remove_writer(fd)
        if wants_in or wants_out:
            self._watched.add(fd)
        else:
            self._watched.discard(fd)

    def _on_timer(self, milliseconds: int) -> None:
        if milliseconds < 0 or self._closed:
            return  # "no timer": a call that comes anyway does nothing harmful
        if milliseconds == 0:
            if not self._kick_pending:
                self._kick_pending = True
                self._loop.call_soon(self._on_kick)
            return
        when = self._loop.time() + milliseconds / 1000
        if self._timer is None or when < self._timer.when() - 0.001:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(when, self._on_timeout)

    # the loop's callbacks -----------------------------------------------------------------------

    def _on_kick(self) -> None:
        self._kick_pending = False
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _on_timeout(self) -> None:
        self._timer = None
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _on_ready(self) -> None:
        assert self._epoll is not None  # the loop watches the epoll set only when there is one
        for fd, events in self._epoll.poll(0):
            action = 0
            if events & select.EPOLLIN:
                action |= pycurl.CSELECT_IN
            if events & select.EPOLLOUT:
                action |= pycurl.CSELECT_OUT
            if events & (select.EPOLLERR | select.EPOLLHUP):
                action |= pycurl.CSELECT_ERR
            self._act(fd, action, collect=False)
        self._collect()

    def _act(self, fd: int, action: int, *, collect: bool = True) -> None:
        if self._closed:
            return
        self._multi.socket_action(fd, action)
        if collect:
            self._collect()

    def _collect(self) -> None:
        """Hand every finished transfer's answer (or error) to its waiter."""
        while True:
            queued, done, failed = self._multi.info_read()
            for handle in done:
                self._settle(handle, None, "")
            for handle, code, message in failed:
                self._settle(handle, code, message)
            if not queued:
                return

    def _settle(self, handle: Any, code: int | None, message: str) -> None:
        transfer = self._transfers.pop(handle, None)
        self._multi.remove_handle(handle)
        if transfer is None or transfer.future.done():
            return
        status = handle.getinfo(pycurl.RESPONSE_CODE)
        if code is None:
            body = b"".join(transfer.chunks)
            transfer.future.set_result(Answer(status, transfer.headers(), body))
        else:
            transfer.future.set_exception(_error(code, message, status, transfer.over))

    def close(self) -> None:
        """Stop every transfer (their waiters get an error) and close every connection. Call on
        the loop's thread."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self._epoll is not None:
            self._loop.remove_reader(self._epoll.fileno())
        else:
            for fd in self._watched:
                self._loop.remove_reader(fd)
                self._loop.remove_writer(fd)
        self._watched.clear()
        for handle, transfer in list(self._transfers.items()):
            self._multi.remove_handle(handle)
            if not transfer.future.done():
                transfer.future.set_exception(TransferError("failed", "the client was closed"))
        self._transfers.clear()
        for handle in self._idle:
            handle.close()
        self._idle.clear()
        self._multi.close()
        if self._epoll is not None:
            self._epoll.close()


def _error(code: int, message: str, status: int, over: bool) -> TransferError:
    if over or code == pycurl.E_FILESIZE_EXCEEDED:
        return TransferError("too_large", message, status)
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return TransferError("timeout", message, status)
    if code in _CONNECTION_ERRORS:
        return TransferError("connection", message, status)
    return TransferError("failed", message, status)


def _discard(data: bytes) -> None:
    """A finished handle's callbacks until its next request: nothing is kept alive through it."""
