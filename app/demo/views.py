"""The demo's pages in the dashboard: the webhook inbox and the Slack stand-in, as a user would see them."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from app.dashboard.auth import signed_in
from app.demo.standins import demo_config

demo_pages = Blueprint("demo_pages", __name__, url_prefix="/demo")


@demo_pages.before_request
def _require_sign_in() -> Response | None:
    if signed_in():
        return None
    return redirect(url_for("dashboard.login", next=request.path))  # type: ignore[return-value]


@demo_pages.context_processor
def _context() -> dict[str, bool]:
    return {"signed_in": signed_in(), "demo_enabled": True}


@demo_pages.get("/inbox")
def inbox_page() -> str:
    """Webhooks the demo inbox received, newest first, with their signature check."""
    inbox, _channels = demo_config().state.snapshot()
    return render_template("demo/inbox.html", entries=inbox, live_src=url_for(".inbox_page"))


@demo_pages.get("/slack")
def slack_page() -> str:
    """Messages in the Slack stand-in, rendered from their Block Kit, edits and threads included."""
    _inbox, channels = demo_config().state.snapshot()
    return render_template("demo/slack.html", channels=channels, live_src=url_for(".slack_page"))
