"""Why a send failed, as people read it: a short sentence and the full text behind it (pure).

``describe_exception`` walks an exception's chain (requests -> urllib3 -> ``OSError``/``ssl``/timeouts,
and the bridge's own ``DescribedError``s) to its root cause and says it in a few words with where it
happened: ``connection refused (127.0.0.1:9)``, ``timed out after 15 s (hooks.example.com:443)``. The
detail is the full text of the chain. Neither ever holds a URL's path, query or credentials (a Slack
incoming-webhook URL *is* a secret): only ``scheme://host:port`` and ``host:port`` are shown.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from app.outbound.addresses import BlockedAddress
from app.outbound.http import AddressRefused

#: The longest detail kept (a chain of urllib3 reprs is a few hundred characters).
DETAIL_CHARS = 4000
_MAX_CHAIN = 12
_TIMEOUT_SETTING = re.compile(r"timeout=([0-9.]+)")
_URL_PATH = re.compile(r"with url: \S+")
_URL = re.compile(r"\b(https?)://(?:[^@/\s'\"]*@)?([^/\s'\"?#]+)[^\s'\"]*", re.IGNORECASE)
_SLACK_TOKEN = re.compile(r"\bxox[a-z]-[A-Za-z0-9-]+")
HIDDEN = "[hidden]"


class DescribedError(Exception):
    """An exception that already says what went wrong: ``short`` (``str()``) and ``detail``."""

    def __init__(self, short: str, detail: str | None = None) -> None:
        super().__init__(short)
        self.short = short
        self.detail = detail


def describe_exception(exc: BaseException, url: str | None = None) -> tuple[str, str]:
    """``(short, detail)`` for a failed send of ``url`` (``url`` only names where: host and port).

    The first ``DescribedError`` in the chain speaks for it; otherwise the deepest cause that says
    something (``[Errno 111] Connection refused`` beneath requests and urllib3) does.
    """
    chain = exception_chain(exc)
    described = next((item for item in chain if isinstance(item, DescribedError)), None)
    if described is not None:
        return described.short, scrub(described.detail or _chain_text(chain), url)
    place = where(url) if url else _where_in(chain)
    short = next(
        (text for item in reversed(chain) if (text := _short_of(item, chain, place))), None
    )
    return short or _fallback(exc, place), scrub(_chain_text(chain), url)


def where(url: str) -> str | None:
    """``host:port`` of a URL (``[::1]:443`` for IPv6), or None when it has no host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    return _host_port(parts.hostname, port or default)


def at(text: str, url: str | None) -> str:
    """``text (host:port)`` for ``url``, or ``text`` alone when the URL names no host."""
    return _at(text, where(url) if url else None)


def scrub(text: str, url: str | None = None) -> str:
    """``text`` without URL paths, queries, credentials or Slack tokens, cut to ``DETAIL_CHARS``."""
    if url:
        try:
            parts = urlsplit(url)
            base = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        except ValueError:
            base = ""
        text = text.replace(url, base or HIDDEN)
        rest = url.split("://", 1)[-1].partition("/")[2]
        if len(rest) > 1:
            text = text.replace("/" + rest, "/" + HIDDEN)
            path = "/" + rest.split("?", 1)[0].split("#", 1)[0]
            if len(path) > 2:
                text = text.replace(path, "/" + HIDDEN)
    text = _URL_PATH.sub(f"with url: {HIDDEN}", text)
    text = _URL.sub(lambda match: f"{match[1]}://{match[2]}", text)
    text = _SLACK_TOKEN.sub(HIDDEN, text)
    return text.replace("\x00", "")[:DETAIL_CHARS]


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first: urllib3's ``reason``, an exception among ``args``
    (``ProtocolError('Connection aborted.', RemoteDisconnected(...))``), ``__cause__``, ``__context__``."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in found):
        found.append(current)
        if len(found) >= _MAX_CHAIN:
            break
        reason = getattr(current, "reason", None)
        nested = next((a for a in current.args if isinstance(a, BaseException)), None)
        if isinstance(reason, BaseException):
            current = reason
        else:
            current = nested or current.__cause__ or current.__context__
    return found


def _short_of(item: BaseException, chain: list[BaseException], place: str | None) -> str | None:
    """The short sentence ``item`` stands for, or None when it says nothing specific."""
    for kinds, say in _SENTENCES:
        if isinstance(item, kinds):
            return say(item, chain, place)
    return None


def _refused_address(item: BaseException, chain: list[BaseException], place: str | None) -> str:
    host, address, reason = (getattr(item, name, None) for name in ("host", "address", "blocked"))
    if not (host and address and reason):
        return f"address not allowed: {str(item).split(': ', 1)[-1]}"
    if host == address:
        return f"address not allowed: {address} is a {reason}"
    return f"address not allowed: {host} resolves to {address}, a {reason}"


