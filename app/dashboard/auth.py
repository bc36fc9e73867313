"""Dashboard sign-in with an API token, the gate in front of every dashboard page, and sign-out.

The session keeps a fingerprint of the token, never the token. Each request checks the fingerprint
against the tokens configured now, so removing a token from ``BRIDGE_API_TOKENS`` ends its sessions.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import (
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from app.dashboard import dashboard
from app.services import services
from app.web.auth import token_fingerprint, token_matches

SESSION_KEY = "signed_in_as"
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
    """True when the session names a token that is still accepted."""
    fingerprint = session.get(SESSION_KEY)
    if not isinstance(fingerprint, str):
        return False
    matched = False
    for token in services().settings.api_tokens():
        matched |= hmac.compare_digest(fingerprint, token_fingerprint(token))
    return matched


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
    if not token or not token_matches(token, services().settings.api_tokens()):
        error = "That token is not accepted. Use one of the bridge's API tokens."
        return render_template("dashboard/login.html", next_path=next_path, error=error), 401
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = token_fingerprint(token)
    return redirect(next_path)


@dashboard.post("/logout")
def logout() -> Response:
    """End the session (POST only, with its CSRF token) and show the sign-in page."""
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("dashboard.login"))
