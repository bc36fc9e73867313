"""Wrong tokens are throttled per client address: the API, ``/metrics`` and the dashboard sign-in.

After ``MAX_FAILURES`` wrong tokens from one address, each less than ``WINDOW`` after the one before,
that address gets ``429`` with ``Retry-After`` for every token, the right one included (otherwise a
guess that answers 200 instead of 429 would tell the attacker it was right), until ``WINDOW`` after
its last counted failure: the right token works again within 60 s. Requests refused while throttled
are not counted, so nobody is locked out for longer than that. No token at all is not a guess and
is not counted. A success does not reset the count: behind a shared address, a busy legitimate
client would otherwise give a guesser unlimited tries.

Counts live in the database (``auth_failures``), so every web process and thread shares one budget
(an in-process counter would multiply it by the number of processes); each wrong token is counted
with one atomic ``UPDATE``, so concurrent failures are never lost. The table holds one row per
address that failed within ``RETENTION``: rows older than that are deleted whenever a new address
is counted. Tokens are compared in constant time (``app.web.auth.token_matches``).

A wrong token always reads its address's row afresh: one primary-key read, one cached SQL text, on
PostgreSQL outside the request's transaction. The right token, the success path every client takes
on every request, reuses that read for up to ``FRESH_FOR`` (``RecentReads``, one per app, so per
process): it costs no round trip at all on a busy address. The one thing this gives up: for up
to ``FRESH_FOR`` after an address becomes throttled, a right token from it can still be answered
200 by a process that read its row before (through counts of another process, or of another
thread meanwhile). A wrong token is never judged on a kept read, so the guesses counted stay at
``MAX_FAILURES`` a window, and a throttled row read afresh is kept, so a process answers 429 to
the right token too from its first fresh read of the throttle on: an attacker gains at most the
guesses that reach a process before any of its wrong ones do, in that first second.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Response, current_app, request
from sqlalchemy import Integer, case, delete, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session

from app.db import autocommit_connection, db
from app.models import AuthFailure
from app.models.base import UTCDateTime
from app.services import services
from app.web.auth import bearer_token, token_matches
from app.web.problems import problem

#: Wrong tokens from one address, each within ``WINDOW`` of the previous, before it is throttled.
MAX_FAILURES = 10
#: How long a throttled address waits after its last counted failure (the contract's 60 s).
WINDOW = timedelta(seconds=60)
#: How long an address's row is kept after its last failure (then deleted by the next new address).
RETENTION = timedelta(minutes=10)
#: How long a read of an address's row answers that address's right tokens (see module doc).
FRESH_FOR = timedelta(seconds=1)


@dataclass(frozen=True)
class Verdict:
    """The token was accepted, refused, or not even looked at (``retry_after`` seconds to wait)."""

    accepted: bool
    retry_after: int | None = None

    @property
    def throttled(self) -> bool:
        """True when the address must wait ``retry_after`` seconds, whatever the token."""
        return self.retry_after is not None


def too_many(verdict: Verdict) -> str:
    """What a throttled client is told."""
    return f"too many wrong tokens from this address: try again in {verdict.retry_after} s"


def client_address() -> str:
    """The client's address as the app sees it (``ProxyFix`` trusts one proxy hop); IPv6 clients
    are counted per /64, the block one subscriber usually holds, so rotating addresses within it
    buys no extra guesses."""
    address = request.remote_addr or "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is None:
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False))
    return str(getattr(parsed, "ipv4_mapped", None) or parsed)


#: A session, or the request's scoped session (made only when a statement needs it: a right token
#: judged on a kept read runs none).
AnySession = Session | scoped_session[Any]
#: (failures, last failure) of an address's ``auth_failures`` row; None when it has none.
FailureRow = tuple[int, datetime] | None


class RecentReads:
    """The rows read lately, per client address, each with the (scheduling) time it was read.

    One per app (``recent_reads()``). Plain dict operations, atomic under the GIL: threads may
    race to store a read, and any of them is as good. Bounded: past ``MAX_ADDRESSES`` entries the
    whole dict is dropped (reads are a second's worth of work to redo)."""

    MAX_ADDRESSES = 10_000

    def __init__(self) -> None:
        self._reads: dict[str, tuple[FailureRow, datetime]] = {}

    def get(self, client: str, now: datetime) -> tuple[bool, FailureRow]:
        """(True, row) when ``client``'s row was read less than ``FRESH_FOR`` before ``now``."""
        kept = self._reads.get(client)
        if kept is None or not timedelta(0) <= now - kept[1] < FRESH_FOR:
            return False, None
        return True, kept[0]

    def put(self, client: str, row: FailureRow, now: datetime) -> None:
        if len(self._reads) >= self.MAX_ADDRESSES:
            self._reads.clear()
        self._reads[client] = (row, now)

    def forget(self, client: str) -> None:
        self._reads.pop(client, None)


_RECENT_READS = "mi_bridge.throttle_reads"


def recent_reads() -> RecentReads:
    """The current app's ``RecentReads`` (made on first use)."""
    return cast(RecentReads, current_app.extensions.setdefault(_RECENT_READS, RecentReads()))


def check_token(
    session: AnySession,
    presented: str,
    accepted: tuple[str, ...],
    now: datetime,
    *,
    max_failures: int = MAX_FAILURES,
    window: timedelta = WINDOW,
) -> Verdict:
    """Refuse a throttled address whatever its token; else compare. A wrong token is judged on a
    fresh read and counted (and committed) at once; the right one may be judged on a read made
    less than ``FRESH_FOR`` ago (module doc)."""
    client = client_address()
    reads = recent_reads()
    right = token_matches(presented, accepted)
    kept, row = reads.get(client, now) if right else (False, None)
    if not kept:
        row = _failures_of(session, client)
    wait = _throttled_for(row, now, max_failures, window)
    if not kept and (right or wait is not None):
        # A wrong token's fresh read is kept only when throttled: otherwise it is counted next,
        # which changes the row.
        reads.put(client, row, now)
    if wait is not None:
        return Verdict(accepted=False, retry_after=wait)
    if right:
        return Verdict(accepted=True)
    reads.forget(client)
    _count_failure(session, client, now, window, known=row is not None)
    return Verdict(accepted=False)


def _throttled_for(
    row: FailureRow, now: datetime, max_failures: int, window: timedelta
) -> int | None:
    """Whole seconds ``row``'s address must still wait; None when it is not throttled."""
    if row is None or row[0] < max_failures or now - row[1] >= window:
        return None
    return max(1, math.ceil((row[1] + window - now).total_seconds()))


_FAILURES = text("SELECT failures, last_at FROM auth_failures WHERE client = :client").columns(
    failures=Integer(), last_at=UTCDateTime()
)


def _failures_of(session: AnySession, client: str) -> FailureRow:
    """(failures, last failure) of ``client``'s row, None without one."""
    current: Session = session() if isinstance(session, scoped_session) else session
    bind = current.get_bind()
    if bind.dialect.name == "postgresql" and not current.in_transaction():
        with autocommit_connection(bind.engine) as connection:  # no BEGIN, no transaction
            row = connection.execute(_FAILURES, {"client": client}).first()
    else:
        row = current.execute(_FAILURES, {"client": client}).first()
    return None if row is None else (row[0], row[1])


def _count_failure(
    session: AnySession, client: str, now: datetime, window: timedelta, *, known: bool
) -> None:
    if known and _increment(session, client, now, window):
        session.commit()
        return
    session.execute(delete(AuthFailure).where(AuthFailure.last_at < now - RETENTION))
    session.add(AuthFailure(client=client, failures=1, first_at=now, last_at=now))
    try:
        session.commit()
    except IntegrityError:  # another process counted this address's first failure meanwhile
        session.rollback()
        _increment(session, client, now, window)
        session.commit()


def _increment(session: AnySession, client: str, now: datetime, window: timedelta) -> bool:
    """One more failure for ``client``, in one statement (a chain older than ``window`` starts
    over at 1); False when it has no row."""
    ended = AuthFailure.last_at <= now - window
    statement = (
        update(AuthFailure)
        .where(AuthFailure.client == client)
        .values(
            failures=case((ended, 1), else_=AuthFailure.failures + 1),
            first_at=case((ended, now), else_=AuthFailure.first_at),
            last_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def bearer_refusal(
    authorization: str | None, unauthorized: Callable[[], Response]
) -> Response | None:
    """The answer to a request whose ``Authorization`` header is not an accepted bearer token
    (``429`` while its address is throttled, else ``unauthorized()``); None when it is accepted."""
    token = bearer_token(authorization)
    if token is None:
        return unauthorized()
    verdict = check_token(db.session, token, services().settings.api_tokens(), services().clock())
    if verdict.throttled:
        return problem(429, too_many(verdict), headers={"Retry-After": str(verdict.retry_after)})
    return None if verdict.accepted else unauthorized()
