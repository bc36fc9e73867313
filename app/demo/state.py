"""What the demo's stand-ins received: webhooks in the inbox, messages in the Slack stand-in."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class InboxEntry:
    """One webhook the demo inbox received, with the outcome of verifying its signature."""

    received_at: datetime
    webhook_id: str
    event_type: str
    verified: bool
    payload: dict[str, Any]


@dataclass
class ChatEntry:
    """One request an ``http`` target sent to the demo's chat inbox.

    ``signature`` is ``verified``, ``invalid`` or ``unsigned`` (an http target without a secret
    sends the Standard Webhooks id and timestamp but no signature).
    """

    received_at: datetime
    method: str
    headers: dict[str, str]
    body: Any
    signature: str


@dataclass
class SlackPost:
    """A message in the Slack stand-in, as Slack would show it (edits applied, thread below)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    posted_at: datetime
    edits: int = 0
    replies: list[SlackPost] = field(default_factory=list)
    broadcast: bool = False


class DemoState:
    """Thread-safe record of everything the stand-ins received (in memory: the demo is one process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.inbox: list[InboxEntry] = []
        self.chat: list[ChatEntry] = []
        self.channels: dict[str, list[SlackPost]] = {}
        self.incoming_webhook_posts: list[dict[str, Any]] = []
        self._ts = 0

    def record_webhook(self, entry: InboxEntry) -> None:
        with self._lock:
            self.inbox.append(entry)

    def record_chat(self, entry: ChatEntry) -> None:
        with self._lock:
            self.chat.append(entry)

    def chat_snapshot(self) -> list[ChatEntry]:
        """The chat inbox, newest first."""
        with self._lock:
            return list(reversed(self.chat))

    def post(
        self, channel: str, text: str, blocks: list, thread_ts: str | None, broadcast: bool
    ) -> SlackPost | None:
        """Add a message (or a thread reply); None when ``thread_ts`` names no message."""
        with self._lock:
            self._ts += 1
            post = SlackPost(channel, f"{1_700_000_000 + self._ts}.{self._ts:06d}", text, blocks,
                             datetime.now(UTC), broadcast=broadcast)  # fmt: skip
            if thread_ts is None:
                self.channels.setdefault(channel, []).append(post)
                return post
            parent = self._find(channel, thread_ts)
            if parent is None:
                return None
            parent.replies.append(post)
            return post

    def update(self, channel: str, ts: str, text: str, blocks: list) -> SlackPost | None:
        """Edit a message in place; None when there is no such message."""
        with self._lock:
            post = self._find(channel, ts)
            if post is not None:
                post.text, post.blocks, post.edits = text, blocks, post.edits + 1
            return post

    def _find(self, channel: str, ts: str) -> SlackPost | None:
        return next((p for p in self.channels.get(channel, []) if p.ts == ts), None)

    def snapshot(self) -> tuple[list[InboxEntry], dict[str, list[SlackPost]]]:
        """Copies for rendering (newest first)."""
        with self._lock:
            return list(reversed(self.inbox)), {
                c: list(reversed(p)) for c, p in self.channels.items()
            }
