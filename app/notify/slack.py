"""Slack notifier (``slack`` targets): one message per watch per channel that follows the analysis.

The first event a watch sends to a channel posts the message (``chat.postMessage``) and its ``ts`` is
stored on the target; later events edit it (``chat.update``); a terminal outcome is also posted as a
thread reply broadcast to the channel so people are notified. Errors per the contract's Slack table.
"""

from __future__ import annotations

import io
import time
from email.message import Message
from typing import Any, cast
from urllib.error import HTTPError, URLError
from urllib.request import Request

import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from app.clock import utcnow
from app.http_semantics.retry_after import parse_retry_after
from app.notify.context import SLACK_ERROR_CODE, NotifierContext, elapsed_ms
from app.notify.mrkdwn_templates import message_for, noted
from app.notify.results import DeliveryResult, EventSnapshot, TargetSnapshot
from app.notify.slack_blocks import TERMINAL_TYPES, SlackMessage
from app.outbound import bounded
from app.outbound.deadline import deadline
from app.outbound.errors import at, describe_exception, scrub
from app.outbound.http import operator_session
from app.vocabulary import AuthHealth, DeliveryOutcome, EventType

TIMEOUT_SECONDS = 15.0  # the contract's 15 s, for the whole attempt
# https://api.slack.com/methods/chat.postMessage#errors: these mean "this channel, never again".
DISABLING_ERRORS = frozenset({"channel_not_found", "is_archived", "not_in_channel"})
# Token trouble is the whole bridge's, not this target's: hold deliveries, disable nothing.
CREDENTIAL_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "account_inactive"})


#: A Web API answer is a small JSON document; far larger is not one.
ANSWER_LIMIT = 256 * 1024


