"""What one running bridge shares between requests, CLI commands and worker ticks, typed.

``create_app`` builds one ``Services`` and stores it on the Flask app; code running in a request or
CLI command reads it with ``services()``, a worker with ``services(app)``. It replaces reaching into
``app.config`` or ``app.extensions`` by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import Flask, current_app

from app.clock import Clock
from app.config import Settings
from app.notify.context import NotifierContext
from app.watches.validation import TargetIn, ValidationSettings

_EXTENSION = "mi_bridge"


@dataclass(frozen=True)
class Services:
    """The settings, clock, validation rules, default targets and notifier context of one app."""

    settings: Settings
    #: Scheduling time (injectable for tests); wire times always use the real clock.
    clock: Clock
    #: The resolver and private-address switch that registration URL checks use.
    validation: ValidationSettings
    #: Validated ``BRIDGE_DEFAULT_TARGETS`` (empty when unset).
    default_targets: tuple[TargetIn, ...]
    #: Validated ``BRIDGE_ALERT_TARGETS``: where ``bridge.alert`` events go (empty: nowhere).
    alert_targets: tuple[TargetIn, ...]
    #: The guarded HTTP session and Slack client notifications are sent with.
    notifier: NotifierContext

    def configured_targets(self) -> tuple[TargetIn, ...]:
        """The targets the configuration names (default and alert targets): endpoints they name
        are in use."""
        return self.default_targets + self.alert_targets

    def install(self, app: Flask) -> None:
        """Make these the services of ``app``."""
        app.extensions[_EXTENSION] = self


def services(app: Flask | None = None) -> Services:
    """The services of ``app``, or of the application handling the current request or command."""
    target = app if app is not None else current_app
    return cast(Services, target.extensions[_EXTENSION])
