"""Fault rules: which status requests misbehave, how, and how many times.

Rules are kept in creation order; the first rule matching a request wins and its count drops by
one (``count`` null means "until cleared"). Exhausted rules stay listed with ``remaining`` 0 so a
test can see that they fired. By default a rule applies to the three status endpoints only, never
to the neighbouring ones: an "analyse and watch" flow cannot consume a fault meant for polls. A
rule's ``endpoint`` field picks another endpoint (``ENDPOINTS``; ``any`` for all of them), and its
``access_key`` field limits it to requests signed with that key. Views list those two fields only
when given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from app.simulator.envelopes import INVALID_REQUEST, gateway_error_fields
from app.simulator.specs import (
    SpecError,
    read_bool,
    read_int,
    read_number,
    read_optional_str,
    reject_unknown,
    require_object,
)
from app.vocabulary import ApiGeneration

_COMMON_FIELDS = ("kind", "count", "asset_id", "generation", "endpoint", "access_key")
STATUS_ENDPOINT = "status"
ANY_ENDPOINT = "any"
#: What a rule's ``endpoint`` may name: each upstream route declares one of these.
ENDPOINTS = (
    STATUS_ENDPOINT,
    "index",
    "index-cancel",
    "list",
    "import",
    "import-status",
    "summary",
    "summary-status",
    "summary-cancel",
    ANY_ENDPOINT,
)
_MAX_COUNT = 1_000_000
_MAX_BODY_CHARS = 64 * 1024
DEFAULT_MALFORMED_BODY = "<html><body><h1>502 Bad Gateway</h1></body></html>"
DEFAULT_UNEXPECTED_BODY = {"code": "0", "message": "success", "data": {"state": "DONE"}}


@dataclass(frozen=True)
class FaultSpec:
    """A valid ``POST /_sim/faults`` body; ``params`` holds the kind's fields, defaults filled."""

    kind: str
    params: Mapping[str, Any]
    count: int | None = 1
    asset_id: str | None = None
    generation: ApiGeneration | None = None
    endpoint: str = STATUS_ENDPOINT
    access_key: str | None = None


@dataclass(frozen=True)
class FaultTarget:
    """What a request offers the rules to match: its endpoint, asset id (if any), generation (status
    requests only) and access key."""

    endpoint: str
    asset_id: str | None = None
    generation: ApiGeneration | None = None
    access_key: str | None = None


@dataclass(frozen=True)
class FiredFault:
    """The fault a request must suffer: what the request handler needs, detached from the book."""

    rule_id: str
    kind: str
    params: Mapping[str, Any]


@dataclass
class FaultRule:
    """One stored rule; mutable counters, guarded by whoever owns the ``FaultBook``."""

    id: str
    spec: FaultSpec
    remaining: int | None
    matched: int = 0

    def matches(self, target: FaultTarget) -> bool:
        """True if this rule still has uses and its filters accept the request."""
        spec = self.spec
        return (
            self.remaining != 0
            and spec.endpoint in (ANY_ENDPOINT, target.endpoint)
            and spec.asset_id in (None, target.asset_id)
            and spec.generation in (None, target.generation)
            and spec.access_key in (None, target.access_key)
        )

    def view(self) -> dict[str, Any]:
        """The JSON form used by the control API."""
        spec = self.spec
        return {
            "id": self.id,
            "kind": spec.kind,
            "count": spec.count,
            "remaining": self.remaining,
            "matched": self.matched,
            "asset_id": spec.asset_id,
            "generation": spec.generation.value if spec.generation else None,
            **({"endpoint": spec.endpoint} if spec.endpoint != STATUS_ENDPOINT else {}),
            **({"access_key": spec.access_key} if spec.access_key is not None else {}),
            **spec.params,
        }


@dataclass
class FaultBook:
    """The ordered rules. Not thread-safe: ``SimulatorState`` serialises every call."""

    rules: list[FaultRule] = field(default_factory=list)
    next_number: int = 1

    def add(self, spec: FaultSpec) -> FaultRule:
        """Store a rule after the existing ones; ids are ``flt_1``, ``flt_2``, ..."""
        rule = FaultRule(id=f"flt_{self.next_number}", spec=spec, remaining=spec.count)
        self.next_number += 1
        self.rules.append(rule)
        return rule

    def take(self, target: FaultTarget) -> FiredFault | None:
        """Consume one use of the first matching rule and return it, or None if none matches."""
        for rule in self.rules:
            if rule.matches(target):
                rule.matched += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                return FiredFault(rule.id, rule.spec.kind, rule.spec.params)
        return None

    def remove(self, rule_id: str) -> bool:
        """Drop one rule; False if there is none with that id."""
        kept = [rule for rule in self.rules if rule.id != rule_id]
        removed = len(kept) != len(self.rules)
        self.rules = kept
        return removed

    def clear(self) -> None:
        """Drop every rule (ids keep counting so an old id never names a new rule)."""
        self.rules = []


