"""The simulator's whole mutable world behind one lock: assets, traffic, faults, switches, config.

Schedules read ``clock`` (default ``time.monotonic``; inject another to drive time by hand) plus
the seconds ``advance_clock`` added (the control API's way to move time; never undone, so the
clock never goes back). Signature timestamps are never checked against it: the server uses the
real clock plus ``clock_offset_seconds``. Imports and scene summaries live in ``WorkflowState``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from app.simulator.assets import RUNNING, AssetKey, Pin, SimAsset
from app.simulator.credentials import KeyPair, KeyRing, key_pair
from app.simulator.faults import FaultBook, FaultSpec, FaultTarget, FiredFault
from app.simulator.gate import HoldGate
from app.simulator.settings import GenerationSwitch, SimConfig
from app.simulator.specs import AssetSpec
from app.simulator.workflow_state import (
    AnalysisConflictError,
    RequestRefusedError,
    UnknownAssetError,
    WorkflowState,
    asset_from_spec,
)
from app.upstream.statuses import ANALYZE_CANCEL
from app.vocabulary import ApiGeneration

__all__ = [
    "AnalysisConflictError",
    "RequestRefusedError",
    "SimulatorState",
    "UnknownAssetError",
]


#: Arrival times kept per asset for ``GET /_sim/requests`` (the oldest are dropped first).
REQUEST_LOG_PER_ASSET = 1000


@dataclass
class AssetTraffic:
    """Status requests to one asset id (kept even while the asset does not exist)."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    times: deque[float] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_PER_ASSET))


