"""``mi-bridge run``: the development server, configured like the ``web`` process.

Flask's own ``run`` knows nothing of the bridge's configuration. This one listens on ``PORT`` (default
5000) as gunicorn does, runs what gunicorn's ``post_worker_init`` runs (the embedded worker with
``BRIDGE_EMBEDDED_WORKER=true``, else the alert sentinel when ``BRIDGE_ALERT_TARGETS`` is set) and
prints its URL. Unlike gunicorn it binds ``127.0.0.1`` unless ``--host`` says otherwise: it is a
development server, never the production one.
"""

from __future__ import annotations

import errno
import signal
import socket

import click
from flask import Flask
from flask.cli import ScriptInfo, pass_script_info
from flask.helpers import get_debug_flag
from werkzeug.debug import DebuggedApplication
from werkzeug.serving import is_running_from_reloader, make_server, run_simple

from app.alerts.sentinel import start_sentinel, stop_sentinel
from app.services import services
from app.worker.embedded import start_embedded_worker, stop_embedded_worker

#: Addresses meaning "every interface": the URL printed names the loopback address instead.
_EVERY_INTERFACE = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}  # noqa: S104  (names, not a bind)


@click.command("run")
@click.option("--host", "-h", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", "-p", type=click.IntRange(0, 65535), default=None,
    help="Port to listen on (default: PORT, else 5000; 0 picks a free one).",
)  # fmt: skip
@click.option(
    "--reload/--no-reload",
    default=None,
    help="Restart when a source file changes (default: on with --debug).",
)
@click.option(
    "--debugger/--no-debugger",
    default=None,
    help="Werkzeug's interactive debugger on errors, which runs code from the browser: local use"
    " only (default: on with --debug).",
)
@pass_script_info
def run_command(
    info: ScriptInfo, host: str, port: int | None, reload: bool | None, debugger: bool | None
) -> None:
    """Run the web app on the development server (gunicorn serves production).

    With BRIDGE_EMBEDDED_WORKER=true it also runs the worker, as the web process does.
    """
    app = info.load_app()
    settings = services(app).settings
    port = settings.port if port is None else port
    debug = get_debug_flag()  # ``mi-bridge --debug run``, as with Flask's own ``run``
    reload = debug if reload is None else reload
    debugger = debug if debugger is None else debugger
    wsgi = DebuggedApplication(app, evalex=True) if debugger else app
    if reload:
        if not is_running_from_reloader():  # the watching parent: the child serves and works
            _listen(host, port).close()  # the one-line error if the port is taken
            _announce(host, port, app)
        else:
            _start_background(app)
        run_simple(host, port, wsgi, use_reloader=True, threaded=True)
        return
    listener = _listen(host, port)
    server = make_server(host, port, wsgi, threaded=True, fd=listener.fileno())
    listener.close()  # the server holds its own duplicate
    _start_background(app)
    _announce(host, server.port, app)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it like Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        stop_embedded_worker(app)
        stop_sentinel(app)


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``, or exit 1 with one line saying why it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "it is already in use (choose another port with --port or PORT)"
        else:
            reason = exc.strerror or str(exc)
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from None


def _start_background(app: Flask) -> None:
    """What gunicorn's ``post_worker_init`` starts in each web process (see gunicorn.conf.py)."""
    if services(app).settings.bridge_embedded_worker:
        start_embedded_worker(app)
    else:
        start_sentinel(app)  # only when BRIDGE_ALERT_TARGETS is set


def _announce(host: str, port: int, app: Flask) -> None:
    shown = _EVERY_INTERFACE.get(host, f"[{host}]" if ":" in host else host)
    if services(app).settings.bridge_embedded_worker:
        where = "with the embedded worker (Ctrl-C stops both)"
    else:
        where = "(no embedded worker: run `mi-bridge worker` beside it); Ctrl-C stops it"
    click.echo(f"mi-bridge: serving http://{shown}:{port}/ {where}")
