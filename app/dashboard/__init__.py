"""The dashboard: watches, deliveries, endpoints and bridge health in the browser, for users and
on-call engineers.

It reads the same rows as the API and acts through the same domain functions (``register_watch``,
``stop_watch``, ``send_test``, ``retry_delivery``, ``app.endpoints.actions``). Sign-in is with one
of ``BRIDGE_API_TOKENS``; the session cookie is HttpOnly, SameSite=Lax and Secure whenever the
request came over HTTPS (one ``X-Forwarded-Proto`` hop is trusted through ProxyFix). Every form
carries a Flask-WTF CSRF token; the API blueprint is exempt, since it authenticates with bearer
tokens and never with the cookie.
"""

from __future__ import annotations

from datetime import timedelta

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response as BaseResponse

dashboard = Blueprint("dashboard", __name__)
csrf = CSRFProtect()

#: How long a dashboard sign-in lasts (and its CSRF tokens with it).
SESSION_LIFETIME = timedelta(hours=12)

#: Everything comes from this origin: the stylesheet and script are ours, nothing inline.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


class DashboardSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions whose ``Secure`` flag follows the request's scheme.

    Behind a TLS-terminating proxy ``request.is_secure`` is true through ProxyFix, so the cookie is
    never sent back over plain HTTP; local plain-HTTP use (development, tests) still works.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """A new empty session when the request carries no session cookie (every API call): the
        same as Flask's answer, without building a signing serializer first."""
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        """True when the current request arrived over HTTPS (directly or through the proxy)."""
        if has_request_context() and request.is_secure:
            return True
        return super().get_cookie_secure(app)


def init_dashboard(app: Flask) -> None:
    """Attach the dashboard to ``app``: session cookie policy, CSRF protection, routes, filters."""
    from app.dashboard import (  # noqa: F401  (routes register on import)
        actions,
        attention,
        auth,
        endpoint_actions,
        endpoint_pages,
        formatting,
        health,
        preview_views,
        registering,
        watch_views,
    )

    app.config["SESSION_COOKIE_NAME"] = "mi_bridge_session"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_LIFETIME
    app.config["WTF_CSRF_TIME_LIMIT"] = int(SESSION_LIFETIME.total_seconds())
    app.session_interface = DashboardSessionInterface()
    csrf.init_app(app)
    formatting.install_filters(app)
    app.register_blueprint(dashboard)
    app.add_url_rule("/favicon.ico", "favicon", _favicon)  # outside the sign-in gate
    app.register_error_handler(CSRFError, _csrf_refused)


def _favicon() -> BaseResponse:
    """``/favicon.ico``, which browsers and tools ask for unprompted: the dashboard's SVG icon."""
    return redirect(url_for("static", filename="favicon.svg"), 301)


@dashboard.after_request
def _page_headers(response: Response) -> Response:
    """Same-origin-only CSP, no sniffing, no caching of pages that show operational data."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _csrf_refused(exc: CSRFError) -> tuple[Response, int]:
    """A form post without a valid CSRF token: 400 with a page that says what to do."""
    body = render_template("dashboard/csrf_error.html", reason=exc.description)
    response = Response(body, mimetype="text/html")
    return _page_headers(response), 400
