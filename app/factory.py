"""The application factory (Flask convention): ``create_app`` builds the web app; nothing runs at
import time. It is the top of the layers: it wires every entry point and service together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from pydantic import ValidationError
from werkzeug.middleware.proxy_fix import ProxyFix

from app.clock import Clock, utcnow
from app.config import ConfigError, Settings, load_settings
from app.db import init_db
from app.logs import configure_logging, install_request_ids
from app.notify.context import NotifierContext
from app.notify.slack import make_client as make_slack_client
from app.outbound.addresses import Resolver, system_resolver
from app.outbound.http import guarded_session
from app.services import Services
from app.watches.validation import (
    DefaultTargets,
    TargetIn,
    ValidationSettings,
    WebhookTargetIn,
)
from app.web.door import MAX_BODY_BYTES


def create_app(
    config: Settings | Mapping[str, Any] | None = None,
    *,
    resolver: Resolver = system_resolver,
    clock: Clock = utcnow,
    connect_resolver: Resolver | None = None,
) -> Flask:
    """Build the web application.

    ``config`` is either ready ``Settings`` or a mapping of variable names that override the
    environment (defaults < .env < environment < mapping). ``resolver`` (host names to addresses,
    for the outbound address guard) and ``clock`` (scheduling time, never wire time) are injectable
    for tests; ``connect_resolver`` (default: ``resolver``) is the one used when notifications
    connect. Raises ``ConfigError`` for bad values.
    """
    settings = config if isinstance(config, Settings) else load_settings(config)
    app = Flask(__name__, template_folder="templates", instance_path=_instance_path(settings))
    app.config["SECRET_KEY"] = (
        settings.secret_key.get_secret_value() if settings.secret_key else "development-only"
    )
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # Behind Heroku's router (or any one reverse proxy) trust exactly one X-Forwarded-* hop.
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # Flask's way to add WSGI middleware
        app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1
    )
    configure_logging(settings)
    install_request_ids(app)

    validation = ValidationSettings(
        resolver,
        settings.bridge_allow_private_urls,
        slack_configured=settings.slack_bot_token is not None,
    )
    Services(
        settings=settings,
        clock=clock,
        validation=validation,
        default_targets=_configured_targets(
            "BRIDGE_DEFAULT_TARGETS", settings.bridge_default_targets, validation
        ),
        alert_targets=_alert_targets(settings, validation),
        notifier=NotifierContext(
            http=guarded_session(connect_resolver or resolver, settings.bridge_allow_private_urls),
            slack=make_slack_client(
                settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None,
                settings.slack_api_url,
            ),
            public_url=settings.bridge_public_url,
            language=settings.bridge_language,
        ),
    ).install(app)
    init_db(app, settings.sqlalchemy_url)
    _register_blueprints(app)
    return app


def _register_blueprints(app: Flask) -> None:
    from app.api import deliveries, endpoints, feed, preview, watches  # noqa: F401  (routes register on import)
    from app.api.blueprint import api, install_error_handlers
    from app.api.docs import docs
    from app.dashboard import csrf, init_dashboard
    from app.ops.health import health
    from app.ops.metrics import metrics
    from app.web import headers, outage

    app.register_blueprint(health)
    app.register_blueprint(metrics)
    app.register_blueprint(docs)
    app.register_blueprint(api)
    init_dashboard(app)  # the dashboard blueprint, its CSRF protection and session cookie policy
    csrf.exempt(api)  # the API authenticates with bearer tokens, never with the session cookie
    install_error_handlers(app)
    outage.install(app)  # database outages: 503 and a line a minute (after the door's handlers)
    headers.install(app)  # nosniff, DENY framing, referrer policy, HSTS over HTTPS


def _configured_targets(
    name: str, targets: tuple[dict[str, Any], ...], validation: ValidationSettings
) -> tuple[TargetIn, ...]:
    """The targets of the setting ``name``, validated as a registration's (raises ConfigError)."""
    if not targets:
        return ()
    try:
        parsed = DefaultTargets.model_validate({"targets": list(targets)}, context=validation)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        where = "/".join(str(part) for part in error["loc"][1:])
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(name, f"{where}: {message}") from None
    return tuple(parsed.targets)


def _alert_targets(settings: Settings, validation: ValidationSettings) -> tuple[TargetIn, ...]:
    """``BRIDGE_ALERT_TARGETS``; a webhook among them needs its ``secret`` (nobody would ever see a
    generated one, so its receiver could not verify the alerts)."""
    targets = _configured_targets("BRIDGE_ALERT_TARGETS", settings.bridge_alert_targets, validation)
    for position, target in enumerate(targets):
        if isinstance(target, WebhookTargetIn) and target.secret is None:
            raise ConfigError(
                "BRIDGE_ALERT_TARGETS", f"{position}/secret: required for a webhook alert target"
            )
    return targets


def _instance_path(settings: Settings) -> str:
    return str(settings.bridge_instance_path.resolve())
