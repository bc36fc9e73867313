"""The HTTP client for Media Intelligence's status endpoints: signed, pooled, time-bounded.

It speaks urllib3 directly rather than through ``requests``: a status poll is one small GET on a
kept-alive connection, and ``requests``' per-request machinery (hooks, cookie jar, ``.netrc`` and
proxy lookups in the environment, adapters) cost more CPU than the request itself. Measured in
``docs/performance.md``: about 2.5x the requests per second of a bare ``requests.Session`` at the same
concurrency. Proxies from the environment are not used for Media Intelligence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from app.upstream.generations import Generation, status_path
from app.upstream.outcomes import PollOutcome, PollResult, classify_response, now_utc
from app.upstream.signing import signed_headers

USER_AGENT = "mi-bridge/0.1 (+status poller)"
#: A status answer is a few hundred bytes; anything far larger is not one.
MAX_BODY_BYTES = 1 << 20


class MediaIntelligenceClient:
    """Polls analysis status. Thread-safe for concurrent ``get_status`` calls (one connection pool).

    Never raises for network or protocol trouble: every outcome comes back as a ``PollResult``.
    """

    def __init__(
        self,
        base_url: str,
        access_key: str,
        secret_key: str,
        *,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        pool_size: int = 32,
        clock: Callable[[], datetime] = now_utc,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._access_key = access_key
        self._secret_key = secret_key
        self._timeouts = (connect_timeout, read_timeout)
        self._clock = clock
        # Not blocking: a burst beyond pool_size opens extra connections instead of waiting;
        # only pool_size of them are kept alive afterwards.
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=pool_size, block=False, retries=False, ca_certs=certifi.where()
        )

    def get_status(
        self,
        workspace: str,
        project_id: str,
        asset_id: str,
        generation: Generation,
        *,
        budget: float | None = None,
    ) -> PollResult:
        """GET one asset's analysis status from ``generation``'s endpoint and classify the answer.

        ``budget`` (seconds) caps both timeouts, so a poll never outlives the lease it runs under.
        """
        url = self.base_url + status_path(generation, workspace, project_id, asset_id)
        parts = urlsplit(url)
        # Sign the request target exactly as it goes on the wire (path plus query, if any).
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = signed_headers("GET", target, self._access_key, self._secret_key)
        headers["Content-Type"] = "application/json"
        headers["User-Agent"] = USER_AGENT
        connect, read = self._timeouts
        if budget is not None:
            connect, read = min(connect, budget), min(read, budget)
        started = time.monotonic()
        try:
            result = self._send(url, headers, urllib3.Timeout(connect=connect, read=read))
        except NewConnectionError as exc:  # a subclass of the connect timeout: test it first
            result = PollResult(PollOutcome.TRANSIENT, detail=f"connection error: {_short(exc)}")
        except Urllib3Timeout:
            result = PollResult(PollOutcome.TRANSIENT, detail="timeout")
        except (ProtocolError, SSLError) as exc:
            result = PollResult(PollOutcome.TRANSIENT, detail=f"connection error: {_short(exc)}")
        except (HTTPError, OSError) as exc:
            result = PollResult(PollOutcome.TRANSIENT, detail=f"request failed: {_short(exc)}")
        return _with_duration(result, time.monotonic() - started)

    def _send(self, url: str, headers: dict[str, str], timeout: urllib3.Timeout) -> PollResult:
        response = self._pool.request(
            "GET", url, headers=headers, timeout=timeout, redirect=False, preload_content=False
        )
        try:
            body = response.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                response.close()  # unread bytes remain: this connection must not be reused
                return PollResult(
                    PollOutcome.TRANSIENT,
                    http_status=response.status,
                    detail=f"body larger than {MAX_BODY_BYTES} bytes",
                )
            return classify_response(response.status, response.headers, body, self._clock())
        finally:
            response.release_conn()

    def close(self) -> None:
        """Release pooled connections."""
        self._pool.clear()

    def __enter__(self) -> MediaIntelligenceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _with_duration(result: PollResult, seconds: float) -> PollResult:
    return replace(result, duration=seconds)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
