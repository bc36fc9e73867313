"""Gunicorn's logger for the ``web`` process, without its access log.

The app logs one line per request itself (``app.logs.install_request_ids``: request id, no
secrets). Gunicorn's own access log is off (``accesslog = None``), yet because ``gunicorn.conf.py``
sets ``logconfig_dict`` (for its start and worker lines as JSON), gunicorn still builds every
request's access-log atoms and a log record that no handler writes: ~0.2 ms of CPU a request under
load. This logger skips that work; everything else is gunicorn's.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]


class WebLogger(Logger):
    """Gunicorn's logger, with ``access`` a no-op."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Nothing: requests are logged by the app."""
