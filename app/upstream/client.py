"""The HTTP client for Media Intelligence's status endpoints: signed, pooled, time-bounded."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import requests
from requests.adapters import HTTPAdapter

from app.upstream.generations import Generation, status_path
from app.upstream.outcomes import PollOutcome, PollResult, classify_response, now_utc
from app.upstream.signing import signed_headers

USER_AGENT = "mi-bridge/0.1 (+status poller)"
#: A status answer is a few hundred bytes; anything far larger is not one.
MAX_BODY_BYTES = 1 << 20


class MediaIntelligenceClient:
    """Polls analysis status. Thread-safe for concurrent ``get_status`` calls (one pooled session).

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
        self._timeout = (connect_timeout, read_timeout)
        self._clock = clock
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

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
        prepared = self._session.prepare_request(requests.Request("GET", url))
        # Sign the request target exactly as it goes on the wire (path plus query, if any).
        prepared.headers.update(
            signed_headers("GET", prepared.path_url, self._access_key, self._secret_key)
        )
        prepared.headers["Content-Type"] = "application/json"
        prepared.headers["User-Agent"] = USER_AGENT
        started = time.monotonic()
        timeout = self._timeout
        if budget is not None:
            timeout = (min(timeout[0], budget), min(timeout[1], budget))
        try:
            result = self._send(prepared, timeout)
        except requests.Timeout:
            result = PollResult(PollOutcome.TRANSIENT, detail="timeout")
        except requests.ConnectionError as exc:
            result = PollResult(PollOutcome.TRANSIENT, detail=f"connection error: {_short(exc)}")
        except requests.RequestException as exc:
            result = PollResult(PollOutcome.TRANSIENT, detail=f"request failed: {_short(exc)}")
        return _with_duration(result, time.monotonic() - started)

    def _send(self, prepared: requests.PreparedRequest, timeout: tuple[float, float]) -> PollResult:
        with self._session.send(
            prepared, timeout=timeout, allow_redirects=False, stream=True
        ) as response:
            body = _read_capped(response)
            if body is None:
                return PollResult(
                    PollOutcome.TRANSIENT,
                    http_status=response.status_code,
                    detail=f"body larger than {MAX_BODY_BYTES} bytes",
                )
            return classify_response(response.status_code, response.headers, body, self._clock())

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()

    def __enter__(self) -> MediaIntelligenceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_capped(response: requests.Response) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _with_duration(result: PollResult, seconds: float) -> PollResult:
    return replace(result, duration=seconds)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
