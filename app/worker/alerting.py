"""The worker's alert job: evaluate the conditions every ``BRIDGE_ALERT_INTERVAL`` seconds and wake
the delivery tick when ``bridge.alert`` events were written."""

from __future__ import annotations

from app.alerts.evaluate import Notification, evaluate_alerts
from app.db import db
from app.services import services
from app.worker.runtime import WorkerRuntime


def alert_tick(runtime: WorkerRuntime) -> list[Notification]:
    """One evaluation (see ``app.alerts.evaluate``); the notifications this worker wrote.

    The worker's start (its first evaluation) counts as the process start: before its first
    heartbeat is written it judges "no worker ever" as the web's sentinel does.
    """
    if runtime.alerts_started_at is None:
        runtime.alerts_started_at = runtime.clock()
    with runtime.app.app_context():
        try:
            written = evaluate_alerts(
                db.session(),
                runtime.settings,
                services(runtime.app).alert_targets,
                runtime.clock(),
                runtime.alerts_started_at,
            )
        finally:
            db.session.remove()
    if written and services(runtime.app).alert_targets:
        runtime.wake_delivery()
    return written
