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
from app.worker.runtime import WorkerRuntime
from app.worker.scheduler import run_worker


@click.command("worker")
@with_appcontext
def worker_command() -> None:
    """Run the worker: poll due watches and deliver notifications until SIGTERM."""
    run_worker(WorkerRuntime.from_app(_this_app()))


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
