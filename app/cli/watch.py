"""``mi-bridge watch add|list|show|stop``: manage watches on the database directly, like the worker.

Input is validated by the API's own schema and registered by the API's own domain functions, so a
command line registration is refused, accepted and shaped exactly as ``POST /api/v1/watches`` would.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, NoReturn

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.cli import watch_output as cli_output
from app.cli.watch_follow import NoWorkerHint, progress
from app.db import db
from app.models import USER_WATCHES, Watch
from app.resources.watches import watch_list, watch_resource
from app.services import services
from app.vocabulary import (
    DEFAULT_EVENTS,
    ENDED_STATES,
    SUBSCRIBABLE_EVENTS,
    WATCH_STATES,
    ApiGeneration,
    EventType,
    Language,
    WatchState,
)
from app.watches.queries import deliveries_by_watch, find_watch, load_watches
from app.watches.registration import register_watch, stop_watch
from app.watches.validation import InvalidWatch, WatchCreate, validate_watch

DEFAULT_LIST_LIMIT = 50
#: Exit status of a command ended by SIGINT (128 + 2), as shells report it.
EXIT_INTERRUPTED = 130
INVALID_INPUT = 2


@click.group("watch")
def watch_group() -> None:
    """Register, list, show and stop watches (on the database, without the web process)."""


def _parse_labels(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE")
        if key in labels:
            raise click.BadParameter(f"label {key!r} is given twice")
        labels[key] = text
    return labels


def _payload(options: dict[str, Any]) -> dict[str, Any]:
    """The ``POST /api/v1/watches`` body these options describe (absent options stay absent)."""
    webhooks, secret = options["webhook"], options["webhook_secret"]
    if secret is not None and len(webhooks) != 1:
        raise click.UsageError("--webhook-secret needs exactly one --webhook to belong to")
    targets: list[dict[str, Any]] = [{"type": "webhook", "url": url} for url in webhooks]
    if secret is not None:
        targets[0]["secret"] = secret
    message = _message_options(options)
    targets += [{"type": "slack", "channel": channel, **message} for channel in options["slack"]]
    targets += [
        {"type": "slack_webhook", "url": url, **message} for url in options["slack_webhook"]
    ]
    targets += [{"endpoint": name} for name in options["endpoint"]]
    payload: dict[str, Any] = {
        "workspace": options["workspace"],
        "project_id": options["project_id"],
    }
    optional = {
        "asset_id": options["asset_id"],
        "import": _object(options["import_object"]),
        "analyze": _work_options(options["analyze"], options["analyze_options"], "--analyze"),
        "summarize": _work_options(
            options["summarize"], options["summarize_options"], "--summarize"
        ),
        "stalled_after_seconds": options["stalled_after"],
        "api": options["api"],
        "targets": targets or None,
        "events": _events(options),
        "labels": options["label"] or None,
        "timeout_seconds": options["timeout"],
    }
    payload.update({name: value for name, value in optional.items() if value is not None})
    return payload


def _events(options: dict[str, Any]) -> list[str] | None:
    """``--event`` options; ``--stalled-after`` alone subscribes the default events and
    ``analysis.stalled`` (it asks for that event)."""
    events = list(options["event"])
    if options["stalled_after"] is not None and not events:
        events = [*map(str, DEFAULT_EVENTS), str(EventType.ANALYSIS_STALLED)]
    return events or None


def _object(given: str | None) -> dict[str, str] | None:
    """``--import BUCKET/KEY`` as the API's ``import`` object (the key may hold more slashes)."""
    if given is None:
        return None
    bucket, slash, key = given.partition("/")
    if not (bucket and slash and key):
        raise click.BadParameter(f"{given!r} is not BUCKET/KEY", param_hint="--import")
    return {"bucket_name": bucket, "key": key}


def _work_options(asked: bool, given: str | None, flag: str) -> dict[str, Any] | None:
    """``--analyze``/``--summarize`` with their ``--...-options JSON`` (an object, passed on)."""
    if given is None:
        return {} if asked else None
    try:
        options = json.loads(given)
    except ValueError:
        raise click.BadParameter("is not JSON", param_hint=f"{flag}-options") from None
    if not isinstance(options, dict):
        raise click.BadParameter("must be a JSON object", param_hint=f"{flag}-options")
    return options


