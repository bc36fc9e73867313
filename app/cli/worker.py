"""``mi-bridge worker`` and ``mi-bridge poll-once``."""

from __future__ import annotations

import json
from dataclasses import asdict

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.worker.delivery import deliver_once
from app.worker.heartbeat import beat
from app.worker.polling import poll_once
from app.worker.runtime import DATABASE_CHECK_SECONDS, WorkerRuntime
from app.worker.scheduler import run_worker


@click.command("worker")
@click.option(
    "--database-check-seconds",
    type=click.FloatRange(min=0.1),
    default=DATABASE_CHECK_SECONDS,
    show_default=True,
    help="Seconds between checks while the database is away or has no schema yet.",
)
@with_appcontext
def worker_command(database_check_seconds: float) -> None:
    """Run the worker: poll due watches and deliver notifications until SIGTERM.

    It starts its jobs once the database answers with this code's schema (run ``mi-bridge db
    upgrade`` before or after starting it), and pauses them whenever the database goes away.
    """
    runtime = WorkerRuntime.from_app(_this_app())
    runtime.database_check_seconds = database_check_seconds
    run_worker(runtime)


@click.command("poll-once")
@with_appcontext
def poll_once_command() -> None:
    """Run one poll tick now and print what it did (JSON)."""
    runtime = WorkerRuntime.from_app(_this_app(), kind="cli")
    try:
        report = poll_once(runtime)
        beat(runtime)
    finally:
        runtime.close()
    click.echo(json.dumps(asdict(report)))


@click.command("deliver-once")
@with_appcontext
def deliver_once_command() -> None:
    """Run one delivery tick now and print what it did (JSON)."""
    runtime = WorkerRuntime.from_app(_this_app(), kind="cli")
    try:
        report = deliver_once(runtime)
        beat(runtime)
    finally:
        runtime.close()
    click.echo(json.dumps(asdict(report)))


def _this_app() -> Flask:
    """The application itself behind ``current_app``: worker threads outlive the command's context."""
    # Flask types current_app as Flask, so mypy does not see the proxy's method.
    return current_app._get_current_object()  # type: ignore[attr-defined]  # see above
