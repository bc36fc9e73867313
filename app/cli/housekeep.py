"""``mi-bridge housekeep``: one housekeeping pass now, as the worker runs every few minutes."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from app.db import db
from app.services import services
from app.worker.housekeeping import housekeeping_pass, pause_ratio_for
from app.worker.retention import WATCH_BATCH


@click.command("housekeep")
@click.option("--json", "as_json", is_flag=True, help="Print the rows removed by table as JSON.")
@with_appcontext
def housekeep_command(as_json: bool) -> None:
    """Remove what retention and housekeeping would remove now, and print what went."""
    settings = services().settings
    days = settings.bridge_retention_days

    def progress(batch: dict[str, int]) -> None:
        if not as_json:
            click.echo(f"batch: {batch.get('watches', 0)} watches and their rows removed")

    session = db.session()
    report = housekeeping_pass(
        session,
        services().clock,
        days,
        batch_size=WATCH_BATCH,
        on_batch=progress,
        pause_ratio=pause_ratio_for(session),  # workers may be writing too
    )
    if as_json:
        click.echo(json.dumps({"removed": dict(report.removed), "batches": len(report.batches)}))
        return
    kept = "every watch kept (BRIDGE_RETENTION_DAYS=0)" if not days else f"retention {days:g} days"
    if not report.total:
        click.echo(f"nothing to remove ({kept})")
        return
    click.echo(f"removed ({kept}):")
    for table, count in sorted(report.removed.items()):
        click.echo(f"  {table}: {count}")