def _not_resolved(item: BaseException, chain: list[BaseException], place: str | None) -> str:
    host = place.rsplit(":", 1)[0] if place else None
    return f"name not resolved ({host})" if host else "name not resolved"


def _tls(item: BaseException, chain: list[BaseException], place: str | None) -> str:
    reason = getattr(item, "verify_message", None) or getattr(item, "reason", None)
    if isinstance(reason, str) and reason:
        text = reason.replace("_", " ").lower() if reason.isupper() else reason
    else:
        text = str(item).split("] ", 1)[-1].split(" (_ssl.c", 1)[0] or type(item).__name__
    return _at(f"TLS handshake failed: {text}"[:160], place)


def _timed_out(item: BaseException, chain: list[BaseException], place: str | None) -> str:
    setting = next(
        (match[1] for link in chain if (match := _TIMEOUT_SETTING.search(str(link)))), None
    )
    connecting = any(isinstance(link, urllib3.exceptions.ConnectTimeoutError) for link in chain)
    what = "timed out connecting" if connecting else "timed out"
    return _at(f"{what} after {float(setting):g} s" if setting else what, place)


def _os_error(item: BaseException, chain: list[BaseException], place: str | None) -> str | None:
    strerror = getattr(item, "strerror", None)
    if not strerror or getattr(item, "errno", None) is None:
        return None
    return _at(str(strerror)[0].lower() + str(strerror)[1:], place)


def _saying(text: str) -> Callable[[BaseException, list[BaseException], str | None], str]:
    return lambda item, chain, place: _at(text, place)


# Deepest cause first wins, so these are checked per link from the root outwards; within one link
# the first matching row wins (urllib3's NewConnectionError is a ConnectTimeoutError, and
# RemoteDisconnected a ConnectionResetError: the specific rows come first).
_SENTENCES: list[
    tuple[
        type[BaseException] | tuple[type[BaseException], ...],
        Callable[[BaseException, list[BaseException], str | None], str | None],
    ]
] = [
    (AddressRefused, _refused_address),
    (BlockedAddress, lambda item, chain, place: f"address not allowed: {item}"),
    ((socket.gaierror, urllib3.exceptions.NameResolutionError), _not_resolved),
    (
        (
            ssl.SSLError,
            ssl.CertificateError,
            urllib3.exceptions.SSLError,
            requests.exceptions.SSLError,
        ),
        _tls,
    ),
    (ConnectionRefusedError, _saying("connection refused")),
    (http.client.RemoteDisconnected, _saying("closed the connection without answering")),
    (ConnectionResetError, _saying("connection reset")),
    (ConnectionAbortedError, _saying("connection aborted")),
    (BrokenPipeError, _saying("connection closed while sending")),
    (
        (TimeoutError, urllib3.exceptions.ReadTimeoutError, requests.exceptions.Timeout),
        _timed_out,
    ),
    (
        (http.client.BadStatusLine, http.client.LineTooLong),
        _saying("answered something that is not HTTP"),
    ),
    (http.client.IncompleteRead, _saying("the answer ended early")),
    (urllib3.exceptions.NewConnectionError, lambda item, chain, place: None),
    (urllib3.exceptions.ConnectTimeoutError, _timed_out),
    (urllib3.exceptions.ProtocolError, _saying("the connection broke")),
    (
        (requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema),
        lambda item, chain, place: "not an http or https URL",
    ),
    (
        (requests.exceptions.InvalidURL, urllib3.exceptions.LocationParseError),
        lambda item, chain, place: "not a valid URL",
    ),
    (OSError, _os_error),
]


def _fallback(exc: BaseException, place: str | None) -> str:
    return _at(f"could not send ({type(exc).__name__})", place)


def _at(text: str, place: str | None) -> str:
    return f"{text} ({place})" if place else text


def _host_port(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port else shown


def _where_in(chain: list[BaseException]) -> str | None:
    """``host:port`` named by a urllib3 exception (its connection or pool), if any."""
    for item in chain:
        # vars(), not getattr: NewConnectionError.pool is a property that warns.
        for holder in (vars(item).get("conn"), vars(item).get("pool")):
            host = getattr(holder, "host", None)
            if isinstance(host, str) and host:
                return _host_port(host, getattr(holder, "port", None))
    return None


def _chain_text(chain: list[BaseException]) -> str:
    """Each link as ``Type: text``, leaving out links whose text an outer one already shows."""
    parts: list[str] = []
    for item in chain:
        text = str(item)
        if text and any(text in part for part in parts):
            continue
        parts.append(f"{_type_name(item)}: {text}" if text else _type_name(item))
    return "; caused by ".join(parts)


def _type_name(item: BaseException) -> str:
    kind = type(item)
    if kind.__module__ in ("builtins", "__main__"):
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"
