"""The ``mi-bridge`` console script: a Flask CLI group over ``create_app`` plus the bridge's commands.

Flask's ``shell`` and ``routes`` work as in any Flask app; ``run`` is the bridge's own (``serve``:
``PORT``, the embedded worker, its URL printed). Configuration errors
end every command with one line naming the variable and exit status 2, never a traceback.
``mi-bridge --help`` and ``--version`` need no configuration: listing the commands never builds the
app (Flask's group would, to find commands registered on ``app.cli``; the bridge registers all of
its commands, Flask-Migrate's ``db`` included, on this group instead).
"""

from __future__ import annotations

import sys
from importlib import metadata

import click
from flask.cli import FlaskGroup
from flask_migrate.cli import db as migrate_commands
from sqlalchemy.exc import OperationalError, ProgrammingError

from app.cli.endpoint import endpoint_group
from app.cli.housekeep import housekeep_command
from app.cli.serve import run_command
from app.cli.upstream import upstream_status_command
from app.cli.watch import watch_group
from app.cli.worker import deliver_once_command, poll_once_command, worker_command
from app.config import ConfigError
from app.demo import demo_command
from app.factory import create_app
from app.simulator.cli import simulator_command


class BridgeGroup(FlaskGroup):
    """Flask's group, without loading the app to list commands (see the module doc)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(click.Group.list_commands(self, ctx))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return click.Group.get_command(self, ctx, name)


def bridge_version() -> str:
    """The installed distribution's version (``pyproject.toml``)."""
    try:
        return metadata.version("mi-bridge")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


cli = BridgeGroup(
    create_app=create_app,
    load_dotenv=False,  # .env is read by the configuration module, once, with the same priority
    add_version_option=False,  # Flask's would print Flask's version
    help="mi-bridge: callbacks for NAVER Cloud Media Intelligence analyses.",
)
cli = click.version_option(
    version=bridge_version(), prog_name="mi-bridge", message="%(prog)s %(version)s"
)(cli)
cli.add_command(migrate_commands, "db")
cli.add_command(run_command)  # replaces Flask's: PORT, the embedded worker, the URL
cli.add_command(simulator_command, "simulator")
cli.add_command(upstream_status_command, "upstream-status")
cli.add_command(demo_command, "demo")
cli.add_command(watch_group)
cli.add_command(endpoint_group)
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
