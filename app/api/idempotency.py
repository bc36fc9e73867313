"""``Idempotency-Key``: a retried POST returns the original answer; a reused key with another body is 409.

Keys are kept 24 hours per API token. The key row is written in the same transaction as the work it
guards, and first, so two concurrent requests with one key produce one watch: the second waits on
the first's row and then replays it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from app.models import IdempotencyKey

KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredAnswer:
    """A response to replay."""

    status_code: int
    body: str
    location: str | None


class KeyReused(Exception):
    """The key was used before with a different request body."""


def valid_key(key: str) -> bool:
    """Printable ASCII, 1 to 255 characters."""
    return 0 < len(key) <= MAX_KEY_LENGTH and all(" " <= ch <= "~" for ch in key)


def request_hash(payload: Any) -> str:
    """A digest of the request body's meaning (key order and whitespace do not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def find_answer(
    session: Session, fingerprint: str, key: str, digest: str, now: datetime
) -> StoredAnswer | None:
    """The stored answer for this key, None if unused (or expired); ``KeyReused`` on a body mismatch."""
    row = session.get(IdempotencyKey, (fingerprint, key))
    if row is None:
        return None
    if row.expires_at <= now:
        session.delete(row)
        session.flush()
        return None
    if row.request_hash != digest:
        raise KeyReused(key)
    return StoredAnswer(row.status_code, row.body, row.location)


def reserve(
    session: Session, fingerprint: str, key: str, digest: str, now: datetime
) -> IdempotencyKey:
    """Insert the key row now (flushes, so a concurrent duplicate conflicts here, not later)."""
    row = IdempotencyKey(
        token_fingerprint=fingerprint,
        key=key,
        request_hash=digest,
        status_code=0,
        body="",
        location=None,
        created_at=now,
        expires_at=now + KEY_LIFETIME,
    )
    session.add(row)
    session.flush()
    return row


def lookup_row(session: Session, fingerprint: str, key: str) -> IdempotencyKey | None:
    """The key row as committed by someone else (after a conflict)."""
    return session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.token_fingerprint == fingerprint, IdempotencyKey.key == key
        )
    ).one_or_none()


#: The stored answer of a key reserved by ``app.watches.register_statement`` (its row is written
#: with ``status_code`` 0 and an empty body, in this transaction).
_STORE_ANSWER = (
    "UPDATE idempotency_keys SET status_code = %(status)s, body = %(body)s,"
    " location = %(location)s WHERE token_fingerprint = %(fp)s AND key = %(key)s"
)


def store_answer(
    connection: Connection, fingerprint: str, key: str, status: int, body: str, location: str
) -> None:
    """Write the answer to replay into the key row this transaction reserved (not committed)."""
    connection.exec_driver_sql(
        _STORE_ANSWER,
        {"status": status, "body": body, "location": location, "fp": fingerprint, "key": key},
    )
