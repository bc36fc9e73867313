"""Security headers on every answer (pages, API, docs, health): what a browser is told about us.

Views may set their own first (the dashboard's and the docs' Content-Security-Policy, for one);
these are defaults. HSTS is sent only over HTTPS (directly, or through the one trusted proxy hop):
a plain-HTTP development server must stay reachable.
"""

from __future__ import annotations

from flask import Flask, Response, request

#: One year, subdomains left alone: the bridge does not own its parent domain's policy.
HSTS = "max-age=31536000"
DEFAULTS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def install(app: Flask) -> None:
    """Add the defaults to every response of ``app``."""
    app.after_request(_security_headers)


def _security_headers(response: Response) -> Response:
    for name, value in DEFAULTS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response
