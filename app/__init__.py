"""mi-bridge: a callback bridge for NAVER Cloud Media Intelligence.

``create_app`` is the application factory (Flask convention): nothing runs at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import Settings, load_settings

SETTINGS_KEY = "MI_BRIDGE_SETTINGS"


def create_app(config: Settings | Mapping[str, Any] | None = None) -> Flask:
    """Build the web application.

    ``config`` is either ready ``Settings`` or a mapping of variable names that override the
    environment (defaults < .env < environment < mapping). Raises ``ConfigError`` for bad values.
    """
    settings = config if isinstance(config, Settings) else load_settings(config)
    app = Flask(__name__, template_folder="../templates", instance_path=_instance_path(settings))
    app.config[SETTINGS_KEY] = settings
    app.config["SECRET_KEY"] = (
        settings.secret_key.get_secret_value() if settings.secret_key else "development-only"
    )
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    # Behind Heroku's router (or any one reverse proxy) trust exactly one X-Forwarded-* hop.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1)  # type: ignore[method-assign]
    logging.getLogger("app").setLevel(settings.log_level)

    from app.web.health import health

    app.register_blueprint(health)
    return app


def current_settings() -> Settings:
    """The settings of the application handling the current request or CLI command."""
    return current_app.config[SETTINGS_KEY]


def _instance_path(settings: Settings) -> str:
    return str(settings.bridge_instance_path.resolve())
