"""``mi-bridge demo``: the whole product on one machine, without credentials, in about a minute.

Starts the Media Intelligence simulator, the web app with the embedded worker on a fresh SQLite
database, the demo's webhook inbox and Slack stand-in (served by the same app), and registers sample
watches whose assets complete, fail, get cancelled, ride out upstream errors and fall forward from a
retired endpoint generation. Prints the dashboard URL and the API token.
"""

from __future__ import annotations

import errno
import secrets
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import click
import requests
from flask import Flask
from flask_migrate import upgrade
from werkzeug.serving import make_server

from app.demo.samples import (
    BUCKET,
    IMPORT_SECONDS,
    PROJECT,
    RETIRED_GENERATION,
    SAMPLES,
    WORKSPACE,
    Sample,
)
from app.demo.standins import SLACK_TOKEN, DemoConfig, install_standins
from app.factory import create_app
from app.notify.webhook import generate_secret
from app.simulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, SimulatorServer

INSTANCE = Path("instance/demo")


@click.command()
@click.option(
    "--for",
    "run_for",
    type=click.FloatRange(min=1),
    default=None,
    help="Run unattended this many seconds at most; exit 1 unless every sample ended as expected.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,
    show_default=True,
    help="Port of the web app (0 picks a free one).",
)
@click.option(
    "--simulator-port",
    type=click.IntRange(0, 65535),
    default=8090,
    show_default=True,
    help="Port of the Media Intelligence simulator (0 picks a free one).",
)
def demo_command(run_for: float | None, port: int, simulator_port: int) -> None:
    """Run the simulator, the bridge and its stand-ins locally, with sample watches."""
    listener = _listen(port, "the web app", "--port")
    simulator = SimulatorServer(
        port=simulator_port, access_key=DEMO_ACCESS_KEY, secret_key=DEMO_SECRET_KEY
    )
    try:
        simulator.start()
    except OSError as exc:
        listener.close()
        raise _cannot_listen(simulator_port, "the simulator", "--simulator-port", exc) from None
    token = secrets.token_urlsafe(18)
    # No app yet: building it needs this server's port. ``web.app`` is set below, before serving.
    web = make_server("127.0.0.1", port, None, threaded=True, fd=listener.fileno())  # type: ignore[arg-type]  # see above
    listener.close()  # the server holds its own duplicate
    base_url = f"http://127.0.0.1:{web.port}"
    webhook_secret = generate_secret()
    config = DemoConfig(webhook_secret, fail_first={"analysis.failed"})
    app = _demo_app(simulator.url, base_url, token, config)
    web.app = app
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C (even when started in the background)
        signal.signal(signum, lambda *_: stop.set())
    threading.Thread(target=web.serve_forever, name="demo-web", daemon=True).start()
    from app.worker.embedded import start_embedded_worker, stop_embedded_worker

    start_embedded_worker(app)
    try:
        _seed_simulator(simulator.url)
        watch_ids = _register(base_url, token, webhook_secret)
        _banner(base_url, simulator.url, token)
        ok = _follow(app, watch_ids, stop, run_for)
    except KeyboardInterrupt:
        ok = None
    finally:
        stop_embedded_worker(app)
        web.shutdown()
        simulator.stop()
    if run_for is not None:
        if not ok:
            raise click.ClickException("not every sample watch reached its expected end in time")
        click.echo(
            f"All {len(SAMPLES)} sample watches reached their expected ends; notifications delivered."
        )


def _listen(port: int, what: str, option: str) -> socket.socket:
    """A socket listening on ``127.0.0.1:port``, or a one-line error saying why there is none."""
    try:
        return socket.create_server(("127.0.0.1", port))
    except OSError as exc:
        raise _cannot_listen(port, what, option, exc) from None


def _cannot_listen(port: int, what: str, option: str, exc: OSError) -> click.ClickException:
    """The one line ``demo`` ends with when ``what`` cannot have its port (werkzeug would say two
    lines and the simulator a traceback)."""
    reason = "it is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
    return click.ClickException(
        f"cannot listen on 127.0.0.1:{port} for {what}: {reason}"
        f" (choose another port with {option}; 0 picks a free one)"
    )


def _demo_app(simulator_url: str, base_url: str, token: str, config: DemoConfig) -> Flask:
    INSTANCE.mkdir(parents=True, exist_ok=True)
    for leftover in INSTANCE.glob("mi-bridge.db*"):
        leftover.unlink()  # every demo starts from an empty database
    app = create_app({
        "BRIDGE_ENV": "development", "SECRET_KEY": secrets.token_hex(32), "BRIDGE_API_TOKENS": token,
        "DATABASE_URL": f"sqlite:///{(INSTANCE / 'mi-bridge.db').resolve()}",
        "MI_API_URL": simulator_url, "NCP_ACCESS_KEY": DEMO_ACCESS_KEY, "NCP_SECRET_KEY": DEMO_SECRET_KEY,
        "MI_DEFAULT_API": "index", "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_API_URL": f"{base_url}/demo/slack/api/",
        "BRIDGE_PUBLIC_URL": base_url, "BRIDGE_ALLOW_PRIVATE_URLS": "true",
        "BRIDGE_POLL_INTERVAL": "1", "BRIDGE_POLL_MAX_INTERVAL": "4", "BRIDGE_RETRY_SCHEDULE": "1,2,5,10",
        "BRIDGE_LEASE_SECONDS": "20", "LOG_LEVEL": "WARNING",
    })  # fmt: skip
    install_standins(app, config)
    with app.app_context():
        upgrade()
    return app


