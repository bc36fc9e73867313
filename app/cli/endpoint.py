"""``mi-bridge endpoint add|list|show|change|enable|disable|delete|rotate|replay``: named, shared
notification targets, managed on the database directly like ``mi-bridge watch``.

Input is validated by the API's own models (``app.endpoints.validation``) and applied by the
API's own actions (``app.endpoints.actions``), so a command is refused, accepted and shaped exactly
as its ``/api/v1/endpoints`` request would be: invalid input exits 2 with one ``#/pointer: detail``
line per problem (the API's ``422``); a conflict (the API's ``409``) or an unknown endpoint exits 1.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from app.cli import endpoint_output as output
from app.db import db
from app.endpoints import actions
from app.endpoints.health import endpoint_counts
from app.endpoints.validation import (
    EndpointChange,
    EndpointCreate,
    Replay,
    RotateSecret,
    validated,
)
from app.models import Endpoint
from app.resources.endpoints import endpoint_resource
from app.services import services
from app.vocabulary import Language, ReplayState, TargetType
from app.watches.validation import InvalidWatch

INVALID_INPUT = 2
JSON_HELP = "Print the endpoint as the API shows it."
RATE_HELP = "At most this many requests per second to it, across all workers"
TEMPLATE_OPTION = click.option(
    "--template",
    "template_file",
    type=click.File("r", encoding="utf-8"),
    metavar="FILE",
    help="A slack or slack_webhook endpoint's mrkdwn message template (- reads it from stdin).",
)
LANGUAGE_OPTION = click.option(
    "--language",
    type=click.Choice([language.value for language in Language]),
    help="The language of its default messages (slack, slack_webhook, http; BRIDGE_LANGUAGE).",
)


@click.group("endpoint", short_help="Create and manage shared notification endpoints.")
def endpoint_group() -> None:
    """Named notification targets shared by many watches (on the database, without the web
    process).

    One webhook URL or Slack channel, defined once: watches refer to it by name ("mi-bridge watch
    add ... --endpoint NAME", or {"endpoint": "NAME"} in a registration's targets), share its
    health and its secret, and follow it when it changes. REF is an endpoint's name or id.
    """


def _refuse(errors: list[dict[str, str]]) -> NoReturn:
    for error in errors:
        click.echo(f"{error['pointer']}: {error['detail']}", err=True)
    sys.exit(INVALID_INPUT)


def _valid(model: Any, payload: dict[str, Any]) -> Any:
    """``payload`` as ``model``, or exit 2 with the API's 422 errors, one a line."""
    try:
        return validated(model, payload, services().validation)
    except InvalidWatch as exc:
        _refuse(exc.errors)


def _find(ref: str) -> Endpoint:
    """The endpoint with this name or id, or exit 1 saying there is none."""
    endpoint = actions.find_endpoint(db.session(), ref)
    if endpoint is None:
        raise click.ClickException(f"no endpoint has the name or id {ref!r}")
    return endpoint


def _body(endpoint: Endpoint, secret: str | None = None) -> dict[str, Any]:
    counts = endpoint_counts(db.session(), [endpoint])[endpoint.id]
    return endpoint_resource(endpoint, counts, secret).as_json()


def _show(body: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    click.echo(json.dumps(body) if as_json else "\n".join(lines))


def _given(**options: Any) -> dict[str, Any]:
    """The options that were given (absent ones stay out of the request, as in the API)."""
    return {name: value for name, value in options.items() if value is not None}


def _headers(given: tuple[str, ...]) -> dict[str, str] | None:
    """``--header NAME:VALUE`` options as the API's ``headers`` object (None when none given)."""
    if not given:
        return None
    headers = {}
    for item in given:
        name, colon, value = item.partition(":")
        if not colon:
            raise click.BadParameter(f"{item!r} is not NAME:VALUE", param_hint="--header")
        headers[name.strip()] = value.strip()
    return headers


@endpoint_group.command("add", short_help="Create an endpoint (a webhook's secret is shown once).")
@click.argument("name")
@click.option(
    "--type",
    "kind",
    type=click.Choice([kind.value for kind in TargetType]),
    default=TargetType.WEBHOOK.value,
    show_default=True,
    help="webhook: signed HTTP POSTs; slack: a channel, through SLACK_BOT_TOKEN;"
    " slack_webhook: a Slack incoming webhook; http: any API, with --body (and --header).",
)
@click.option(
    "--url", help="Where a webhook, slack_webhook or http endpoint sends (http or https)."
)
@click.option("--channel", help="The channel of a slack endpoint (C0123456789 or #name).")
@click.option(
    "--secret",
    metavar="SECRET",
    help="whsec_... secret of a webhook endpoint (default: generated, shown once).",
)
@click.option("--description", metavar="TEXT", help="What it is for, for people.")
@click.option(
    "--rate-limit", type=float, metavar="PER_SECOND", help=RATE_HELP + " (default: none)."
)
@click.option(
    "--body",
    "body_file",
    type=click.File("r", encoding="utf-8"),
    metavar="FILE",
    help="An http endpoint's JSON body template (- reads it from stdin); see the README's recipes.",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME:VALUE",
    help="A header of an http endpoint's requests (repeatable; the value may be a template).",
)
@click.option(
    "--method", type=click.Choice(["POST", "PUT"]), help="An http endpoint's method (POST)."
)
@TEMPLATE_OPTION
@LANGUAGE_OPTION
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@with_appcontext
def add_command(name: str, kind: str, as_json: bool, **options: Any) -> None:
    """Create the endpoint NAME (1 to 63 lower-case letters, digits, '.', '_' or '-').

    A webhook endpoint without --secret gets a generated one, printed only this once: keep it to
    verify signatures. Options map to the API's fields (--rate-limit is rate_limit_per_second, as
    error pointers name it).
    """
    fields = _given(
        url=options["url"], channel=options["channel"], secret=options["secret"],
        description=options["description"], rate_limit_per_second=options["rate_limit"],
        method=options["method"], headers=_headers(options["headers"]),
        body=options["body_file"].read() if options["body_file"] else None,
        template=options["template_file"].read() if options["template_file"] else None,
        language=options["language"],
    )  # fmt: skip
    spec = _valid(EndpointCreate, {"name": name, "type": kind, **fields})
    session = db.session()
    try:
        created = actions.create_endpoint(session, spec, services().clock())
    except actions.EndpointConflict as exc:
        session.rollback()
        raise click.ClickException(str(exc)) from None
    body = _body(created.endpoint, created.generated_secret)
    session.commit()
    _show(body, as_json, output.created_summary(body))


@endpoint_group.command("list", short_help="List endpoints with their deliveries and users.")
@click.option("--json", "as_json", is_flag=True, help='Print {"items": [...]} as the API does.')
@with_appcontext
def list_command(as_json: bool) -> None:
    """List endpoints by name, with their pending and dead deliveries and the watches using them."""
    session = db.session()
    rows = list(session.scalars(select(Endpoint).order_by(Endpoint.name)))
    counts = endpoint_counts(session, rows)
    items = [endpoint_resource(row, counts[row.id]).as_json() for row in rows]
    if as_json:
        click.echo(json.dumps({"items": items}))
    elif not items:
        click.echo('No endpoints yet: "mi-bridge endpoint add NAME --url URL" creates one.')
    else:
        click.echo("\n".join(output.endpoint_table(items)))


@endpoint_group.command("show", short_help="Show one endpoint and its health.")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@with_appcontext
def show_command(ref: str, as_json: bool) -> None:
    """Show one endpoint and its health (exit 1 if there is none)."""
    body = _body(_find(ref))
    _show(body, as_json, output.endpoint_detail(body))


@endpoint_group.command(
    "change", short_help="Change an endpoint's URL, channel, description, limit or message."
)
@click.argument("ref")
@click.option("--url", help="A new URL (webhook and slack_webhook endpoints).")
@click.option("--channel", help="A new channel (slack endpoints).")
@click.option("--description", metavar="TEXT", help="A new description ('' for none).")
@click.option("--rate-limit", type=float, metavar="PER_SECOND", help=RATE_HELP + ".")
@click.option("--no-rate-limit", is_flag=True, help="Remove the rate limit.")
@click.option(
    "--body",
    "body_file",
    type=click.File("r", encoding="utf-8"),
    metavar="FILE",
    help="A new JSON body template of an http endpoint (- reads it from stdin).",
)
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME:VALUE",
    help="An http endpoint's header (repeatable; the headers given replace all of them).",
)
@click.option("--method", type=click.Choice(["POST", "PUT"]), help="An http endpoint's method.")
@TEMPLATE_OPTION
@click.option("--no-template", is_flag=True, help="Go back to the default message text.")
@LANGUAGE_OPTION
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@with_appcontext
def change_command(
    ref: str, as_json: bool, no_rate_limit: bool, no_template: bool, **options: Any
) -> None:
    """Change where an endpoint sends, its description, rate limit or message: every watch using
    it follows at once. Only the options given change."""
    fields = _given(
        url=options["url"], channel=options["channel"], description=options["description"],
        rate_limit_per_second=options["rate_limit"], method=options["method"],
        headers=_headers(options["headers"]),
        body=options["body_file"].read() if options["body_file"] else None,
        template=options["template_file"].read() if options["template_file"] else None,
        language=options["language"],
    )  # fmt: skip
    if fields.get("description") == "":
        fields["description"] = None  # as the API's null: no description
    if no_template:
        if "template" in fields:
            raise click.UsageError("--template and --no-template exclude each other")
        fields["template"] = None
    if no_rate_limit:
        if "rate_limit_per_second" in fields:
            raise click.UsageError("--rate-limit and --no-rate-limit exclude each other")
        fields["rate_limit_per_second"] = None
    if not fields:
        raise click.UsageError(
            "nothing to change: give --url, --channel, --description, a limit or a message option"
        )
    _change(ref, _valid(EndpointChange, fields), as_json)


def _change(ref: str, change: EndpointChange, as_json: bool) -> None:
    """Apply ``change`` as ``PATCH`` would, print the endpoint, commit."""
    endpoint = _find(ref)
    try:
        actions.change_endpoint(db.session(), endpoint, change, services().clock())
    except actions.EndpointFieldError as exc:
        db.session.rollback()
        _refuse([{"pointer": exc.pointer, "detail": exc.detail}])
    body = _body(endpoint)
    db.session.commit()
    _show(body, as_json, output.endpoint_detail(body))


@endpoint_group.command("enable", short_help="Enable an endpoint; its held deliveries go out.")
@click.argument("ref")
@with_appcontext
def enable_command(ref: str) -> None:
    """Enable a disabled endpoint: the deliveries held while it was disabled become due now and
    go out in event order."""
    endpoint = _find(ref)
    if not endpoint.disabled:
        click.echo(f"{endpoint.name} is enabled already; nothing changed.")
        return
    held = actions.enable_endpoint(db.session(), endpoint, services().clock())
    db.session.commit()
    click.echo(f"Enabled {endpoint.name}; {held} held deliver{'y is' if held == 1 else 'ies are'}"
               " due now.")  # fmt: skip


@endpoint_group.command("disable", short_help="Disable an endpoint; its deliveries are held.")
@click.argument("ref")
@with_appcontext
def disable_command(ref: str) -> None:
    """Disable an endpoint for every watch using it: its deliveries are held, not attempted and
    not thrown away, until "mi-bridge endpoint enable" sends them."""
    endpoint = _find(ref)
    if endpoint.disabled:
        click.echo(f"{endpoint.name} is disabled already ({endpoint.disabled_reason}).")
        return
    change = EndpointChange(disabled=True)
    actions.change_endpoint(db.session(), endpoint, change, services().clock())
    db.session.commit()
    click.echo(f"Disabled {endpoint.name}; its deliveries are held until it is enabled.")


@endpoint_group.command("delete", short_help="Delete an endpoint no watching watch uses.")
@click.argument("ref")
@with_appcontext
def delete_command(ref: str) -> None:
    """Delete an endpoint. Refused (exit 1) while a watching watch uses it; ended watches that
    used it keep a copy of where it sent (never its secret)."""
    endpoint = _find(ref)
    name = endpoint.name
    try:
        actions.delete_endpoint(
            db.session(), endpoint, services().clock(), services().configured_targets()
        )
    except actions.EndpointConflict as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"Deleted endpoint {name}.")


