"""The ``mi-bridge`` console script: a Flask CLI group over ``create_app`` plus the bridge's commands.

Flask's own commands (``run``, ``shell``, ``routes``) work as in any Flask app. Configuration errors
end every command with one line naming the variable and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys

import click
from flask.cli import FlaskGroup
from sqlalchemy.exc import OperationalError, ProgrammingError

from app.cli.housekeep import housekeep_command
from app.cli.upstream import upstream_status_command
from app.cli.watch import watch_group
from app.cli.worker import deliver_once_command, poll_once_command, worker_command
from app.config import ConfigError
from app.demo import demo_command
from app.factory import create_app
from app.simulator.cli import simulator_command

cli = FlaskGroup(
    create_app=create_app,
    load_dotenv=False,  # .env is read by the configuration module, once, with the same priority
    help="mi-bridge: callbacks for NAVER Cloud Media Intelligence analyses.",
)
cli.add_command(simulator_command, "simulator")
cli.add_command(upstream_status_command, "upstream-status")
cli.add_command(demo_command, "demo")
cli.add_command(watch_group)
cli.add_command(worker_command)
cli.add_command(poll_once_command)
cli.add_command(deliver_once_command)
cli.add_command(housekeep_command)


def main() -> None:
    """Entry point of the console script."""
    try:
        cli.main(prog_name="mi-bridge")
    except ConfigError as exc:
        click.echo(f"mi-bridge: {exc}", err=True)
        sys.exit(2)
    except (OperationalError, ProgrammingError) as exc:
        if not _schema_missing(exc):
            raise
        click.echo(
            "mi-bridge: the database has no schema yet: run `mi-bridge db upgrade`", err=True
        )
        sys.exit(1)


def _schema_missing(exc: Exception) -> bool:
    text = str(exc).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)
