"""One outbound POST bounded in total time and in what is read back: the only way notifiers send.

Whatever the peer does (drips bytes, never answers, streams gigabytes, closes mid-answer), ``post``
returns within ``seconds`` plus a moment, holding at most ``limit`` bytes of the answer, or raises
``SendFailed`` with a short human sentence. It opens no transaction and takes no lock.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import requests
import urllib3.exceptions

from app.outbound.deadline import current, deadline
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


class SendFailed(Exception):
    """No answer: ``kind`` is ``refused`` (the address guard), ``expired`` (the total deadline),
    or ``transport`` (connection, TLS, timeout...); ``str()`` is a short human sentence."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def post(
    session: requests.Session,
    url: str,
    *,
    data: bytes,
    headers: Mapping[str, str],
    seconds: float,
    limit: int = DEFAULT_LIMIT,
) -> Answer:
    """POST ``data`` once, redirects not followed; the whole exchange ends within ``seconds`` (or
    within what is left of a deadline the caller opened around several posts)."""
    outer = current()
    if outer is not None:
        seconds = min(seconds, outer.remaining())
    if seconds < MIN_SECONDS:
        raise SendFailed("expired", "no time was left for this request")
    with deadline(seconds) as bound:
        try:
            response = session.post(
                url, data=data, headers=dict(headers), stream=True, allow_redirects=False,
                timeout=(min(CONNECT_TIMEOUT, seconds), seconds),
            )  # fmt: skip
            body, complete = read_capped(response, limit)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if bound.expired:
                raise SendFailed("expired", f"no complete answer within {seconds:g} s") from exc
            refused = refused_reason(exc)
            if refused:
                raise SendFailed("refused", refused) from exc
            raise SendFailed("transport", describe(exc)) from exc
        if bound.expired:
            # Cut mid-answer: http.client may take the end of the stream for the end of the headers
            # or the body, so what was read is not an answer.
            raise SendFailed("expired", f"no complete answer within {seconds:g} s")
    return Answer(response.status_code, response.reason or "", response.headers, body, complete)


def describe(exc: BaseException) -> str:
    """A short sentence for a transport failure (never the URL: it can be a credential)."""
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, urllib3.exceptions.NameResolutionError | socket.gaierror):
            return "the host name did not resolve"
        if isinstance(item, ssl.SSLError):
            return f"TLS error: {item.reason or type(item).__name__}"[:120]
        if isinstance(item, ConnectionResetError):
            return "connection reset by the receiver"
    if any(isinstance(item, TimeoutError | requests.Timeout) for item in chain):
        return "timed out waiting for the receiver"
    if any(isinstance(item, urllib3.exceptions.ProtocolError) for item in chain):
        return "the receiver closed the connection before answering"
    return f"could not reach the receiver ({type(exc).__name__})"


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found and len(found) < 12:
        found.append(current)
        reason = getattr(current, "reason", None)
        nested = next(
            (a for a in getattr(current, "args", ()) if isinstance(a, BaseException)), None
        )
        if isinstance(reason, BaseException):
            current = reason
        else:
            current = nested or current.__cause__ or current.__context__
    return found
