"""Watch states and the reasons a watch ends or changes generation (the contract's vocabulary)."""

from __future__ import annotations

WATCHING = "watching"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
EXPIRED = "expired"
STOPPED = "stopped"
ERROR = "error"

ALL = (WATCHING, COMPLETED, FAILED, CANCELLED, EXPIRED, STOPPED, ERROR)
ENDED = frozenset(ALL) - {WATCHING}

REASON_EXPIRED = "expired"
REASON_ASSET_NOT_FOUND = "asset_not_found"
REASON_STOPPED = "stopped"
REASON_UPSTREAM_REJECTED = "upstream_rejected"
REASON_GENERATION_GONE = "generation_gone"
