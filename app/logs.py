"""Logging: JSON lines with request ids in production, readable lines in development, never a secret.

A redaction filter on the root handler masks anything that looks like a credential (Slack tokens,
``whsec_`` secrets, incoming-webhook paths, signature headers) and every configured secret value,
whatever logger or library produced the line.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterable

from flask import Flask, Response, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

from app.config import Settings

REDACTED = "****"
_PATTERNS = (
    re.compile(r"xox[a-z]-[A-Za-z0-9-]+"),  # Slack tokens
    re.compile(r"whsec_[A-Za-z0-9+/=]+"),  # Standard Webhooks secrets
    re.compile(r"(?<=/services/)[A-Za-z0-9/_-]+"),  # Slack incoming-webhook credentials
    re.compile(r"v1,[A-Za-z0-9+/]{43}="),  # webhook signatures (HMAC-SHA256, base64)
    re.compile(r"(?i)(?<=signature-v2.: .)[A-Za-z0-9+/]{43}="),  # NCP signatures in header dumps
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/=-]+"),
)


class RedactingFilter(logging.Filter):
    """Masks secret-looking text and the given secret values in every record's final message."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            text = pattern.sub(REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self.redact(message), ()
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            # Formatters re-render exc_info when it is set (python-json-logger always does),
            # which would print the traceback unredacted: leave them only the redacted text.
            record.exc_info = None
        record.request_id = g.get("request_id") if has_request_context() else None
        return True


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret value of the configuration (masked wherever it would appear)."""
    values = list(settings.api_tokens())
    for secret in (settings.ncp_secret_key, settings.slack_bot_token, settings.secret_key):
        if secret is not None:
            values.append(secret.get_secret_value())
    values += [pair.secret_key.get_secret_value() for pair in settings.ncp_credentials.values()]
    return values


def configure_logging(settings: Settings) -> None:
    """Install the root handler once per process: JSON in production, text in development."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "mi_bridge", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.mi_bridge = True  # type: ignore[attr-defined]  # marks ours, for the next call to find
    if settings.development:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    handler.addFilter(RedactingFilter(configured_secrets(settings)))
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    quiet = (
        "werkzeug",
        "urllib3",
        "alembic.runtime.plugins",
        "apscheduler.executors.default",
        "apscheduler.scheduler",
    )
    for noisy in quiet:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def install_request_ids(app: Flask) -> None:
    """Give every request an id (Heroku's ``X-Request-ID`` when present) and log one line per request."""
    log = logging.getLogger("app.requests")

    @app.before_request
    def _request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = (
            incoming if re.fullmatch(r"[A-Za-z0-9._-]{8,200}", incoming) else uuid.uuid4().hex
        )

    @app.after_request
    def _log_request(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        log.info("%s %s %s", request.method, request.path, response.status_code)
        return response
