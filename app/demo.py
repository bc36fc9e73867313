"""``mi-bridge demo``: the whole bridge on one machine, no credentials, the simulator standing in for NCP.

For now the demo starts the simulator and the web app, gives the simulator sample assets that complete,
fail, get cancelled and ride out transient upstream errors, and follows them through the real upstream
client. Later the bridge's own watches and notifications take over the following.
"""

from __future__ import annotations

import secrets
import signal
import threading
import time
from dataclasses import dataclass

import click
import requests
from werkzeug.serving import make_server

from app import create_app
from app.simulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, SimulatorServer
from app.upstream.client import MediaIntelligenceClient
from app.upstream.generations import Generation
from app.upstream.outcomes import PollOutcome
from app.upstream.statuses import is_terminal

DEMO_WORKSPACE = "demo-workspace"
DEMO_PROJECT = "1001"


@dataclass(frozen=True)
class SampleAsset:
    """A simulated asset and the outcome the demo expects it to reach."""

    asset_id: str
    schedule: dict
    expected: str
    faults: tuple[dict, ...] = ()


SAMPLES = (
    SampleAsset(
        "clip-completes",
        {"wait_seconds": 3, "analyze_seconds": 8, "outcome": "ANALYZE_COMPLETED", "index_id": 4242},
        "ANALYZE_COMPLETED",
    ),
    SampleAsset(
        "clip-fails",
        {
            "wait_seconds": 2,
            "analyze_seconds": 10,
            "outcome": "ANALYZE_FAIL",
            "message": "video parsing failure",
        },
        "ANALYZE_FAIL",
    ),
    SampleAsset(
        "clip-cancelled",
        {"wait_seconds": 5, "analyze_seconds": 6, "outcome": "ANALYZE_CANCEL"},
        "ANALYZE_CANCEL",
    ),
    SampleAsset(
        "clip-flaky-upstream",
        {
            "wait_seconds": 4,
            "analyze_seconds": 12,
            "outcome": "ANALYZE_COMPLETED",
            "index_id": 4343,
        },
        "ANALYZE_COMPLETED",
        faults=(
            {"kind": "http_error", "status": 503, "count": 3},
            {"kind": "rate_limit", "retry_after": "2", "count": 1},
        ),
    ),
)


@click.command()
@click.option(
    "--for",
    "run_for",
    type=click.FloatRange(min=1),
    default=None,
    help="Run unattended for this many seconds; exit 1 unless every sample reached its end.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5000,
    show_default=True,
    help="Port of the web app.",
)
@click.option(
    "--simulator-port",
    type=click.IntRange(0, 65535),
    default=8090,
    show_default=True,
    help="Port of the Media Intelligence simulator.",
)
def demo_command(run_for: float | None, port: int, simulator_port: int) -> None:
    """Start the simulator and the bridge locally and follow sample analyses to their ends."""
    simulator = SimulatorServer(
        port=simulator_port, access_key=DEMO_ACCESS_KEY, secret_key=DEMO_SECRET_KEY
    )
    simulator.start()
    token = secrets.token_urlsafe(24)
    app = create_app(
        {
            "BRIDGE_ENV": "development",
            "SECRET_KEY": secrets.token_hex(32),
            "BRIDGE_API_TOKENS": token,
            "MI_API_URL": simulator.url,
            "NCP_ACCESS_KEY": DEMO_ACCESS_KEY,
            "NCP_SECRET_KEY": DEMO_SECRET_KEY,
            "BRIDGE_INSTANCE_PATH": "instance/demo",
        }
    )
    web = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=web.serve_forever, name="demo-web", daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        _seed(simulator.url)
        click.echo(f"Simulator:  {simulator.url}  (access key {DEMO_ACCESS_KEY})")
        click.echo(f"Web app:    http://127.0.0.1:{web.server_port}/healthz")
        click.echo(f"API token:  {token}")
        click.echo("Following sample analyses (Ctrl-C to stop)...")
        reached = _follow(simulator.url, stop, run_for)
    except KeyboardInterrupt:
        reached = None
    finally:
        web.shutdown()
        simulator.stop()
    if run_for is not None:
        missing = [
            s.asset_id for s in SAMPLES if reached is None or reached.get(s.asset_id) != s.expected
        ]
        if missing:
            raise click.ClickException(f"these samples did not reach their expected end: {missing}")
        click.echo(f"All {len(SAMPLES)} sample analyses reached their expected ends.")


def _seed(simulator_url: str) -> None:
    """Create the sample assets and their faults through the simulator's public control API."""
    with requests.Session() as http:
        for sample in SAMPLES:
            path = f"{simulator_url}/_sim/assets/{DEMO_WORKSPACE}/{DEMO_PROJECT}/{sample.asset_id}"
            http.put(path, json=sample.schedule, timeout=5).raise_for_status()
            for fault in sample.faults:
                body = {**fault, "asset_id": sample.asset_id}
                http.post(f"{simulator_url}/_sim/faults", json=body, timeout=5).raise_for_status()


def _follow(simulator_url: str, stop: threading.Event, run_for: float | None) -> dict[str, str]:
    """Poll every sample once a second, printing each change; return the terminal statuses seen."""
    last: dict[str, str] = {}
    shown: dict[str, str] = {}
    deadline = None if run_for is None else time.monotonic() + run_for
    with MediaIntelligenceClient(simulator_url, DEMO_ACCESS_KEY, DEMO_SECRET_KEY) as client:
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            for sample in SAMPLES:
                if is_terminal(last.get(sample.asset_id)):
                    continue
                result = client.get_status(
                    DEMO_WORKSPACE, DEMO_PROJECT, sample.asset_id, Generation.INDEX
                )
                seen = (
                    result.status if result.outcome is PollOutcome.STATUS else result.outcome.value
                )
                if shown.get(sample.asset_id) != seen:
                    shown[sample.asset_id] = seen
                    click.echo(f"  {sample.asset_id:<22} {seen}  {result.detail or ''}".rstrip())
                if result.outcome is PollOutcome.STATUS:
                    last[sample.asset_id] = seen
            if all(is_terminal(last.get(s.asset_id)) for s in SAMPLES) and run_for is not None:
                break
            stop.wait(1.0)
    return last
