"""One outbound POST bounded in total time and in what is read back: the only way notifiers send.

Whatever the peer does (drips bytes, never answers, streams gigabytes, closes mid-answer), ``post``
returns within ``seconds`` plus a moment, holding at most ``limit`` bytes of the answer, or raises
``SendFailed`` with a short human sentence and its detail (``app.outbound.errors``). It opens no
transaction and takes no lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import requests
import urllib3.exceptions

from app.outbound.deadline import current, deadline
from app.outbound.errors import DescribedError, at, describe_exception
from app.outbound.http import read_capped, refused_reason

CONNECT_TIMEOUT = 5.0
#: What a notifier keeps of an answer by default: enough for an excerpt and an error body.
DEFAULT_LIMIT = 4096
#: Below this a request is not worth starting.
MIN_SECONDS = 0.05


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers, and at most the limit's bytes of its body."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes
    complete: bool

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced, NUL removed: it is stored and shown)."""
        return self.body.decode("utf-8", errors="replace").replace("\x00", "")


class SendFailed(DescribedError):
    """No answer: ``kind`` is ``refused`` (the address guard), ``expired`` (the total deadline),
    or ``transport`` (connection, TLS, timeout...); ``str()`` is a short human sentence naming
    ``host:port`` (``connection refused (203.0.113.7:443)``), ``detail`` the full text behind it.
    Neither holds the URL's path or query (it can be a credential)."""

    def __init__(self, kind: str, message: str, detail: str | None = None) -> None:
        super().__init__(message, detail)
        self.kind = kind


def post(
    session: requests.Session,
    url: str,
    *,
    data: bytes,
    headers: Mapping[str, str],
    seconds: float,
    limit: int = DEFAULT_LIMIT,
    method: str = "POST",
) -> Answer:
    """POST (or ``method``) ``data`` once, redirects not followed; the whole exchange ends within
    ``seconds`` (or within what is left of a deadline the caller opened around several posts)."""
    outer = current()
    if outer is not None:
        seconds = min(seconds, outer.remaining())
    if seconds < MIN_SECONDS:
        raise SendFailed("expired", "no time was left for this request")
    with deadline(seconds) as bound:
        try:
            response = session.request(
                method, url, data=data, headers=dict(headers), stream=True, allow_redirects=False,
                timeout=(min(CONNECT_TIMEOUT, seconds), seconds),
            )  # fmt: skip
            body, complete = read_capped(response, limit)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            short, detail = describe_exception(exc, url)
            if bound.expired:
                raise _expired(seconds, url, f"; the cut connection said: {detail}") from exc
            kind = "refused" if refused_reason(exc) else "transport"
            raise SendFailed(kind, short, detail) from exc
        if bound.expired:
            # Cut mid-answer: http.client may take the end of the stream for the end of the headers
            # or the body, so what was read is not an answer.
            raise _expired(seconds, url, " (the answer was cut short)")
    return Answer(response.status_code, response.reason or "", response.headers, body, complete)


def _expired(seconds: float, url: str, detail: str) -> SendFailed:
    short = at(f"timed out after {seconds:g} s", url)
    return SendFailed("expired", short, f"no complete answer within {seconds:g} s{detail}")