@endpoint_group.command("rotate", short_help="Give a webhook endpoint a new secret (shown once).")
@click.argument("ref")
@click.option(
    "--overlap",
    type=float,
    metavar="SECONDS",
    help="How long the current secret still signs, as a second signature"
    " (default: BRIDGE_SECRET_OVERLAP; 0 ends it now).",
)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP + " (with the new secret).")
@with_appcontext
def rotate_command(ref: str, overlap: float | None, as_json: bool) -> None:
    """Give a webhook endpoint a new signing secret, printed only this once.

    Until the overlap ends every request carries two signatures (new and previous secret) in its
    webhook-signature header, so the receiver can switch to the new secret at any time in between.
    """
    request = _valid(RotateSecret, _given(overlap_seconds=overlap))
    seconds = request.overlap_seconds
    if seconds is None:
        seconds = services().settings.bridge_secret_overlap
    endpoint = _find(ref)
    try:
        secret = actions.rotate_secret(db.session(), endpoint, seconds, services().clock())
    except actions.EndpointConflict as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    body = _body(endpoint, secret)
    db.session.commit()
    _show(body, as_json, output.rotated_summary(body))


@endpoint_group.command("replay", short_help="Send ended deliveries again (same webhook-id).")
@click.argument("ref")
@click.option(
    "--state",
    type=click.Choice([state.value for state in ReplayState]),
    default="dead",
    show_default=True,
    help="Which ended deliveries: dead (out of retries), failed, or any (succeeded ones too).",
)
@click.option("--since", metavar="TIME", help="Only events at or after this RFC 3339 time.")
@click.option("--until", metavar="TIME", help="Only events before this RFC 3339 time.")
@click.option("--json", "as_json", is_flag=True, help='Print {"queued": N} as the API does.')
@with_appcontext
def replay_command(ref: str, state: str, as_json: bool, **window: str | None) -> None:
    """Send an endpoint's ended deliveries again, in event order, each with the same webhook-id as
    before (receivers that drop duplicates by it stay correct)."""
    request = _valid(Replay, {"state": state, **_given(**window)})
    endpoint = _find(ref)
    queued = actions.replay(db.session(), endpoint, request, services().clock())
    db.session.commit()
    if as_json:
        click.echo(json.dumps({"queued": queued}))
    else:
        noun = "delivery" if queued == 1 else "deliveries"
        click.echo(f"Queued {queued} {noun} to {endpoint.name} again.")