class SimulatorState(WorkflowState):
    """Thread-safe state of one simulator. ``reset`` returns to ``config`` as given at construction.

    Credentials (key pairs) are the server's identity, not state: reset keeps them (and zeroes their
    request counts).
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        credentials: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._base_clock = clock
        self._advanced = 0.0
        self._initial_config = config or SimConfig()
        self._keys = KeyRing()
        for access_key, secret_key in (credentials or {}).items():
            self._keys.put(access_key, key_pair(secret_key))
        self.gate = HoldGate()
        self._clear_locked()

    def _clear_locked(self) -> None:
        self._config = self._initial_config
        self._assets: dict[AssetKey, SimAsset] = {}
        self._traffic: dict[AssetKey, AssetTraffic] = {}
        self._faults = FaultBook()
        self._switches = {generation: GenerationSwitch() for generation in ApiGeneration}
        self._connections = 0
        self._requests = 0
        self._auth_failures = 0
        self._by_generation = dict.fromkeys(ApiGeneration, 0)
        self._keys.clear_counts()
        self._clear_workflows_locked()

    def now(self) -> float:
        """The schedule clock's current reading (seconds)."""
        return self._clock()

    def advance_clock(self, seconds: float) -> float:
        """Move the schedule clock ``seconds`` (>= 0) forward for good; return the new reading."""
        with self._lock:
            self._advanced += seconds
            return self._clock()

    def advanced_seconds(self) -> float:
        """How far ``advance_clock`` has moved the schedule clock in total."""
        with self._lock:
            return self._advanced

    def reset(self) -> None:
        """Clear assets, faults, switches and counters, restore the initial config, free holds."""
        with self._lock:
            self._clear_locked()
        self.gate.release_all()

    # Credentials and configuration.

    def add_credentials(
        self, access_key: str, secret_key: str, workspaces: list[str] | None = None
    ) -> bool:
        """Accept requests signed with this key pair, for ``workspaces`` (None or ``"*"``: all).

        Replaces a pair with the same access key; True if the access key is new.
        """
        return self.put_key_pair(access_key, key_pair(secret_key, workspaces))

    def put_key_pair(self, access_key: str, pair: KeyPair) -> bool:
        """Like ``add_credentials`` with a ready KeyPair."""
        with self._lock:
            return self._keys.put(access_key, pair)

    def remove_credentials(self, access_key: str) -> bool:
        """Stop accepting an access key; False if unknown."""
        with self._lock:
            return self._keys.remove(access_key)

    def credentials(self) -> dict[str, str]:
        """A copy of the accepted key pairs (access key -> secret key)."""
        with self._lock:
            return self._keys.secrets()

    def key_allows(self, access_key: str, workspace: str) -> bool:
        """True if ``access_key`` is known and allowed for ``workspace``."""
        with self._lock:
            return self._keys.allows(access_key, workspace)

    def credential_view(self, access_key: str) -> dict[str, Any] | None:
        """One pair's control-API view (never its secret), or None."""
        with self._lock:
            return self._keys.view(access_key)

    def credential_views(self) -> list[dict[str, Any]]:
        """Every pair's control-API view, with its request count."""
        with self._lock:
            return self._keys.views()

    @property
    def config(self) -> SimConfig:
        with self._lock:
            return self._config

    def update_config(self, change: Callable[[SimConfig], SimConfig]) -> SimConfig:
        """Replace the config by ``change(current)`` atomically; exceptions leave it unchanged."""
        with self._lock:
            self._config = change(self._config)
            return self._config

    # Assets.

    def put_asset(self, key: AssetKey, spec: AssetSpec) -> tuple[dict[str, Any], bool]:
        """Create or replace an asset (its schedule starts now); return (view, created)."""
        with self._lock:
            created = key not in self._assets
            asset = asset_from_spec(key, spec, self._clock())
            self._assets[key] = asset
            return self._view_locked(asset), created

    def asset_view(self, key: AssetKey) -> dict[str, Any] | None:
        """The control API's view of one asset, or None if unknown."""
        with self._lock:
            asset = self._assets.get(key)
            return None if asset is None else self._view_locked(asset)

    def asset_views(self) -> list[dict[str, Any]]:
        """Views of every asset, in creation order."""
        with self._lock:
            return [self._view_locked(asset) for asset in self._assets.values()]

    def delete_asset(self, key: AssetKey) -> bool:
        """Forget an asset and its counters; False if unknown. Auto-create may bring it back."""
        with self._lock:
            self._traffic.pop(key, None)
            return self._assets.pop(key, None) is not None

    def resolve_asset(self, key: AssetKey) -> SimAsset | None:
        """The asset, auto-created with the default schedule if allowed; None if unknown."""
        with self._lock:
            return self._resolve_locked(key)

    def project_assets(self, workspace: str, project_id: str) -> list[SimAsset]:
        """The assets of one workspace/project, in creation order."""
        with self._lock:
            return [a for a in self._assets.values() if a.key[:2] == (workspace, project_id)]

    def cancel_analysis(self, key: AssetKey) -> SimAsset:
        """Cancel a waiting or running analysis: the asset is pinned at ANALYZE_CANCEL.

        Raises UnknownAssetError, or AnalysisConflictError unless waiting or analysing.
        """
        with self._lock:
            asset = self._resolve_locked(key)
            if asset is None:
                raise UnknownAssetError(key)
            status = asset.snapshot(self._clock()).status
            if status not in RUNNING:
                raise AnalysisConflictError(status)
            self._assets[key] = asset = asset.pinned(Pin(ANALYZE_CANCEL))
            return asset

    def _view_locked(self, asset: SimAsset) -> dict[str, Any]:
        traffic = self._traffic.get(asset.key) or AssetTraffic()
        return {
            **asset.view(self._clock()),
            "requests": traffic.requests,
            "in_flight": traffic.in_flight,
            "max_in_flight": traffic.max_in_flight,
        }

    # Traffic counters.

    def count_connection(self) -> None:
        """One TCP connection accepted."""
        with self._lock:
            self._connections += 1

    def count_upstream_request(self, *, authenticated: bool, access_key: str | None = None) -> None:
        """One request to the upstream API (anything outside the control API), and per known key."""
        with self._lock:
            self._requests += 1
            if not authenticated:
                self._auth_failures += 1
            if access_key is not None:
                self._keys.count_request(access_key)

    @contextmanager
    def tracking_status_request(self, key: AssetKey, generation: ApiGeneration) -> Iterator[None]:
        """Count a status request to ``key`` for as long as it is being answered."""
        with self._lock:
            self._by_generation[generation] += 1
            traffic = self._traffic.setdefault(key, AssetTraffic())
            traffic.requests += 1
            traffic.times.append(self._clock())
            traffic.in_flight += 1
            traffic.max_in_flight = max(traffic.max_in_flight, traffic.in_flight)
        try:
            yield
        finally:
            with self._lock:
                # The same object even if the asset was deleted meanwhile: counts stay balanced.
                traffic.in_flight -= 1

    def request_log(self, asset_id: str | None = None) -> list[dict[str, Any]]:
        """Arrival times (schedule clock) of the status requests to each asset key, optionally of
        one asset id only; the last ``REQUEST_LOG_PER_ASSET`` per key."""
        with self._lock:
            return [
                {"workspace": ws, "project_id": pid, "asset_id": aid, "times": list(t.times)}
                for (ws, pid, aid), t in self._traffic.items()
                if asset_id is None or aid == asset_id
            ]

    def stats(self) -> dict[str, Any]:
        """Global counters for ``GET /_sim/stats``."""
        with self._lock:
            return {
                "connections": self._connections,
                "requests": self._requests,
                "by_generation": {g.value: n for g, n in self._by_generation.items()},
                "auth_failures": self._auth_failures,
                "max_in_flight_per_asset": max(
                    (t.max_in_flight for t in self._traffic.values()), default=0
                ),
                "held": self.gate.held,
            }

    # Faults.

    def add_fault(self, spec: FaultSpec) -> dict[str, Any]:
        """Store a fault rule after the existing ones; return its view."""
        with self._lock:
            return self._faults.add(spec).view()

    def take_fault(self, target: FaultTarget) -> FiredFault | None:
        """Consume the first fault rule matching ``target``, if any."""
        with self._lock:
            return self._faults.take(target)

    def fault_views(self) -> list[dict[str, Any]]:
        """Every rule, in order, with remaining and matched counts."""
        with self._lock:
            return [rule.view() for rule in self._faults.rules]

    def remove_fault(self, rule_id: str) -> bool:
        """Drop one rule; False if unknown."""
        with self._lock:
            return self._faults.remove(rule_id)

    def clear_faults(self) -> None:
        """Drop every rule."""
        with self._lock:
            self._faults.clear()

    # ApiGeneration switches.

    def generation_switch(self, generation: ApiGeneration) -> GenerationSwitch:
        """Whether ``generation`` answers, and how it refuses when off."""
        with self._lock:
            return self._switches[generation]

    def set_generation_switch(self, generation: ApiGeneration, switch: GenerationSwitch) -> None:
        """Turn a generation on or off."""
        with self._lock:
            self._switches[generation] = switch

    def generation_views(self) -> dict[str, Any]:
        """Every generation's switch, keyed by its name."""
        with self._lock:
            return {g.value: switch.to_dict() for g, switch in self._switches.items()}
