"""Bearer-token authentication of the API, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def token_matches(presented: str, accepted: Iterable[str]) -> bool:
    """True if ``presented`` equals one of ``accepted``.

    Every accepted token is compared, each with ``hmac.compare_digest`` over fixed-length digests, so
    the time taken says nothing about which token, or how much of one, matched.
    """
    presented_digest = hashlib.sha256(presented.encode("utf-8")).digest()
    matched = False
    for token in accepted:
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        matched |= hmac.compare_digest(presented_digest, digest)
    return matched


def token_fingerprint(token: str) -> str:
    """A stable, non-reversible name for a token (idempotency keys are kept per token)."""
    return hashlib.sha256(b"mi-bridge token:" + token.encode("utf-8")).hexdigest()
