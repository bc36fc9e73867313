"""The HTTP client for Media Intelligence's status endpoints: signed, pooled, time-bounded, asynchronous.

A status poll is one small GET on a kept-alive connection, and a worker sends thousands a second, so
the CPU spent per request decides how many assets one worker can follow. The requests run on aiohttp
(C-accelerated HTTP parsing) on an event loop of the client's own thread: a worker hands over a whole
batch as one coroutine and waits on one future, instead of a thread and a future per request.
Measured in ``docs/performance.md``. Proxies from the environment are not used for Media Intelligence.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import certifi
from yarl import URL

from app.clock import utcnow
from app.upstream.accounts import Account, Accounts
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
#: Request timeouts kept for reuse (one per tenth of a second of budget; see ``_timeout``).
_TIMEOUTS_KEPT = 4096


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
        self._timeouts_by_budget: dict[int, aiohttp.ClientTimeout] = {}
        self._clock = clock
        # The path the base URL may add in front of every status path (part of what is signed).
        self._base_path = urlsplit(self.base_url).path
        self._loop_thread = LoopThread("mi-poll-loop")
        # Made on the loop, on first use (aiohttp binds it to the running loop).
        self._session: aiohttp.ClientSession | None = None
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

        Runs on the client's loop. ``budget`` (seconds) bounds the whole request, so a poll never
        outlives the lease it runs under.
        """
        path = status_path(generation, workspace, project_id, asset_id)
        url = self.base_url + path
        # Sign the request target exactly as it goes on the wire (status paths carry no query).
        headers = self.signed_headers(workspace, "GET", path)
        timeout = self._timeout(budget)
        started = time.monotonic()
        try:
            # encoded=True: the path is already escaped and signed; it must not be re-quoted.
            return await self._send(URL(url, encoded=True), headers, timeout, started)
        except aiohttp.ClientConnectorError as exc:
            outcome = f"connection error: {_short(exc)}"
        except TimeoutError:  # aiohttp's connect and read timeouts are TimeoutErrors too
            outcome = "timeout"
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            outcome = f"connection error: {_short(exc)}"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            outcome = f"request failed: {_short(exc)}"
        return PollResult(
            PollOutcome.TRANSIENT, detail=outcome, duration=time.monotonic() - started
        )

    def _timeout(self, budget: float | None) -> aiohttp.ClientTimeout:
        """The request's timeouts: the configured ones, and ``budget`` for the whole request.

        Built once per tenth of a second of budget (rounded down, so never beyond it) and reused:
        the budget is what is left of a lease, nearly the same for every request of a batch.
        """
        connect, read = self._timeouts
        if budget is None:
            key = -1
        elif budget >= 1.0:
            key = int(budget * 10)
            budget = key / 10
        else:  # short budgets are exact (a rounded-down 0 would mean no limit at all)
            return aiohttp.ClientTimeout(
                total=budget, sock_connect=min(connect, budget), sock_read=min(read, budget)
            )
        timeout = self._timeouts_by_budget.get(key)
        if timeout is None:
            if budget is not None:
                connect, read = min(connect, budget), min(read, budget)
            timeout = aiohttp.ClientTimeout(total=budget, sock_connect=connect, sock_read=read)
            if len(self._timeouts_by_budget) >= _TIMEOUTS_KEPT:
                self._timeouts_by_budget.clear()
            self._timeouts_by_budget[key] = timeout
        return timeout

    async def _send(
        self, url: URL, headers: dict[str, str], timeout: aiohttp.ClientTimeout, started: float
    ) -> PollResult:
        session = self._http()
        async with session.get(
            url, headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            body = await _read_capped(response.content, MAX_BODY_BYTES)
            if body is None:
                response.close()  # unread bytes remain: this connection must not be reused
                return PollResult(
                    PollOutcome.TRANSIENT,
                    http_status=response.status,
                    detail=f"body larger than {MAX_BODY_BYTES} bytes",
                    duration=time.monotonic() - started,
                )
            duration = time.monotonic() - started
            return classify_response(
                response.status, response.headers, body, self._clock(), duration
            )

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            tls = ssl.create_default_context(cafile=certifi.where())
            connector = aiohttp.TCPConnector(limit=self.concurrency, ssl=tls)
            # trust_env=False: no proxies or .netrc from the environment for the status API; and no
            # cookie jar: the status API sets none worth keeping.
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    def close(self) -> None:
        """Cancel requests still running, close pooled connections and end the loop's thread."""
        self._loop_thread.stop(self._close_session)

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()

    def __enter__(self) -> MediaIntelligenceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def _read_capped(stream: aiohttp.StreamReader, limit: int) -> bytes | None:
    """The whole body, or None as soon as it proves longer than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(chunks)


def _short(exc: BaseException) -> str:
    """The first line of ``exc``'s text, storable and at most 200 characters (its type if empty)."""
    text = str(exc).splitlines()[0] if str(exc).strip() else ""
    return storable_text(text, 200) or type(exc).__name__
