"""Gunicorn settings for the ``web`` process (Heroku conventions).

Binds ``0.0.0.0:$PORT`` (default 5000) with ``WEB_CONCURRENCY`` workers. The bridge's configuration is
validated when gunicorn reads this file, before any worker forks: a bad variable stops gunicorn with
one line naming it. With ``BRIDGE_EMBEDDED_WORKER=true`` each gunicorn worker also runs the worker's
scheduler, started after the fork (leases coordinate the copies).
"""

import os
import sys

from app.config import ConfigError, load_settings

try:
    _settings = load_settings()
except ConfigError as exc:
    print(f"mi-bridge: {exc}", file=sys.stderr)
    sys.exit(2)

bind = f"0.0.0.0:{_settings.port}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 25  # Heroku sends SIGKILL 30 s after SIGTERM
keepalive = 5
accesslog = None  # the app logs requests itself, without secrets
control_socket_disable = True  # gunicorn 27 would share one control socket between apps
if not _settings.development:
    # gunicorn's own lines (start, stop, worker boots) as JSON and redacted, like the app's. The root
    # logger is left to the app (configure_logging), so app lines are written once, redacted.
    from app.logs import configured_secrets

    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": _settings.log_level, "handlers": []},
        "filters": {
            "redact": {"()": "app.logs.RedactingFilter", "secrets": configured_secrets(_settings)}
        },
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False},
        },
    }


def on_starting(server):
    """Log what this deployment runs with (the configuration was validated on load)."""
    server.log.info(
        "mi-bridge web: env=%s embedded_worker=%s database=%s",
        _settings.bridge_env,
        _settings.bridge_embedded_worker,
        _settings.sqlalchemy_url.split(":", 1)[0],
    )


def post_worker_init(worker):
    """Start the embedded scheduler in this gunicorn worker (after the fork) when configured;
    else, with BRIDGE_ALERT_TARGETS set, the alert sentinel (alerts reach their targets even when
    no worker runs)."""
    if _settings.bridge_embedded_worker:
        from app.worker.embedded import start_embedded_worker

        start_embedded_worker(worker.wsgi)
    elif _settings.bridge_alert_targets:
        from app.alerts.sentinel import start_sentinel

        start_sentinel(worker.wsgi)
