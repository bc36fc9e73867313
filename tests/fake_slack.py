"""A fake Slack on 127.0.0.1 for tests: the Web API methods the bridge calls, and incoming webhooks.

``FakeSlack().start()`` serves ``chat.postMessage``, ``chat.update`` and ``auth.test`` under
``api_url`` (a slack-sdk ``WebClient`` ``base_url``) and incoming webhooks at ``webhook_url(name)``.
It checks tokens, channels, threads and Block Kit limits (``tests/fake_slack_blocks.py``) the way
Slack documents them, keeps the messages it accepted, records every call, and answers scripted
faults (``fail_next``, ``webhook_answers``, ``revoke``).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fake_slack_blocks import block_errors
from tests.servers import ServerThread

TOKEN = "xoxb-fake-token"
TEAM_ID, BOT_USER_ID, BOT_ID = "T000", "U0FAKEBOT", "B000"
MAX_TEXT = 40000
CHAT_METHODS = ("chat.postMessage", "chat.update")


@dataclass(frozen=True)
class Call:
    """One request as the fake saw it and what it answered."""

    target: str  # the Web API method ("chat.update") or the webhook's name
    kind: str  # "api" or "webhook"
    body: dict[str, Any] | None  # the JSON or form fields as sent; None when unparsable
    headers: dict[str, str]  # lower-case names
    status: int
    answer: Any  # the JSON document (api) or the plain text (webhook)
    answer_headers: dict[str, str]  # beyond Content-Type/Length, e.g. {"Retry-After": "3"}
    at: float  # time.monotonic() when answered


@dataclass
class _Fault:
    status: int
    error: str | None
    retry_after: int | None
    count: int


class FakeSlack:
    """Slack's Web API and incoming webhooks on an ephemeral port of 127.0.0.1 (see module doc).

    ``channels`` maps names (with or without ``#``) and ids to channel ids; ``archived`` and
    ``not_member`` hold names or ids. ``require_text`` also rejects block messages without a
    ``text`` fallback (Slack itself accepts them). ``webhook_answers[name] = (status, text)`` or
    ``(status, text, retry_after)`` answers every post to that webhook until removed.
    """

    def __init__(
        self, *, tokens: tuple[str, ...] = (TOKEN,), channels: dict[str, str] | None = None,
        archived: tuple[str, ...] = (), not_member: tuple[str, ...] = (), require_text: bool = False,
    ) -> None:  # fmt: skip
        self.valid_tokens: set[str] = set(tokens)
        self.revoked_tokens: set[str] = set()
        self.channels: dict[str, str] = dict(channels or {"general": "C0GENERAL"})
        self.archived: set[str] = set(archived)
        self.not_member: set[str] = set(not_member)
        self.require_text = require_text
        self.webhook_answers: dict[str, tuple[Any, ...]] = {}
        self.calls: list[Call] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel id -> ts -> record
        self._seq = 0
        self._lock = threading.RLock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._serving = ServerThread(self._server)
        self.url = self._serving.url
        self.api_url = self.url + "/api/"

    # --- life cycle and scripting ----------------------------------------------------------------

    def start(self) -> FakeSlack:
        self._serving.start()
        return self

    def stop(self) -> None:
        self._serving.stop(join_seconds=5)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def webhook_url(self, name: str) -> str:
        return f"{self.url}/services/{TEAM_ID}/{BOT_ID}/{name}"

    def fail_next(
        self, target: str, *, error: str | None = None, status: int = 200,
        retry_after: int | None = None, count: int = 1,
    ) -> None:  # fmt: skip
        """Answer the next ``count`` calls of a Web API method (or webhook name) with a fault.

        ``error`` defaults to ``ratelimited`` (webhooks: ``rate_limited``) for 429 and
        ``internal_error`` for 5xx; ``retry_after`` adds a ``Retry-After`` header. Nothing is stored.
        """
        if error is None and status < 429:
            raise ValueError("fail_next needs an error or an error status")
        with self._lock:
            self._faults.setdefault(target, []).append(_Fault(status, error, retry_after, count))

    def revoke(self, token: str = TOKEN) -> None:
        """Calls with ``token`` answer ``token_revoked`` until ``restore(token)``."""
        with self._lock:
            self.valid_tokens.discard(token)
            self.revoked_tokens.add(token)

    def restore(self, token: str = TOKEN) -> None:
        with self._lock:
            self.revoked_tokens.discard(token)
            self.valid_tokens.add(token)

    def reset(self) -> None:
        """Forget calls, messages and pending faults (tokens, channels and answers stay)."""
        with self._lock:
            self.calls.clear()
            self._faults.clear()
            self._messages.clear()

    # --- inspection ------------------------------------------------------------------------------

    def calls_to(self, target: str) -> list[Call]:
        """The recorded calls of one Web API method or webhook name, oldest first."""
        with self._lock:
            return [call for call in self.calls if call.target == target]

    def webhook_posts(self, name: str) -> list[dict[str, Any]]:
        """The bodies a webhook accepted (answered ``200 ok``)."""
        return [c.body or {} for c in self.calls_to(name) if c.status == 200]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Top-level messages of a channel (name or id), oldest first, as they are now.

        Each is ``{"ts", "text", "blocks", "edits", "replies"}``; each reply has ``"broadcast"``.
        """
        with self._lock:
            records = list(self._messages.get(self._resolve(channel) or "", {}).values())
            view = [self._view(r, records) for r in records if r["thread_ts"] is None]
            return copy.deepcopy(view)

    @staticmethod
    def _view(record: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
        fields = ("ts", "text", "blocks", "edits")
        replies = [
            {**{k: r[k] for k in fields}, "broadcast": r["broadcast"]}
            for r in records
            if r["thread_ts"] == record["ts"]
        ]
        return {**{k: record[k] for k in fields}, "replies": replies}

    # --- serving ---------------------------------------------------------------------------------

    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, bytes]:
        parts = urlsplit(path).path.split("/")
        with self._lock:
            if len(parts) == 3 and parts[1] == "api":
                body = _parse_body(headers.get("content-type", ""), raw)
                status, extra, answer = self._api(parts[2], body, headers)
                data, ctype = json.dumps(answer).encode(), "application/json; charset=utf-8"
            elif len(parts) == 5 and parts[1] == "services":
                body = _parse_body("application/json", raw)
                status, extra, answer = self._webhook(parts[4], body)
                data, ctype = answer.encode(), "text/plain; charset=utf-8"
            else:
                return 404, {"Content-Type": "text/plain"}, b"not found"
            kind = "api" if parts[1] == "api" else "webhook"
            at = time.monotonic()
            self.calls.append(Call(parts[-1], kind, body, headers, status, answer, extra, at))
        return status, {**extra, "Content-Type": ctype}, data

    def _fault(self, target: str) -> _Fault | None:
        queue = self._faults.get(target)
        if not queue:
            return None
        fault = queue[0]
        fault.count -= 1
        if fault.count <= 0:
            queue.pop(0)
        return fault

    def _api(self, method: str, body: dict | None, headers: dict) -> tuple[int, dict, Any]:
        fault = self._fault(method)
        if fault:
            error = fault.error or ("ratelimited" if fault.status == 429 else "internal_error")
            return fault.status, _retry_after(fault.retry_after), {"ok": False, "error": error}
        if method not in (*CHAT_METHODS, "auth.test"):
            return 404, {}, {"ok": False, "error": "unknown_method", "req_method": method}
        if body is None:
            return 200, {}, {"ok": False, "error": "invalid_form_data"}
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else body.get("token")
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if token in self.revoked_tokens:
            return 200, {}, {"ok": False, "error": "token_revoked"}
        if token not in self.valid_tokens:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return 200, {}, {
                "ok": True, "url": "https://fake.slack.test/", "team": "Fake", "user": "bot",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID,
            }  # fmt: skip
        return 200, {}, self._chat(method, body)

    def _resolve(self, channel: Any) -> str | None:
        if not isinstance(channel, str):
            return None
        if channel in self.channels.values():
            return channel
        return self.channels.get(channel) or self.channels.get(channel.removeprefix("#"))

    def _chat(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel")
        cid = self._resolve(channel)
        if cid is None:
            return {"ok": False, "error": "channel_not_found"}
        if cid in {self._resolve(c) for c in self.archived}:
            return {"ok": False, "error": "is_archived"}
        if cid in {self._resolve(c) for c in self.not_member}:
            return {"ok": False, "error": "not_in_channel"}
        store = self._messages.setdefault(cid, {})
        ts = body.get("ts")
        record = store.get(ts) if method == "chat.update" and isinstance(ts, str) else None
        if method == "chat.update" and record is None:
            return {"ok": False, "error": "message_not_found"}
        old = record or {"text": "", "blocks": None}
        text = str(body["text"]) if body.get("text") is not None else old["text"]
        blocks = body["blocks"] if body.get("blocks") is not None else old["blocks"]
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return {"ok": False, "error": "invalid_blocks_format"}
        if not text.strip() and (self.require_text or not blocks) and not body.get("attachments"):
            return {"ok": False, "error": "no_text"}
        if len(text) > MAX_TEXT:
            return {"ok": False, "error": "msg_too_long"}
        errors = block_errors(blocks) if blocks is not None else []
        if errors:
            return {
                "ok": False, "error": "invalid_blocks", "errors": errors,
                "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]},
            }  # fmt: skip
        if record is not None:
            record.update(text=text, blocks=blocks, edits=record["edits"] + 1)
            return {"ok": True, "channel": cid, "ts": ts, "text": text, "message": _wire(record)}
        parent = None
        if body.get("thread_ts"):
            parent = store.get(str(body["thread_ts"]))
            if parent is None:
                return {"ok": False, "error": "thread_not_found"}
            parent = store[parent["thread_ts"]] if parent["thread_ts"] else parent
        self._seq += 1
        ts = f"{1700000000 + self._seq // 10000}.{self._seq % 10000 * 100:06d}"
        record = {
            "ts": ts, "text": text, "blocks": blocks, "edits": 0,
            "thread_ts": parent["ts"] if parent else None,
            "broadcast": bool(parent) and _truthy(body.get("reply_broadcast")),
        }  # fmt: skip
        store[ts] = record
        return {"ok": True, "channel": cid, "ts": ts, "message": _wire(record)}

    def _webhook(self, name: str, body: dict | None) -> tuple[int, dict, str]:
        fault = self._fault(name)
        if fault:
            error = fault.error or ("rate_limited" if fault.status == 429 else "internal_error")
            return fault.status, _retry_after(fault.retry_after), error
        if name in self.webhook_answers:
            status, text, *retry = self.webhook_answers[name]
            return status, _retry_after(retry[0] if retry else None), text
        if body is None:
            return 400, {}, "invalid_payload"
        if not body.get("text") and not body.get("blocks") and not body.get("attachments"):
            return 400, {}, "no_text"
        if body.get("blocks") is not None and block_errors(body["blocks"]):
            return 400, {}, "invalid_blocks"
        return 200, {}, "ok"


def _wire(record: dict[str, Any]) -> dict[str, Any]:
    """A stored message as Slack's API shows it."""
    message: dict[str, Any] = {
        "type": "message", "text": record["text"], "user": BOT_USER_ID, "bot_id": BOT_ID,
        "team": TEAM_ID, "ts": record["ts"],
    }  # fmt: skip
    if record["blocks"] is not None:
        message["blocks"] = record["blocks"]
    if record["thread_ts"]:
        message["thread_ts"] = record["thread_ts"]
    if record["broadcast"]:
        message["subtype"] = "thread_broadcast"
    if record["edits"]:
        message["edited"] = {"user": BOT_USER_ID, "ts": record["ts"]}
    return message


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any] | None:
    """JSON or form fields (last value wins); None when unparsable or not an object."""
    try:
        text = raw.decode("utf-8")
        if "json" in content_type:
            value = json.loads(text) if text.strip() else {}
            return value if isinstance(value, dict) else None
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
    except ValueError:
        return None


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _retry_after(seconds: int | None) -> dict[str, str]:
    return {} if seconds is None else {"Retry-After": str(seconds)}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops bursts of connections (a 1 s SYN retry)
    fake: FakeSlack


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        fake: FakeSlack = self.server.fake  # type: ignore[attr-defined]  # a _Server
        try:
            status, answer_headers, data = fake._answer(self.path, headers, raw)
        except Exception as exc:  # a bug of the fake: say so instead of dropping the connection
            status, answer_headers, data = 500, {}, f"fake_slack: {exc!r}".encode()
        self.send_response(status)
        for name, value in answer_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass
