"""``Idempotency-Key``: a retried POST returns the original answer; a reused key with another body is 409.

Keys are kept 24 hours per API token. The key row is written in the same transaction as the work it
guards (the ORM path: first; the one-statement registration: in that statement), so two concurrent
requests with one key produce one watch: the second waits on the first's row and then replays it.
A row written by the one-statement registration holds the values its answer is rendered from
(``answer_parts``) instead of the answer's text: the same text on every replay.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import IdempotencyKey
from app.resources.watches import registered_watch_json
from app.watches import register_statement

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
    if row.answer_parts is not None:  # stored by the one-statement registration: rendered
        watch = register_statement.watch_from_parts(row.answer_parts)
        return StoredAnswer(row.status_code, json.dumps(registered_watch_json(watch)), row.location)
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