def parse_fault_spec(body: Any) -> FaultSpec:
    """Validate a ``POST /_sim/faults`` body; SpecError names the offending field."""
    body = require_object(body)
    kind = body.get("kind")
    parse_params = _KIND_PARSERS.get(kind) if isinstance(kind, str) else None
    if parse_params is None:
        raise SpecError(f"kind must be one of: {', '.join(_KIND_PARSERS)}")
    params_fields, parse = parse_params
    reject_unknown(body, (*_COMMON_FIELDS, *params_fields))
    count = (
        None if body.get("count", 1) is None else read_int(body, "count", 1, low=1, high=_MAX_COUNT)
    )
    asset_id = read_optional_str(body, "asset_id", None)
    generation = read_optional_str(body, "generation", None)
    if generation is not None and generation not in {g.value for g in ApiGeneration}:
        raise SpecError(f"generation must be one of: {', '.join(g.value for g in ApiGeneration)}")
    endpoint = body.get("endpoint", STATUS_ENDPOINT)
    if endpoint not in ENDPOINTS:
        raise SpecError(f"endpoint must be one of: {', '.join(ENDPOINTS)}")
    return FaultSpec(
        kind=kind,
        params=MappingProxyType(parse(body)),
        count=count,
        asset_id=asset_id,
        generation=ApiGeneration(generation) if generation else None,
        endpoint=endpoint,
        access_key=read_optional_str(body, "access_key", None),
    )


def _gateway_params(body: Mapping[str, Any], http_status: int) -> dict[str, Any]:
    default_code, default_message = gateway_error_fields(http_status)
    return {
        "status": http_status,
        "error_code": _read_code(body, "error_code", default_code),
        "message": _read_text(body, "message", default_message),
        "retry_after": _read_retry_after(body),
    }


def _http_error(body: Mapping[str, Any]) -> dict[str, Any]:
    return _gateway_params(body, read_int(body, "status", 503, low=400, high=599))


def _rate_limit(body: Mapping[str, Any]) -> dict[str, Any]:
    # errorCode 400/410/420 are all 429s (quota, throttle, rate limit); 420 unless told otherwise.
    return _gateway_params(body, 429)


def _auth(body: Mapping[str, Any]) -> dict[str, Any]:
    # errorCode 200 (authentication failed) unless told otherwise, e.g. 210 (permission denied).
    params = _gateway_params(body, 401)
    del params["retry_after"]
    return params


def _service_error(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": read_int(body, "status", 400, low=200, high=599),
        "code": _read_code(body, "code", INVALID_REQUEST[0]),
        "message": _read_text(body, "message", INVALID_REQUEST[1]),
        "wrapped": read_bool(body, "wrapped", False),
    }


def _slow(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"delay_seconds": read_number(body, "delay_seconds", 1.0, low=0, high=600)}


def _hold(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"timeout_seconds": read_number(body, "timeout_seconds", 60.0, low=0, high=3600)}


def _malformed(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "body": _read_text(body, "body", DEFAULT_MALFORMED_BODY),
        "content_type": _read_text(body, "content_type", "text/html; charset=utf-8"),
    }


def _unexpected(body: Mapping[str, Any]) -> dict[str, Any]:
    # Any JSON value: it arrived as JSON, so it can be sent back as JSON.
    return {"body": body.get("body", DEFAULT_UNEXPECTED_BODY)}


_Parser = Callable[[Mapping[str, Any]], dict[str, Any]]
_GATEWAY_FIELDS = ("error_code", "message", "retry_after")
_KIND_PARSERS: dict[str, tuple[tuple[str, ...], _Parser]] = {
    "http_error": (("status", *_GATEWAY_FIELDS), _http_error),
    "rate_limit": (_GATEWAY_FIELDS, _rate_limit),
    "auth": (("error_code", "message"), _auth),
    "service_error": (("status", "code", "message", "wrapped"), _service_error),
    "slow": (("delay_seconds",), _slow),
    "hold": (("timeout_seconds",), _hold),
    "malformed": (("body", "content_type"), _malformed),
    "unexpected": (("body",), _unexpected),
}
KINDS = tuple(_KIND_PARSERS)


def _read_code(body: Mapping[str, Any], name: str, default: str) -> str:
    # Codes are documented as integers and shown as strings: accept both, store the string.
    value = body.get(name, default)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 0 < len(value) <= 32:
        raise SpecError(f"{name} must be a short string or integer")
    return value


def _read_text(body: Mapping[str, Any], name: str, default: str) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or len(value) > _MAX_BODY_CHARS:
        raise SpecError(f"{name} must be a string of at most {_MAX_BODY_CHARS} characters")
    return value


def _read_retry_after(body: Mapping[str, Any]) -> str | None:
    # A header value: delta-seconds or an HTTP date (RFC 9110 10.2.3). Kept as given, so tests can
    # also send values a client must survive; only what cannot be a header line is refused.
    value = body.get("retry_after")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if value is None:
        return None
    if not isinstance(value, str) or not value.isprintable() or not value.isascii():
        raise SpecError('retry_after must be a header value string such as "5" or an HTTP date')
    if not 0 < len(value) <= 100:
        raise SpecError("retry_after must be 1 to 100 characters")
    return value
