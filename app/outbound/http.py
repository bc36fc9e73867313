"""Outbound HTTP for notifications: a requests session that checks the address it actually connects to.

Registration already refused URLs that resolve to private addresses, but DNS can change before a
notification is sent. Here every new connection resolves the host itself, refuses it if any address
is not globally routable (unless ``BRIDGE_ALLOW_PRIVATE_URLS``), and connects to the checked address,
so a rebinding name cannot slip through between check and connect. Redirects are never followed and
proxy variables from the environment are ignored (a proxy would connect on our behalf, unchecked).

Every connection, guarded or not, joins the thread's open ``Deadline`` (``app.outbound.deadline``)
when it sends a request, so a send is bounded in total time; ``read_capped`` bounds what is read.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError
from urllib3.util import connection

from app.outbound import deadline
from app.outbound.addresses import Resolver, blocked_reason

if TYPE_CHECKING:
    # The mixins are only ever combined with HTTPConnection (``_BoundedAdapter`` builds the
    # classes); to the type checker they are connections, at run time plain ``object``.
    _ConnectionBase = HTTPConnection
else:
    _ConnectionBase = object


class AddressRefused(NewConnectionError):
    """The destination resolved to an address the bridge must not contact: ``host`` resolved to
    ``address``, which is a ``blocked`` kind of address (``blocked_reason``)."""

    def __init__(self, conn: HTTPConnection, host: str, address: str, blocked: str) -> None:
        super().__init__(conn, f"refused: {host} resolves to a {blocked} ({address})")
        self.host, self.address, self.blocked = host, address, blocked


class _DeadlineMixin(_ConnectionBase):
    """Register the connection with the sending thread's deadline before each request."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        bound = deadline.current()
        if bound is not None:
            bound.watch(self)
        super().request(*args, **kwargs)


class _GuardMixin(_ConnectionBase):
    """Resolve, check, then connect to the checked address (used by both HTTP and HTTPS)."""

    guard_resolver: Resolver
    guard_allow_private: bool

    def _new_conn(self) -> socket.socket:
        host, port = self._dns_host, self.port
        try:
            addresses = list(self.guard_resolver(host, port))
        except (socket.gaierror, UnicodeError) as exc:
            raise NameResolutionError(
                self.host,
                self,
                exc,  # type: ignore[arg-type]  # urllib3 only formats it; UnicodeError: bad IDNA name
            ) from exc
        if not self.guard_allow_private:
            for address in addresses:
                reason = blocked_reason(address)
                if reason:
                    raise AddressRefused(self, host, address, reason)
        last_error: OSError | None = None
        for address in addresses:
            try:
                return connection.create_connection(
                    (address, port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                last_error = exc
        # Chained, so the cause ([Errno 111] Connection refused...) stays findable (app.outbound.errors).
        raise NewConnectionError(
            self, f"Failed to establish a new connection: {last_error}"
        ) from last_error


class _BoundedAdapter(HTTPAdapter):
    """An adapter whose pools use deadline-aware (and, with a resolver, guarded) connections."""

    def __init__(self, resolver: Resolver | None, allow_private: bool, **kwargs: Any) -> None:
        attrs: dict[str, Any] = {"guard_allow_private": allow_private}
        mixins: tuple[type, ...] = (_DeadlineMixin,)
        if resolver:
            attrs["guard_resolver"] = staticmethod(resolver)
            mixins = (_DeadlineMixin, _GuardMixin)
        http_conn = type("BoundedHTTPConnection", (*mixins, HTTPConnection), attrs)
        https_conn = type("BoundedHTTPSConnection", (*mixins, HTTPSConnection), attrs)
        self._pool_classes = {
            "http": type("BoundedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
            "https": type(
                "BoundedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}
            ),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes


def guarded_session(
    resolver: Resolver, allow_private: bool, pool_size: int = 16
) -> requests.Session:
    """A session for notifications: connect-time address checks, no proxies from the environment."""
    return _session(_BoundedAdapter(resolver, allow_private, pool_maxsize=pool_size, max_retries=0))


def operator_session(pool_size: int = 16) -> requests.Session:
    """A session for URLs the operator configured (the Slack Web API): deadlines, no address guard
    (``SLACK_API_URL`` may point at a local proxy or test server), no proxies from the environment."""
    return _session(_BoundedAdapter(None, True, pool_maxsize=pool_size, max_retries=0))


def _session(adapter: HTTPAdapter) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def refused_reason(exc: BaseException) -> str | None:
    """The guard's refusal inside a requests exception chain, or None if it was something else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, AddressRefused):
            return str(current).split(": ", 1)[-1]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
            continue
        args = getattr(current, "args", ())
        nested = next((a for a in args if isinstance(a, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    return None


def read_capped(response: requests.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of a streamed (``stream=True``) answer, and whether that was all of it.

    A complete answer gives its connection back to the pool; the rest of a longer one is never read:
    its connection is closed instead of drained (a 300 MB answer costs ``limit`` bytes).
    """
    raw = response.raw
    data = raw.read(limit + 1, decode_content=True) or b""
    complete = len(data) <= limit
    if complete:
        raw.release_conn()
    else:
        response.close()
    return data[:limit], complete
