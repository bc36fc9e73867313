"""``mi-bridge simulator``: run the Media Intelligence simulator in the foreground.

A plain click command: it needs none of the bridge's configuration, so it works on a fresh machine.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click
from click.core import ParameterSource

from app.simulator.credentials import ALL_WORKSPACES
from app.simulator.server import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, SimulatorServer
from app.simulator.settings import SimConfig
from app.simulator.state import SimulatorState


@click.command("simulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8090,
    show_default=True,
    help="Port to listen on (0 picks a free one).",
)
@click.option(
    "--access-key",
    envvar="NCP_ACCESS_KEY",
    show_envvar=True,
    default=DEMO_ACCESS_KEY,
    show_default=True,
    help="Access key to accept.",
)
@click.option(
    "--secret-key",
    envvar="NCP_SECRET_KEY",
    show_envvar=True,
    default=DEMO_SECRET_KEY,
    show_default=True,
    help="Secret key that signs requests made with the access key.",
)
@click.option(
    "--extra-key",
    "extra_keys",
    multiple=True,
    metavar="ACCESS:SECRET[:WS,...]",
    callback=lambda _ctx, _param, values: [parse_extra_key(value) for value in values],
    help="Another key pair to accept, for the listed workspaces only (default: all). Repeatable.",
)
@click.option(
    "--no-auto-create",
    is_flag=True,
    help="Answer 404 for unknown assets instead of creating them on first request.",
)
@click.option("--verbose", is_flag=True, help="Log every request and why any was refused.")
@click.pass_context
def simulator_command(
    ctx: click.Context,
    host: str,
    port: int,
    access_key: str,
    secret_key: str,
    extra_keys: list[tuple[str, str, list[str]]],
    no_auto_create: bool,
    verbose: bool,
) -> None:
    """Run a local Media Intelligence simulator until Ctrl-C or SIGTERM.

    Point the bridge's MI_API_URL at the printed base URL and sign with the same keys. Shape what
    it answers with the JSON control API under /_sim (see the README).
    """
    sources = _key_sources(ctx)
    if access_key == "" or secret_key == "":
        raise click.UsageError("the access key and the secret key must not be empty")
    demo = {name for name, source in sources.items() if source == "demo"}
    if len(demo) == 1:
        raise click.UsageError(
            "give both keys (options or NCP_ACCESS_KEY and NCP_SECRET_KEY) or neither "
            "(the demo pair)"
        )
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    state = SimulatorState(SimConfig(auto_create=not no_auto_create))
    server = SimulatorServer(host, port, state, access_key, secret_key, verbose=verbose)
    for extra_access, extra_secret, workspaces in extra_keys:
        state.add_credentials(extra_access, extra_secret, workspaces)
    try:
        server.start()
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from exc
    _print_banner(server, access_key, secret_key, sources, state.config, extra_keys)
    _serve_until_stopped(server)


def parse_extra_key(value: str) -> tuple[str, str, list[str]]:
    """``ACCESS:SECRET[:WS,...]`` as (access key, secret key, workspaces); BadParameter if not."""
    access_key, _, rest = value.partition(":")
    secret_key, _, listed = rest.partition(":")
    workspaces = [name for name in listed.split(",") if name] if listed else [ALL_WORKSPACES]
    if not access_key or not secret_key or not workspaces:
        raise click.BadParameter(
            "expected ACCESS:SECRET or ACCESS:SECRET:WORKSPACE,WORKSPACE", param_hint="--extra-key"
        )
    return access_key, secret_key, workspaces


def _key_sources(ctx: click.Context) -> dict[str, str]:
    # get_parameter_source answers None for a parameter it knows nothing of: "demo" too.
    names: dict[ParameterSource | None, str] = {
        ParameterSource.ENVIRONMENT: "environment",
        ParameterSource.COMMANDLINE: "command line",
    }
    return {
        key: names.get(ctx.get_parameter_source(key), "demo")
        for key in ("access_key", "secret_key")
    }


def mask_secret(secret: str) -> str:
    """The secret's last four characters at most, and only when it is long enough to spare them."""
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def _print_banner(
    server: SimulatorServer,
    access_key: str,
    secret_key: str,
    sources: dict[str, str],
    config: SimConfig,
    extra_keys: list[tuple[str, str, list[str]]],
) -> None:
    origin = {
        "demo": "the documented demo pair",
        "environment": "from NCP_ACCESS_KEY/NCP_SECRET_KEY",
        "command line": "from the command line",
    }
    schedule = config.default_schedule
    assets = (
        f"created on first request ({schedule.wait_seconds:g} s waiting, "
        f"{schedule.analyze_seconds:g} s analysing, then {schedule.outcome})"
        if config.auto_create
        else "404 until created through the control API"
    )
    lines = [
        f"Media Intelligence simulator listening on {server.url}",
        f"  API base URL:   {server.url}  (the bridge's MI_API_URL)",
        f"  control API:    {server.url}/_sim  (e.g. GET /_sim/stats)",
        f"  access key:     {access_key}  ({origin[sources['access_key']]})",
        f"  secret key:     {mask_secret(secret_key)}  ({origin[sources['secret_key']]})",
        f"  unknown assets: {assets}",
        *(
            f"  extra key:      {extra_access}  (secret {mask_secret(extra_secret)}; "
            f"workspaces {', '.join(workspaces)})"
            for extra_access, extra_secret, workspaces in extra_keys
        ),
        "Press Ctrl-C to stop.",
    ]
    for line in lines:
        click.echo(line)


def _serve_until_stopped(server: SimulatorServer) -> None:
    stop = threading.Event()

    def on_sigterm(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        # A timed wait keeps the main thread responsive to Ctrl-C on every platform.
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
    click.echo("Simulator stopped.")
