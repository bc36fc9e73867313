"""The demo's stand-ins, served by the demo's own web app: a webhook inbox and a Slack Web API.

They let a newcomer see notifications arrive without any account: the inbox verifies each webhook's
Standard Webhooks signature as a receiver would, with the secret of the target that sent it (the
watch named in the payload, its webhook target at this inbox URL), and the Slack stand-in answers
``chat.postMessage`` / ``chat.update`` like Slack and keeps the messages for the dashboard to render;
the chat inbox takes the requests of ``http`` targets, as a chat tool's incoming webhook would.
Registered only by the demo (``mi-bridge demo``); never part of a normal deployment.
"""

from __future__ import annotations

import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy import func, select

from app.db import db
from app.demo.state import ChatEntry, DemoState, InboxEntry
from app.models import Endpoint, Target
from app.notify.webhook import sign
from app.vocabulary import TargetType

standins = Blueprint("demo_standins", __name__, url_prefix="/demo")
STATE_KEY = "mi_bridge_demo"
SLACK_TOKEN = "xoxb-demo-token"  # noqa: S105 - the stand-in's own token, not a real secret


class DemoConfig:
    """The demo's state plus what the stand-ins check against."""

    def __init__(self, webhook_secret: str, fail_first: set[str]) -> None:
        self.state = DemoState()
        self.webhook_secret = webhook_secret
        #: Event types whose first delivery the inbox answers 503, to show a retry.
        self.fail_first = set(fail_first)


def demo_config() -> DemoConfig:
    return current_app.extensions[STATE_KEY]


def install_standins(app: Flask, config: DemoConfig) -> None:
    """Mount the stand-ins (CSRF-exempt: machine endpoints) and their dashboard pages on ``app``."""
    from app.dashboard import csrf
    from app.demo.views import demo_pages

    app.extensions[STATE_KEY] = config
    csrf.exempt(standins)
    app.register_blueprint(standins)
    app.register_blueprint(demo_pages)
    app.context_processor(lambda: {"demo_enabled": True})


@standins.post("/inbox/<name>")
def inbox(name: str) -> tuple[Response, int]:
    """Receive a webhook, verify its signature, keep it; fails chosen first deliveries once."""
    config = demo_config()
    body = request.get_data()
    webhook_id = request.headers.get("webhook-id", "")
    stamp = request.headers.get("webhook-timestamp", "")
    payload: dict[str, Any] = json.loads(body or b"{}")
    signatures = request.headers.get("webhook-signature", "").split()
    verified = stamp.isdigit() and any(
        hmac.compare_digest(sign(secret, webhook_id, int(stamp), body), given)
        for secret in _secrets_for(payload, config)
        for given in signatures
    )
    event_type = payload.get("type", "?")
    if event_type in config.fail_first:
        config.fail_first.discard(event_type)
        return jsonify(error="the demo inbox fails this first delivery on purpose"), 503
    config.state.record_webhook(
        InboxEntry(datetime.now(UTC), webhook_id, event_type, verified, payload)
    )
    return jsonify(received=True, verified=verified), 200 if verified else 401


#: The request headers the chat inbox page shows (the signature's are summed up as its outcome).
CHAT_HEADERS = ("content-type", "user-agent", "webhook-id", "x-demo-event")


@standins.route("/chat/<name>", methods=["POST", "PUT"])
def chat(name: str) -> tuple[Response, int]:
    """Receive an ``http`` target's request, as a chat tool's incoming webhook would: keep its JSON
    body and a few headers, and check its Standard Webhooks signature when it carries one."""
    body = request.get_data()
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        return jsonify(error="the body is not JSON"), 400
    given = request.headers.get("webhook-signature", "").split()
    stamp, webhook_id = (
        request.headers.get("webhook-timestamp", ""),
        request.headers.get("webhook-id", ""),
    )
    if not given:
        signature = "unsigned"
    elif stamp.isdigit() and any(
        hmac.compare_digest(sign(secret, webhook_id, int(stamp), body), candidate)
        for secret in _http_secrets(demo_config())
        for candidate in given
    ):
        signature = "verified"
    else:
        signature = "invalid"
    headers = {key: request.headers[key] for key in CHAT_HEADERS if key in request.headers}
    demo_config().state.record_chat(
        ChatEntry(datetime.now(UTC), request.method, headers, parsed, signature)
    )
    return jsonify(received=True, signature=signature), 401 if signature == "invalid" else 200


