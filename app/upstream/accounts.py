"""NCP accounts: which key pair signs the requests of which workspace (``NCP_CREDENTIALS``).

``NCP_CREDENTIALS`` maps workspace names, or ``"*"`` for every workspace it does not name, to key
pairs; ``NCP_ACCESS_KEY``/``NCP_SECRET_KEY`` serve the workspaces it does not name when it has no
``"*"`` (with ``"*"`` they are not used). An access key is one account: several workspaces may share
it, and its trouble (401, 429, ``MI_MAX_RPS``) is its own.

An account is named everywhere outside the request signer by its **fingerprint**: the first 8 hex
digits of the SHA-256 of its access key (the contract's rule). It identifies the key to whoever
holds it, says nothing of the secret key, and cannot be turned back into the access key.

Where an account's health lives: with a single account (the common deployment) in the bridge-wide
``bridge_state`` row, exactly as before accounts existed (``Account.bridge_wide``); with several,
each in its ``upstream_accounts`` row (``app.health.upstream_accounts``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from app.config import Settings

#: The ``NCP_CREDENTIALS`` entry that serves every workspace the others do not name.
EVERY_WORKSPACE = "*"
#: Hex digits of the SHA-256 of the access key that make a fingerprint.
FINGERPRINT_HEX_DIGITS = 8


def fingerprint(access_key: str) -> str:
    """The short, non-reversible name of the account of ``access_key`` (8 hex digits)."""
    return hashlib.sha256(access_key.encode("utf-8")).hexdigest()[:FINGERPRINT_HEX_DIGITS]


@dataclass(frozen=True)
class Account:
    """One key pair. ``secret_key`` never shows in ``repr``; log and show ``fingerprint`` only."""

    access_key: str
    secret_key: str = field(repr=False)
    fingerprint: str
    #: The only account of this bridge: its health is the ``bridge_state`` row's.
    bridge_wide: bool = True

    @property
    def configured(self) -> bool:
        """Whether a key was configured at all (an unconfigured bridge signs with empty keys)."""
        return bool(self.access_key)


def make_account(access_key: str, secret_key: str, *, bridge_wide: bool = True) -> Account:
    """An ``Account`` of this key pair, its fingerprint computed."""
    return Account(access_key, secret_key, fingerprint(access_key), bridge_wide)


class Accounts:
    """Every configured account, and which one serves a workspace (``account_for``)."""

    def __init__(self, default: Account, by_workspace: Mapping[str, Account] | None = None) -> None:
        named = {ws: acc for ws, acc in (by_workspace or {}).items() if ws != EVERY_WORKSPACE}
        keys = {default.access_key} | {acc.access_key for acc in named.values()}
        keys.discard("")
        several = len(keys) > 1
        self._by_key = {
            acc.access_key: make_account(acc.access_key, acc.secret_key, bridge_wide=not several)
            for acc in (default, *named.values())
        }
        #: Serves every workspace ``by_workspace`` does not name.
        self.default = self._by_key[default.access_key]
        self._by_workspace = {ws: self._by_key[acc.access_key] for ws, acc in named.items()}
        #: Whether more than one access key is configured (each account's health in its own row).
        self.several = several
        if len({acc.fingerprint for acc in self._by_key.values()}) != len(self._by_key):
            raise ValueError("two access keys share a fingerprint: use another access key")

    @classmethod
    def single(cls, access_key: str, secret_key: str) -> Accounts:
        """One key pair for every workspace."""
        return cls(make_account(access_key, secret_key))

    @classmethod
    def from_settings(cls, settings: Settings) -> Accounts:
        """The accounts of ``NCP_CREDENTIALS`` and ``NCP_ACCESS_KEY``/``NCP_SECRET_KEY``."""
        pairs = {
            name: make_account(pair.access_key, pair.secret_key.get_secret_value())
            for name, pair in settings.ncp_credentials.items()
        }
        default = pairs.get(EVERY_WORKSPACE)
        if default is None:
            secret = settings.ncp_secret_key
            default = make_account(
                settings.ncp_access_key or "", secret.get_secret_value() if secret else ""
            )
        return cls(default, pairs)

    def account_for(self, workspace: str) -> Account:
        """The account whose keys sign requests for ``workspace``."""
        return self._by_workspace.get(workspace, self.default)

    def __iter__(self) -> Iterator[Account]:
        """Each configured account once (none when no key is configured), by fingerprint."""
        configured = (acc for acc in self._by_key.values() if acc.configured)
        return iter(sorted(configured, key=lambda acc: acc.fingerprint))

    def named_workspaces(self) -> dict[str, str]:
        """Workspace -> fingerprint for the workspaces not served by the default account."""
        default = self.default.fingerprint
        return {
            ws: acc.fingerprint
            for ws, acc in self._by_workspace.items()
            if acc.fingerprint != default
        }


#: Settings objects remembered (a process has one; a test run builds many).
_CACHE_SIZE = 64
_cache: dict[int, tuple[Settings, Accounts]] = {}
_cache_lock = threading.Lock()


def accounts_of(settings: Settings) -> Accounts:
    """``Accounts.from_settings(settings)``, built once per settings object."""
    with _cache_lock:
        cached = _cache.get(id(settings))
        if cached is not None and cached[0] is settings:
            return cached[1]
        accounts = Accounts.from_settings(settings)
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[id(settings)] = (settings, accounts)
        return accounts