def _message_options(options: dict[str, Any]) -> dict[str, str]:
    """``template`` and ``language`` of the Slack targets (absent options stay absent)."""
    if (options["template"] or options["language"]) and not (
        options["slack"] or options["slack_webhook"]
    ):
        raise click.UsageError("--template and --language need a --slack or --slack-webhook")
    message = {"template": options["template"].read() if options["template"] else None}
    message["language"] = options["language"]
    return {name: value for name, value in message.items() if value is not None}


def _refuse(errors: list[dict[str, str]]) -> NoReturn:
    for error in errors:
        click.echo(f"{error['pointer']}: {error['detail']}", err=True)
    sys.exit(INVALID_INPUT)


def _validated(payload: dict[str, Any]) -> WatchCreate:
    """The registration, or exit 2 with the API's 422 errors, one ``#/pointer: detail`` a line."""
    try:
        return validate_watch(payload, services().validation, bool(services().default_targets))
    except InvalidWatch as exc:
        _refuse(exc.errors)


def _echo_json(body: Any) -> None:
    click.echo(json.dumps(body))


@watch_group.command("add")
@click.argument("workspace")
@click.argument("project_id")
@click.argument("asset_id", required=False)
@click.option(
    "--import",
    "import_object",
    metavar="BUCKET/KEY",
    help="Import this Object Storage object as the asset first (instead of ASSET_ID).",
)
@click.option("--analyze", is_flag=True, help="Request an analysis, then watch it.")
@click.option(
    "--analyze-options",
    metavar="JSON",
    help='Options of the analysis request, passed to NCP as given: \'{"sceneRange": "ALL"}\'.',
)
@click.option(
    "--summarize", is_flag=True, help="Request a scene summary once the analysis completes."
)
@click.option("--summarize-options", metavar="JSON", help="Options of the summary request.")
@click.option(
    "--stalled-after",
    type=float,
    metavar="SECONDS",
    help="Send analysis.stalled after the status stayed the same this long (subscribed to it"
    " unless --event names the events).",
)
@click.option(
    "--api",
    type=click.Choice([generation.value for generation in ApiGeneration]),
    default=None,
    help="Status endpoint generation (default: MI_DEFAULT_API).",
)
@click.option("--webhook", multiple=True, metavar="URL", help="A signed webhook target.")
@click.option(
    "--webhook-secret",
    metavar="SECRET",
    help="whsec_... secret of the single --webhook (default: generated, shown once).",
)
@click.option("--slack", multiple=True, metavar="CHANNEL", help="A Slack channel target.")
@click.option("--slack-webhook", multiple=True, metavar="URL", help="A Slack incoming webhook.")
@click.option(
    "--template",
    type=click.File("r", encoding="utf-8"),
    metavar="FILE",
    help="A mrkdwn template for the text of the --slack and --slack-webhook targets (- reads stdin).",
)
@click.option(
    "--language",
    type=click.Choice([language.value for language in Language]),
    help="The language of the --slack and --slack-webhook targets' messages (BRIDGE_LANGUAGE).",
)
@click.option(
    "--endpoint",
    multiple=True,
    metavar="NAME",
    help="A shared endpoint, by name or id (see the endpoint commands).",
)
@click.option(
    "--label",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_labels,
    help="A label sent with every notification.",
)
@click.option(
    "--event",
    multiple=True,
    metavar="NAME",
    # Checked by the schema, not by click, so that a bad name is reported like the API's 422.
    help=f"An event to notify: {', '.join(SUBSCRIBABLE_EVENTS)}"
    " (default: all but analysis.status_changed).",
)
@click.option(
    "--timeout",
    type=float,
    metavar="SECONDS",
    help="Deadline after registration (default: BRIDGE_WATCH_TIMEOUT).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the watch as JSON (with --wait, again when it ends; progress goes to stderr).",
)
@click.option(
    "--wait", is_flag=True, help="Follow the watch until it ends: exit 0 if completed, 1 otherwise."
)
@click.option(
    "--wait-interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Time between database reads while following.",
)
@with_appcontext
def add_command(**options: Any) -> None:
    """Watch one asset: WORKSPACE PROJECT_ID ASSET_ID; or import one with --import BUCKET/KEY,
    and with --analyze and --summarize have the bridge request the analysis and the summary.

    Targets are numbered in the order webhooks, Slack channels, Slack webhooks, endpoints (as in
    error pointers such as #/targets/1/url or #/targets/2/endpoint). Invalid input, an unknown
    endpoint included, exits 2 with one "#/pointer: detail" line per problem, the same messages
    as the API's 422.
    """
    model = _validated(_payload(options))
    session = db.session()
    try:
        registration = register_watch(
            session, model, services().settings, services().default_targets, services().clock()
        )
    except InvalidWatch as exc:  # a reference to no endpoint
        session.rollback()
        _refuse(exc.errors)
    resource = watch_resource(registration.watch, generated_secrets=registration.generated_secrets)
    body = resource.as_json()
    session.commit()
    started = time.monotonic()
    if options["as_json"]:
        _echo_json(body)
    else:
        click.echo("\n".join(cli_output.registration_summary(body)))
    if options["wait"]:
        sys.exit(_wait(body["id"], options["wait_interval"], options["as_json"], started))


