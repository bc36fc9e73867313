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
is counted. The success path costs one primary-key read: one cached SQL text, on PostgreSQL outside
the request's transaction (autocommit: no ``BEGIN`` for it; the request's own statements begin
theirs). Tokens are compared in constant time (``app.web.auth.token_matches``).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Response, request
from sqlalchemy import Integer, case, delete, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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


def check_token(
    session: Session,
    presented: str,
    accepted: tuple[str, ...],
    now: datetime,
    *,
    max_failures: int = MAX_FAILURES,
    window: timedelta = WINDOW,
) -> Verdict:
    """Throttle first, then compare; a wrong token is counted (and committed) at once."""
    client = client_address()
    row = _failures_of(session, client)
    if row is not None and row[0] >= max_failures and now - row[1] < window:
        wait = (row[1] + window - now).total_seconds()
        return Verdict(accepted=False, retry_after=max(1, math.ceil(wait)))
    if token_matches(presented, accepted):
        return Verdict(accepted=True)
    _count_failure(session, client, now, window, known=row is not None)
    return Verdict(accepted=False)


_FAILURES = text("SELECT failures, last_at FROM auth_failures WHERE client = :client").columns(
    failures=Integer(), last_at=UTCDateTime()
)


def _failures_of(session: Session, client: str) -> tuple[int, datetime] | None:
    """(failures, last failure) of ``client``'s row, None without one."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql" and not session.in_transaction():
        with autocommit_connection(bind.engine) as connection:  # no BEGIN, no transaction
            row = connection.execute(_FAILURES, {"client": client}).first()
    else:
        row = session.execute(_FAILURES, {"client": client}).first()
    return None if row is None else (row[0], row[1])


def _count_failure(
    session: Session, client: str, now: datetime, window: timedelta, *, known: bool
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


def _increment(session: Session, client: str, now: datetime, window: timedelta) -> bool:
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
    verdict = check_token(db.session(), token, services().settings.api_tokens(), services().clock())
    if verdict.throttled:
        return problem(429, too_many(verdict), headers={"Retry-After": str(verdict.retry_after)})
    return None if verdict.accepted else unauthorized()
