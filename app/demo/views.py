"""The demo's pages in the dashboard: the webhook inbox and the Slack stand-in, as a user would see them."""

from __future__ import annotations

import html
import json
import re

from flask import Blueprint, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from app.dashboard.auth import signed_in
from app.demo.standins import demo_config

demo_pages = Blueprint("demo_pages", __name__, url_prefix="/demo")

_LINK = re.compile(r"<(https?://[^|>\s]+)\|([^>]+)>")
_BOLD = re.compile(r"\*([^*\n]+)\*")
_CODE = re.compile(r"`([^`\n]+)`")


@demo_pages.app_template_filter("slack_mrkdwn")
def slack_mrkdwn(text: str) -> Markup:
    """Render the bits of Slack mrkdwn the bridge uses (links, *bold*, `code`, line breaks) as safe HTML.

    Everything else is text: Slack's own entities (&amp; &lt; &gt;) show as the characters they
    stand for, and those characters are then HTML-escaped, so a label ``<!channel>`` stays literal.
    """
    parts: list[str] = []
    position = 0
    for match in _LINK.finditer(text):
        parts.append(_inline(text[position : match.start()]))
        href, label = html.unescape(match.group(1)), html.unescape(match.group(2))
        parts.append(f'<a href="{html.escape(href)}">{html.escape(label)}</a>')
        position = match.end()
    parts.append(_inline(text[position:]))
    return Markup("".join(parts))  # noqa: S704 - built from escaped pieces only


@demo_pages.app_template_filter("pretty_json")
def pretty_json(value: object) -> str:
    """JSON indented for reading, with its characters as they are (Japanese stays Japanese); the
    template's autoescape makes it safe HTML."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def _inline(text: str) -> str:
    escaped = html.escape(html.unescape(text))
    escaped = _CODE.sub(r"<code>\1</code>", escaped)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return escaped.replace("\n", "<br>")


@demo_pages.before_request
def _require_sign_in() -> Response | None:
    if signed_in():
        return None
    return redirect(url_for("dashboard.login", next=request.path))


@demo_pages.context_processor
def _context() -> dict[str, bool]:
    return {"signed_in": signed_in(), "demo_enabled": True}


#: The inbox URL the page offers for watches of one's own (any name after /demo/inbox/ works).
INBOX_NAME = "mine"


@demo_pages.get("/inbox")
def inbox_page() -> str:
    """Webhooks the demo inbox received, newest first, with their signature check; and how to
    point a watch of one's own at the inbox (its URL and the secret it verifies with)."""
    config = demo_config()
    inbox, _channels = config.state.snapshot()
    return render_template(
        "demo/inbox.html",
        entries=inbox,
        live_src=url_for(".inbox_page"),
        inbox_url=url_for("demo_standins.inbox", name=INBOX_NAME, _external=True),
        inbox_secret=config.webhook_secret,
    )


@demo_pages.get("/slack")
def slack_page() -> str:
    """Messages in the Slack stand-in, rendered from their Block Kit, edits and threads included."""
    _inbox, channels = demo_config().state.snapshot()
    return render_template("demo/slack.html", channels=channels, live_src=url_for(".slack_page"))


@demo_pages.get("/chat")
def chat_page() -> str:
    """Requests ``http`` targets sent to the demo's chat inbox, newest first: the ``text`` a chat
    tool would show, the whole JSON body, the headers and the signature check."""
    return render_template(
        "demo/chat.html",
        entries=demo_config().state.chat_snapshot(),
        live_src=url_for(".chat_page"),
        chat_url=url_for("demo_standins.chat", name="team", _external=True),
    )
