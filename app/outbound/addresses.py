"""The outbound address guard: webhook and Slack-webhook URLs may only reach globally routable hosts.

Checks run on *resolved* addresses, never by parsing host strings: ``getaddrinfo`` already turns
decimal, octal and hex spellings (``2130706433``, ``0x7f.1``) into the address they mean. The same
check runs at registration and again at connect time on the address actually connected to, because
DNS can change in between. ``BRIDGE_ALLOW_PRIVATE_URLS`` turns the address part off (never the
scheme and host part).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``resolver(host, port)`` returns the addresses a name resolves to; raises ``socket.gaierror``.
Resolver = Callable[[str, int], Iterable[str]]

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class BlockedAddress(ValueError):
    """A URL that must not be contacted; ``str()`` says why without echoing secrets in its path."""


@dataclass(frozen=True)
class Destination:
    """A checked URL: its scheme, host and port."""

    scheme: str
    host: str
    port: int


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``), every address it returns; an IP literal
    in its standard form is its own answer (no call out, as ``getaddrinfo`` would answer it)."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass  # a name, or a legacy IPv4 form (``127.1``) that only getaddrinfo reads
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def blocked_reason(address: str) -> str | None:
    """Why ``address`` (an IP literal) is not globally routable, or None when it may be contacted."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = blocked_reason(str(embedded))
        return f"{reason} (embedded in {ip})" if reason else None
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address (includes cloud metadata services)"
    if ip.is_multicast:
        return "multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "carrier-grade NAT address (100.64.0.0/10)"
    if ip.is_private:
        return "private address"
    if ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "address that is not globally routable"
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address carried inside an IPv4-mapped, NAT64 or 6to4 IPv6 address."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in network for network in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


def parse_destination(url: str) -> Destination:
    """Scheme, host and port of an outbound URL; ``BlockedAddress`` unless it is http(s) with a host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BlockedAddress(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise BlockedAddress("must be an http or https URL")
    if not parts.hostname:
        raise BlockedAddress("must name a host")
    if parts.username is not None or parts.password is not None:
        raise BlockedAddress("must not carry credentials before the host")
    default_port = 443 if parts.scheme == "https" else 80
    return Destination(parts.scheme, parts.hostname, port or default_port)


def check_url(
    url: str, *, resolver: Resolver = system_resolver, allow_private: bool = False
) -> Destination:
    """Check a URL at registration: raises ``BlockedAddress`` for a refused one.

    A host that does not resolve is accepted here: the connect-time check is the one that matters.
    """
    destination = parse_destination(url)
    if allow_private:
        return destination
    try:
        addresses = list(resolver(destination.host, destination.port))
    except (socket.gaierror, UnicodeError):
        return destination
    check_addresses(addresses)
    return destination


def check_addresses(addresses: Iterable[str]) -> None:
    """Raise ``BlockedAddress`` if any of ``addresses`` is not globally routable."""
    for address in addresses:
        reason = blocked_reason(address)
        if reason:
            raise BlockedAddress(f"resolves to a {reason}: {address}")