def _wait(watch_id: str, interval: float, as_json: bool, started: float) -> int:
    """Follow a watch until it ends: 0 if it completed, 1 for any other end, 130 on Ctrl-C."""
    stream = sys.stderr if as_json else sys.stdout
    line = cli_output.StatusLine(stream)
    hint = NoWorkerHint(line, started)
    try:
        while True:
            shown = progress(watch_id)
            if shown is None:
                line.finish()
                click.echo(f"{watch_id} no longer exists", err=True)
                return 1
            line.show(shown, time.monotonic() - started)
            if shown.state in ENDED_STATES:
                break
            hint.check(shown)
            time.sleep(interval)
    except KeyboardInterrupt:
        db.session.rollback()
        line.finish()
        click.echo(
            f"Stopped following {watch_id}; it is still watching"
            f" (mi-bridge watch stop {watch_id} ends it).",
            err=True,
        )
        return EXIT_INTERRUPTED
    line.finish()
    body = _watch_body(_find(watch_id))
    click.echo(cli_output.end_summary(body), err=as_json)
    if as_json:
        _echo_json(body)
    return 0 if body["state"] == WatchState.COMPLETED else 1


def _find(watch_id: str) -> Watch:
    """The watch with this id, or exit 1 saying there is none."""
    watch = find_watch(db.session(), watch_id)
    if watch is None:
        raise click.ClickException(f"no watch {watch_id}")
    return watch


def _watch_body(watch: Watch) -> dict[str, Any]:
    deliveries = deliveries_by_watch(db.session(), [watch.id])
    return watch_resource(watch, deliveries.get(watch.id, ())).as_json()


@watch_group.command("list")
@click.option(
    "--state",
    type=click.Choice([state.value for state in WATCH_STATES]),
    help="Only watches in this state.",
)
@click.option("--workspace", help="Only watches of this workspace.")
@click.option("--project-id", help="Only watches of this project.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_LIST_LIMIT,
    show_default=True,
    help="At most this many watches, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"items": [...]} as the API does.')
@with_appcontext
def list_command(
    state: str | None, workspace: str | None, project_id: str | None, limit: int, as_json: bool
) -> None:
    """List watches, newest first."""
    statement = select(Watch).where(USER_WATCHES).order_by(Watch.id.desc()).limit(limit)
    filters = {"state": state, "workspace": workspace, "project_id": project_id}
    for name, value in filters.items():
        if value is not None:
            statement = statement.where(getattr(Watch, name) == value)
    watches = load_watches(db.session(), statement)
    if as_json:
        deliveries = deliveries_by_watch(db.session(), [w.id for w in watches])
        # The API's page without its cursor: the command line pages with --limit only.
        page = watch_list(watches, deliveries, next_cursor=None)
        _echo_json(page.model_dump(mode="json", exclude_unset=True, exclude={"next_cursor"}))
    elif not watches:
        click.echo("No watches match.")
    else:
        rows = [watch_resource(w).as_json() for w in watches]
        click.echo("\n".join(cli_output.watch_table(rows)))


@watch_group.command("show")
@click.argument("watch_id")
@click.option("--json", "as_json", is_flag=True, help="Print the watch as the API shows it.")
@with_appcontext
def show_command(watch_id: str, as_json: bool) -> None:
    """Show one watch with its status history and deliveries (exit 1 if there is none)."""
    body = _watch_body(_find(watch_id))
    if as_json:
        _echo_json(body)
    else:
        click.echo("\n".join(cli_output.watch_detail(body)))


@watch_group.command("stop")
@click.argument("watch_id")
@with_appcontext
def stop_command(watch_id: str) -> None:
    """Stop watching (state stopped, no events after this); an ended watch is left as it is."""
    watch = _find(watch_id)
    if stop_watch(db.session(), watch, services().clock()):
        db.session.commit()
        click.echo(f"Stopped {watch_id}.")
    else:
        click.echo(f"{watch_id} had already ended ({watch.state}); nothing changed.")