class BoundedWebClient(WebClient):
    """slack-sdk's WebClient sending through a deadline-aware requests session (``app.outbound``):
    a call ends within the deadline its caller opened, and reads at most ``ANSWER_LIMIT`` bytes."""

    def __init__(self, session: requests.Session, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._session = session

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        # slack-sdk builds its Request with bytes or None: urllib types the field far more loosely.
        data = cast(bytes | None, req.data)
        try:
            answer = bounded.post(
                self._session, url, data=data or b"", headers=dict(req.header_items()),
                seconds=TIMEOUT_SECONDS, limit=ANSWER_LIMIT,
            )  # fmt: skip
        except bounded.SendFailed as exc:
            raise URLError(str(exc)) from exc  # the SDK's connection retry handler knows URLError
        if not answer.complete:
            too_large = bounded.SendFailed(
                "transport", at(f"response larger than {ANSWER_LIMIT} bytes", url),
                f"HTTP {answer.status} {answer.reason}: the answer went on past {ANSWER_LIMIT} bytes",
            )  # fmt: skip
            raise URLError(str(too_large)) from too_large
        if 200 <= answer.status < 300:
            return {"status": answer.status, "headers": dict(answer.headers), "body": answer.text}
        headers = Message()
        for name, value in answer.headers.items():
            headers[name] = value
        raise HTTPError(url, answer.status, answer.reason, headers, io.BytesIO(answer.body))


def make_client(
    token: str | None, base_url: str, session: requests.Session | None = None
) -> WebClient | None:
    """A WebClient for ``SLACK_API_URL`` whose own retries cover connection errors only.

    429 and 5xx come back to the outbox as values, so no worker sleeps past its lease.
    """
    if not token:
        return None
    return BoundedWebClient(
        session or operator_session(),
        token=token,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=int(TIMEOUT_SECONDS),
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
    )


def send(context: NotifierContext, event: EventSnapshot, target: TargetSnapshot) -> DeliveryResult:
    """Post or edit the watch's message in the target's channel for one event (``context.slack``).

    All calls of one attempt end within ``TIMEOUT_SECONDS`` (or the context's budget). A message
    posted before a later call failed is kept in ``target_updates`` whatever the failure, so the
    retry edits it instead of posting a second one.
    """
    client = context.slack
    if client is None:
        return DeliveryResult(
            DeliveryOutcome.HOLD, error="SLACK_BOT_TOKEN is not set", slack_auth=AuthHealth.FAILING
        )
    message, note = message_for(
        event.body, target.template, context.language_of(target), context.public_url
    )
    # A template that failed is no failed delivery: the default text went out, the attempt says so.
    return noted(_send(context, client, event, target, message), note)


def _send(
    context: NotifierContext,
    client: WebClient,
    event: EventSnapshot,
    target: TargetSnapshot,
    message: SlackMessage,
) -> DeliveryResult:
    """Post or edit ``message`` for ``event`` (the calls of one attempt)."""
    started = time.monotonic()
    updates: dict[str, Any] = {}
    try:
        with deadline(context.seconds(TIMEOUT_SECONDS)):
            if event.type in (EventType.BRIDGE_TEST, EventType.BRIDGE_ALERT):
                # A message of its own each time: alerts and tests never edit the watch's message.
                _post(client, target.channel or "", message)
            else:
                _post_or_update(client, target, message, updates)
                if event.type in TERMINAL_TYPES:
                    _post(
                        client, updates["slack_channel_id"], message, thread_ts=updates["slack_ts"]
                    )
    except SlackApiError as exc:
        return _api_error(exc, elapsed_ms(started), updates)
    except (SlackClientError, URLError, OSError, ValueError) as exc:
        # Transport trouble (unreachable, reset, deadline, a body that is not Slack's JSON): retry.
        short, detail = describe_exception(exc)
        return DeliveryResult(
            DeliveryOutcome.RETRY, duration_ms=elapsed_ms(started), error=f"Slack API: {short}",
            error_detail=detail, target_updates=updates,
        )  # fmt: skip
    return DeliveryResult(
        DeliveryOutcome.SUCCEEDED, status_code=200, duration_ms=elapsed_ms(started),
        target_updates=updates, slack_auth=AuthHealth.OK,
    )  # fmt: skip


def _post_or_update(
    client: WebClient, target: TargetSnapshot, message: SlackMessage, updates: dict[str, Any]
) -> None:
    """Edit the watch's message, or post it first; ``updates`` gets the ts to store."""
    if target.slack_ts and target.slack_channel_id:
        try:
            client.chat_update(
                channel=target.slack_channel_id, ts=target.slack_ts,
                text=message.text, blocks=message.blocks,
            )  # fmt: skip
            updates.update(slack_channel_id=target.slack_channel_id, slack_ts=target.slack_ts)
            return
        except SlackApiError as exc:
            if exc.response.get("error") != "message_not_found":
                raise
            # Someone deleted the message: post a new one and follow that instead.
    response = _post(client, target.channel or "", message)
    updates.update(slack_channel_id=response["channel"], slack_ts=response["ts"])


def _post(
    client: WebClient, channel: str, message: SlackMessage, thread_ts: str | None = None
) -> Any:
    extra: dict[str, Any] = {"thread_ts": thread_ts, "reply_broadcast": True} if thread_ts else {}
    return client.chat_postMessage(
        channel=channel, text=message.text, blocks=message.blocks, **extra
    )


def _api_error(exc: SlackApiError, duration_ms: int, updates: dict[str, Any]) -> DeliveryResult:
    response = exc.response
    status = response.status_code
    error = str(response.get("error") or f"HTTP {status}")
    if SLACK_ERROR_CODE.fullmatch(error):
        short = f"Slack: {error}"
    elif response.get("error"):  # slack-sdk's words for a body that is not Slack's JSON
        short = f"Slack API: answered HTTP {status}, not a Slack answer"
    else:
        short = f"Slack API: answered HTTP {status}"
    common: dict[str, Any] = {
        "status_code": status, "duration_ms": duration_ms, "error": short,
        "error_detail": scrub(str(exc)), "target_updates": updates,
    }  # fmt: skip
    if error in DISABLING_ERRORS:
        return DeliveryResult(DeliveryOutcome.DISABLE_TARGET, **common)
    if error in CREDENTIAL_ERRORS:
        return DeliveryResult(DeliveryOutcome.HOLD, slack_auth=AuthHealth.FAILING, **common)
    retry_after = parse_retry_after(response.headers.get("Retry-After"), utcnow())
    if (status == 429 or status >= 500) and retry_after is not None:
        return DeliveryResult(DeliveryOutcome.THROTTLED, retry_after=retry_after, **common)
    return DeliveryResult(DeliveryOutcome.RETRY, **common)