#: At most this many secrets are tried for one chat request (the demo's own plus users' targets).
MAX_CHAT_SECRETS = 50


def _http_secrets(config: DemoConfig) -> list[str]:
    """The secrets of the http targets (inline or endpoints) that send to this very path.

    An http body is the user's own JSON, naming no watch, so unlike the webhook inbox the chat
    inbox tries every secret held for its URL; the demo's own secret signs the sample watches'.
    """
    rows = db.session.execute(
        select(
            func.coalesce(Endpoint.url, Target.url), func.coalesce(Endpoint.secret, Target.secret)
        )
        .select_from(Target)
        .outerjoin(Endpoint, Endpoint.id == Target.endpoint_id)
        .where(Target.type == TargetType.HTTP)
        .distinct()
        .limit(MAX_CHAT_SECRETS)
    )
    same_path = {s for url, s in rows if s and urlsplit(url or "").path == request.path}
    return [config.webhook_secret, *sorted(same_path - {config.webhook_secret})]


def _secrets_for(payload: dict[str, Any], config: DemoConfig) -> list[str]:
    """The secrets a receiver at this URL would hold for this delivery.

    A real receiver knows the one secret it was given when the watch was registered; the demo inbox
    serves every watch, so it looks up the webhook targets at this very URL of the watch the payload
    names (the sample watches use the demo's secret, a user's own watch its own or a generated one).
    The demo's secret stays a candidate for payloads that name no watch of ours.
    """
    data, watch_id = payload.get("data"), None
    if isinstance(data, dict) and isinstance(data.get("watch"), dict):
        watch_id = data["watch"].get("id")
    secrets = [config.webhook_secret]
    if isinstance(watch_id, str):
        # A target that is an endpoint has its URL and secret on the endpoint.
        rows = db.session.execute(
            select(
                func.coalesce(Endpoint.url, Target.url),
                func.coalesce(Endpoint.secret, Target.secret),
            )
            .select_from(Target)
            .outerjoin(Endpoint, Endpoint.id == Target.endpoint_id)
            .where(Target.watch_id == watch_id, Target.type == TargetType.WEBHOOK)
        )
        # Compare paths, not whole URLs: 127.0.0.1 and localhost name the same inbox.
        secrets += [s for url, s in rows if s and urlsplit(url or "").path == request.path]
    return secrets


@standins.post("/slack/api/<method>")
def slack_api(method: str) -> Response:
    """``chat.postMessage``, ``chat.update`` and ``auth.test``, answered as Slack does."""
    if request.headers.get("Authorization") != f"Bearer {SLACK_TOKEN}":
        return jsonify(ok=False, error="invalid_auth")
    body = request.get_json(silent=True) or request.form.to_dict()
    state = demo_config().state
    channel, text = body.get("channel"), body.get("text", "")
    blocks = body.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if method == "auth.test":
        return jsonify(ok=True, team="mi-bridge demo", user="mi-bridge")
    if not channel:
        return jsonify(ok=False, error="channel_not_found")
    if method == "chat.postMessage":
        thread_ts = body.get("thread_ts")
        post = state.post(channel, text, blocks, thread_ts, bool(body.get("reply_broadcast")))
        if post is None:
            return jsonify(ok=False, error="thread_not_found")
        return jsonify(ok=True, channel=channel, ts=post.ts, message={"text": text})
    if method == "chat.update":
        post = state.update(channel, body.get("ts", ""), text, blocks)
        if post is None:
            return jsonify(ok=False, error="message_not_found")
        return jsonify(ok=True, channel=channel, ts=post.ts, text=text)
    return jsonify(ok=False, error="unknown_method")
