"""The key pairs the simulated API Gateway accepts, each allowed for some workspaces or for all.

A request signed with a known pair for a workspace the pair is not allowed for is refused like NCP's
"permission denied" (401, errorCode 210). Not thread-safe: ``SimulatorState`` serialises every call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: The workspace list entry meaning "every workspace".
ALL_WORKSPACES = "*"


@dataclass(frozen=True)
class KeyPair:
    """A secret key and the workspaces its access key may use (``None``: every workspace)."""

    secret_key: str
    workspaces: frozenset[str] | None = None

    def allows(self, workspace: str) -> bool:
        """True if requests for ``workspace`` may use this pair."""
        return self.workspaces is None or workspace in self.workspaces


def key_pair(secret_key: str, workspaces: Iterable[str] | None = None) -> KeyPair:
    """A KeyPair; a workspace list containing ``"*"`` (or none at all) allows every workspace."""
    if workspaces is None:
        return KeyPair(secret_key)
    chosen = frozenset(workspaces)
    return KeyPair(secret_key, None if ALL_WORKSPACES in chosen else chosen)


class KeyRing:
    """Access key -> KeyPair, plus how many upstream requests each accepted key made."""

    def __init__(self) -> None:
        self._pairs: dict[str, KeyPair] = {}
        self._requests: dict[str, int] = {}

    def put(self, access_key: str, pair: KeyPair) -> bool:
        """Add or replace a pair; True if it is new."""
        created = access_key not in self._pairs
        self._pairs[access_key] = pair
        return created

    def remove(self, access_key: str) -> bool:
        """Forget a pair; False if unknown."""
        return self._pairs.pop(access_key, None) is not None

    def secrets(self) -> dict[str, str]:
        """Access key -> secret key, as signature verification reads them."""
        return {access: pair.secret_key for access, pair in self._pairs.items()}

    def allows(self, access_key: str, workspace: str) -> bool:
        """True if ``access_key`` is known and allowed for ``workspace``."""
        pair = self._pairs.get(access_key)
        return pair is not None and pair.allows(workspace)

    def count_request(self, access_key: str) -> None:
        """One upstream request made with ``access_key`` (refused ones too); unknown keys are not
        counted."""
        if access_key in self._pairs:
            self._requests[access_key] = self._requests.get(access_key, 0) + 1

    def clear_counts(self) -> None:
        """Zero every key's request count (the pairs stay)."""
        self._requests = {}

    def view(self, access_key: str) -> dict[str, Any] | None:
        """The control API's description of one pair (never the secret), or None if unknown."""
        pair = self._pairs.get(access_key)
        if pair is None:
            return None
        workspaces = [ALL_WORKSPACES] if pair.workspaces is None else sorted(pair.workspaces)
        return {
            "access_key": access_key,
            "workspaces": workspaces,
            "requests": self._requests.get(access_key, 0),
        }

    def views(self) -> list[dict[str, Any]]:
        """Every pair's description, in the order they were added."""
        return [view for access in self._pairs if (view := self.view(access)) is not None]
