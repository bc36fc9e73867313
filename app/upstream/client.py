"""The HTTP client for Media Intelligence's status endpoints: signed, pooled, time-bounded, asynchronous.

A status poll is one small GET on a kept-alive connection, and a worker sends thousands a second, so
the CPU spent per request decides how many assets one worker can follow. The requests run on libcurl
(``app.upstream.curl_transport``) driven by an event loop of the client's own thread: a worker hands
over a whole batch as one coroutine and waits on one future, instead of a thread and a future per
request. Measured in ``docs/performance.md``. Proxies from the environment are not used for Media
Intelligence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from app.clock import utcnow
from app.upstream.accounts import Account, Accounts
from app.upstream.curl_transport import Answer, CurlPool, TransferError
from app.upstream.generations import status_path
from app.upstream.loop_thread import LoopThread
from app.upstream.outcomes import (
    PollOutcome,
    PollResult,
    classify_response,
    storable_text,
)
from app.upstream.signing import signed_headers
from app.vocabulary import ApiGeneration

T = TypeVar("T")

USER_AGENT = "mi-bridge/0.1 (+status poller)"
#: A status answer is a few hundred bytes; anything far larger is not one.
MAX_BODY_BYTES = 1 << 20


class MediaIntelligenceClient:
    """Polls analysis status. Never raises for network or protocol trouble: every outcome comes back
    as a ``PollResult``.

    Each request is signed with the key pair of its workspace's account (``accounts``, or the one
    pair given as ``access_key``/``secret_key``); ``signed_headers`` signs any other request to
    Media Intelligence the same way.

    Two ways in, both thread-safe: ``get_status`` from any thread (it waits), and coroutines handed to
    ``submit`` that ``await fetch_status`` (they run on the client's loop, which ``submit`` starts on
    first use). ``async with client.slots`` bounds how many of those run at once (``concurrency``).
    """

    def __init__(
        self,
        base_url: str,
        access_key: str = "",
        secret_key: str = "",
        *,
        accounts: Accounts | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        concurrency: int = 32,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        #: Which key pair signs which workspace's requests (``accounts`` wins over the one pair).
        self.accounts = (
            accounts if accounts is not None else Accounts.single(access_key, secret_key)
        )
        self._timeouts = (connect_timeout, read_timeout)
        self._clock = clock
        # The path the base URL may add in front of every status path (part of what is signed).
        self._base_path = urlsplit(self.base_url).path
        self._loop_thread = LoopThread("mi-poll-loop")
        # Made on the loop, on first use (it is driven by the running loop).
        self._pool: CurlPool | None = None
        #: Bounds the coroutines that poll at once (binds to the client's loop on first wait).
        self.slots = asyncio.Semaphore(concurrency)

    def account_for(self, workspace: str) -> Account:
        """The account whose key pair signs ``workspace``'s requests."""
        return self.accounts.account_for(workspace)

    def signed_headers(self, workspace: str, method: str, request_target: str) -> dict[str, str]:
        """Every header a request to Media Intelligence for ``workspace`` needs: the signature v2
        headers of its account's key pair (timestamped now), ``Content-Type`` and ``User-Agent``.

        ``request_target`` is what follows ``base_url``: the path and ``?query`` exactly as they
        will be sent (already escaped); the base URL's own path is signed in front of it.
        """
        account = self.accounts.account_for(workspace)
        uri = self._base_path + request_target
        headers = signed_headers(method, uri, account.access_key, account.secret_key)
        headers["Content-Type"] = "application/json"
        headers["User-Agent"] = USER_AGENT
        return headers

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Run ``coroutine`` on the client's loop; its result arrives in the returned future."""
        return self._loop_thread.submit(coroutine)

    def get_status(
        self,
        workspace: str,
        project_id: str,
        asset_id: str,
        generation: ApiGeneration,
        *,
        budget: float | None = None,
    ) -> PollResult:
        """``fetch_status`` from a plain thread: runs it on the loop and waits for the result."""
        return self._loop_thread.run(
            self.fetch_status(workspace, project_id, asset_id, generation, budget=budget)
        )

    async def fetch_status(
        self,
        workspace: str,
        project_id: str,
        asset_id: str,
        generation: ApiGeneration,
        *,
        budget: float | None = None,
    ) -> PollResult:
        """GET one asset's analysis status from ``generation``'s endpoint and classify the answer.

        Runs on the client's loop. The request as a whole takes at most ``connect_timeout`` plus
        ``read_timeout``, and at most ``budget`` seconds when given, so a poll never outlives the
        lease it runs under.
        """
        path = status_path(generation, workspace, project_id, asset_id)
        started = time.monotonic()
        try:
            answer = await self.send(workspace, "GET", path, budget=budget)
        except TransferError as exc:
            return PollResult(
                PollOutcome.TRANSIENT,
                http_status=exc.status or None,
                detail=transfer_failure_text(exc),
                duration=time.monotonic() - started,
            )
        duration = time.monotonic() - started
        return classify_response(
            answer.status, answer.headers, answer.body, self._clock(), duration
        )

    async def send(
        self,
        workspace: str,
        method: str,
        request_target: str,
        *,
        body: bytes | None = None,
        budget: float | None = None,
    ) -> Answer:
        """Send one request signed with ``workspace``'s account and return its answer, unclassified;
        ``TransferError`` for anything short of a whole answer. Runs on the client's loop.

        ``request_target`` is signed exactly as it goes on the wire (see ``signed_headers``). The
        request takes at most ``connect_timeout`` plus ``read_timeout`` in all, and at most
        ``budget`` seconds when given.
        """
        lines = [
            f"{name}: {value}"
            for name, value in self.signed_headers(workspace, method, request_target).items()
        ]
        if body is not None:
            lines.append("Expect:")  # send the body at once, not after a 100 Continue
        connect, read = self._timeouts
        total = connect + read if budget is None else min(budget, connect + read)
        return await self.http().request(
            method, self.base_url + request_target, lines, body=body, connect=connect, total=total
        )

    def http(self) -> CurlPool:
        """The client's connection pool (made on the loop, on first use). Call on the loop."""
        if self._pool is None:
            self._pool = CurlPool(self.concurrency, MAX_BODY_BYTES)
        return self._pool

    def close(self) -> None:
        """Cancel requests still running, close pooled connections and end the loop's thread."""
        self._loop_thread.stop(self._close_session)

    async def _close_session(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> MediaIntelligenceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def transfer_failure_text(exc: TransferError) -> str:
    """The short, storable description of a request that got no whole answer."""
    if exc.kind == "too_large":
        return f"body larger than {MAX_BODY_BYTES} bytes"
    if exc.kind == "timeout":
        return "timeout"
    prefix = "connection error" if exc.kind == "connection" else "request failed"
    return f"{prefix}: {storable_text(exc.message, 200) or exc.kind}"