def _seed_simulator(simulator_url: str) -> None:
    """Shape the simulated assets through the simulator's public control API."""
    with requests.Session() as http:
        generation, status = RETIRED_GENERATION
        http.put(f"{simulator_url}/_sim/generations/{generation}",
                 json={"enabled": False, "status_code": status}, timeout=5).raise_for_status()  # fmt: skip
        for sample in SAMPLES:
            if sample.import_key is not None:  # the bridge imports it: declare the object
                body = {"import_seconds": IMPORT_SECONDS, "analysis": sample.schedule}
                path = f"{simulator_url}/_sim/objects/{BUCKET}/{sample.import_key}"
                http.put(path, json=body, timeout=5).raise_for_status()
                continue
            path = f"{simulator_url}/_sim/assets/{WORKSPACE}/{PROJECT}/{sample.asset_id}"
            http.put(path, json=sample.schedule, timeout=5).raise_for_status()
            for fault in sample.faults:
                body = {**fault, "asset_id": sample.asset_id}
                http.post(f"{simulator_url}/_sim/faults", json=body, timeout=5).raise_for_status()


def _register(base_url: str, token: str, webhook_secret: str) -> dict[str, Sample]:
    """Register one watch per sample through the bridge's own API, as a user would."""
    headers = {"Authorization": f"Bearer {token}"}
    targets = demo_targets(base_url, webhook_secret)
    watch_ids: dict[str, Sample] = {}
    with requests.Session() as http:
        for sample in SAMPLES:
            body: dict[str, Any] = {
                "workspace": WORKSPACE, "project_id": PROJECT, "asset_id": sample.asset_id,
                "api": sample.api, "labels": sample.labels,
                "events": ["analysis.completed", "analysis.failed", "analysis.cancelled",
                           "analysis.status_changed", "watch.expired", "watch.error"],
                "targets": [targets[name] for name in sample.targets],
            }  # fmt: skip
            if sample.import_key is not None:
                del body["asset_id"]
                body.update({"import": {"bucket_name": BUCKET, "key": sample.import_key},
                             "analyze": {}, "summarize": {}})  # fmt: skip
            response = http.post(
                f"{base_url}/api/v1/watches", json=body, headers=headers, timeout=10
            )
            response.raise_for_status()
            watch_ids[response.json()["id"]] = sample
    return watch_ids


def demo_targets(base_url: str, webhook_secret: str) -> dict[str, dict[str, Any]]:
    """The targets sample watches notify, by the names ``Sample.targets`` uses: the webhook inbox,
    the Slack stand-in in English and in Korean, and an ``http`` target (a chat tool's incoming
    webhook, in Japanese) posting to the demo's chat inbox."""
    return {
        "inbox": {"type": "webhook", "url": f"{base_url}/demo/inbox/main", "secret": webhook_secret},
        "slack": {"type": "slack", "channel": "demo-analyses"},
        "slack_ko": {"type": "slack", "channel": "demo-analyses-ko", "language": "ko"},
        "chat": {
            "type": "http", "url": f"{base_url}/demo/chat/team", "secret": webhook_secret,
            "language": "ja", "headers": {"X-Demo-Event": "{{ event.type }}"},
            "body": CHAT_BODY,
        },
    }  # fmt: skip


#: The chat target's body template: a chat tool's ``text`` plus the fields a bot would use.
CHAT_BODY = (
    '{"text": "{{ message }}", "asset": "{{ asset.asset_id }}",'
    ' "status": "{{ analysis.status }}", "labels": {{ labels | tojson }},'
    ' "link": "{{ dashboard_url }}"}'
)


def _banner(base_url: str, simulator_url: str, token: str) -> None:
    click.echo(f"""
mi-bridge demo is running.

  Dashboard      {base_url}/        (sign in with the API token below)
  API token      {token}
  Webhook inbox  {base_url}/demo/inbox      Slack stand-in  {base_url}/demo/slack
  Chat inbox     {base_url}/demo/chat       (an http target's posts, in Japanese)
  API            {base_url}/api/v1/watches  (docs: {base_url}/docs)
  Simulator      {simulator_url}/_sim/assets

Sample analyses complete, fail, get cancelled, ride out upstream errors and fall forward from a
retired endpoint generation over the next minute; one is imported, analysed and summarised by the
bridge itself. Press Ctrl-C to stop.
""")


def _follow(
    app: Flask, watch_ids: dict[str, Sample], stop: threading.Event, run_for: float | None
) -> bool:
    """Print each sample's state changes; True once every sample ended as expected, all delivered."""
    from app.demo.progress import sample_states

    deadline = None if run_for is None else time.monotonic() + run_for
    shown: dict[str, str] = {}
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
        states, delivered = sample_states(app, list(watch_ids))
        for watch_id, state in states.items():
            if shown.get(watch_id) != state:
                shown[watch_id] = state
                click.echo(f"  {watch_ids[watch_id].asset_id:<22} {state}")
        done = all(states.get(w) == s.expected_state for w, s in watch_ids.items())
        if done and delivered and run_for is not None:
            return True
        stop.wait(1.0)
    return False
