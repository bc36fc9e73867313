"""Gunicorn settings for the ``web`` process (Heroku conventions).

Binds ``0.0.0.0:$PORT`` (default 5000) with ``WEB_CONCURRENCY`` processes of ``GUNICORN_THREADS``
threads, each process reading requests whole before a thread serves them (slow clients hold no
thread: ``app.web.buffering``, docs/reliability.md "The front door"). The bridge's configuration is
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
# Slow clients (docs/reliability.md, "The front door"): gthread, but a thread is given a request
# only once its headers and body are all in; one that is not whole 10 s after the connection began
# waiting for it is answered 408. Idle and half-sent connections wait in the worker's event loop,
# up to worker_connections per process, each holding at most 32 KiB of head and 64 KiB of body.
worker_class = "app.web.buffering.BufferingWorker"
worker_connections = 250
timeout = 30
graceful_timeout = 25  # Heroku sends SIGKILL 30 s after SIGTERM
keepalive = 5  # seconds an idle kept-alive connection waits for its next request
limit_request_line = 4094  # bytes (gunicorn's default, explicit); longer is 414
limit_request_fields = 64  # header fields; more is 400 (the head is bounded at 32 KiB anyway)
limit_request_field_size = 8190  # bytes per field; longer is 431
accesslog = None  # the app logs requests itself, without secrets
logger_class = "app.web.gunicorn_logger.WebLogger"  # ... and gunicorn builds no access lines either
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
