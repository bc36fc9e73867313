"""Dashboard sign-in with an API token, the gate in front of every dashboard page, and sign-out.

The signed cookie names a server-side session row (``dashboard_sessions``) and keeps a fingerprint
of the token, never the token. Each request checks that the row exists and has not expired, and the
fingerprint against the tokens configured now: signing out deletes the row, so a copied cookie stops
working, and removing a token from ``BRIDGE_API_TOKENS`` ends its sessions. Wrong tokens are
throttled per client address (``app.web.throttle``).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from flask import (
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import delete
from werkzeug.wrappers import Response

from app.dashboard import SESSION_LIFETIME, dashboard
from app.db import db
from app.models import DashboardSession
from app.services import services
from app.web.auth import token_fingerprint
from app.web.throttle import check_token, too_many

SESSION_KEY = "signed_in_as"
#: The server-side session row the cookie names.
SESSION_ID_KEY = "session_id"
#: Views anyone may reach: the sign-in page itself.
PUBLIC_ENDPOINTS = frozenset({"dashboard.login"})
#: Views fetched by the page's script: they answer 401 instead of redirecting to the sign-in page.
LIVE_ENDPOINTS = frozenset({"dashboard.watches_live", "dashboard.watch_live"})


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (``/...``), else None.

    Refuses absolute and scheme-relative URLs (``//host``), backslash tricks browsers read as
    ``//`` (``/\\host``), and control characters, so ``next=`` can never send a user elsewhere.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if "\\" in target or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def signed_in() -> bool:
    """True when the session names a live server-side session of a token still accepted
    (looked up once per request)."""
    if "dashboard_signed_in" in g:
        return bool(g.dashboard_signed_in)
    g.dashboard_signed_in = _session_is_live()
    return bool(g.dashboard_signed_in)


def _session_is_live() -> bool:
    fingerprint, session_id = session.get(SESSION_KEY), session.get(SESSION_ID_KEY)
    if not isinstance(fingerprint, str) or not isinstance(session_id, str):
        return False
    matched = False
    for token in services().settings.api_tokens():
        matched |= hmac.compare_digest(fingerprint, token_fingerprint(token))
    if not matched:
        return False
    row = db.session.get(DashboardSession, session_id)
    return (
        row is not None
        and row.token_fingerprint == fingerprint  # both from the signed cookie and our row
        and row.expires_at > services().clock()
    )


@dashboard.before_request
def _require_sign_in() -> Response | tuple[str, int] | None:
    """Send anonymous visitors to the sign-in page (with ``next=``); live fragments get 401."""
    if request.endpoint in PUBLIC_ENDPOINTS or signed_in():
        return None
    if request.endpoint in LIVE_ENDPOINTS:
        return "sign in again", 401
    next_path = request.full_path if request.query_string else request.path
    return redirect(url_for("dashboard.login", next=next_path))


@dashboard.context_processor
def _sign_in_state() -> dict[str, bool]:
    return {"signed_in": signed_in() if has_request_context() else False}


@dashboard.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    """The sign-in form; a valid API token starts a session and goes on to ``next`` (same site)."""
    next_path = safe_next(request.values.get("next")) or url_for("dashboard.watches")
    if request.method == "GET":
        if signed_in():
            return redirect(next_path)
        return render_template("dashboard/login.html", next_path=next_path, error=None)
    token = request.form.get("token", "")
    now = services().clock()
    verdict = None  # an empty form is not a guess: never counted, never throttled
    if token:
        verdict = check_token(db.session, token, services().settings.api_tokens(), now)
    if verdict is not None and verdict.throttled:
        page = render_template("dashboard/login.html", next_path=next_path, error=too_many(verdict))
        return Response(page, 429, {"Retry-After": str(verdict.retry_after)})
    if verdict is None or not verdict.accepted:
        error = "That token is not accepted. Use one of the bridge's API tokens."
        return render_template("dashboard/login.html", next_path=next_path, error=error), 401
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = token_fingerprint(token)
    session[SESSION_ID_KEY] = _start_session(session[SESSION_KEY], now)
    return redirect(next_path)


def _start_session(fingerprint: str, now: datetime) -> str:
    """Store a new server-side session and return its id; sessions that ended are deleted here,
    so the table holds only the sign-ins of the last ``SESSION_LIFETIME``."""
    session_id = secrets.token_urlsafe(32)
    db.session.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))
    db.session.add(
        DashboardSession(
            id=session_id,
            token_fingerprint=fingerprint,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    db.session.commit()
    return session_id


@dashboard.post("/logout")
def logout() -> Response:
    """End the session (POST only, with its CSRF token) and show the sign-in page. The server-side
    row goes too: the same cookie, kept or copied, no longer signs anyone in."""
    session_id = session.get(SESSION_ID_KEY)
    if isinstance(session_id, str):
        db.session.execute(delete(DashboardSession).where(DashboardSession.id == session_id))
        db.session.commit()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("dashboard.login"))
