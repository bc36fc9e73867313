"""``mi-bridge upstream-status``: one signed status request, for checking credentials and assets."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click
from flask.cli import with_appcontext

from app.services import services
from app.upstream.accounts import accounts_of
from app.upstream.client import MediaIntelligenceClient
from app.upstream.outcomes import PollOutcome
from app.vocabulary import ApiGeneration


@click.command()
@click.argument("workspace")
@click.argument("project_id")
@click.argument("asset_id")
@click.option(
    "--api",
    "generation",
    type=click.Choice([g.value for g in ApiGeneration]),
    default=None,
    help="Status endpoint generation (default: MI_DEFAULT_API).",
)
@with_appcontext
def upstream_status_command(
    workspace: str, project_id: str, asset_id: str, generation: str | None
) -> None:
    """Ask Media Intelligence for one asset's analysis status and print the classified answer.

    Exits 0 when a status was observed, 1 otherwise (authentication, not found, errors).
    """
    settings = services().settings
    accounts = accounts_of(settings)
    if not accounts.account_for(workspace).configured:
        raise click.UsageError(
            "set NCP_ACCESS_KEY and NCP_SECRET_KEY first (or an NCP_CREDENTIALS entry for it)"
        )
    chosen = ApiGeneration(generation or settings.mi_default_api)
    with MediaIntelligenceClient(settings.mi_api_url, accounts=accounts) as client:
        result = client.get_status(workspace, project_id, asset_id, chosen)
    report = {key: value for key, value in asdict(result).items() if value is not None}
    report["duration"] = round(result.duration, 3)
    click.echo(json.dumps(report, ensure_ascii=False))
    sys.exit(0 if result.outcome is PollOutcome.STATUS else 1)
