"""The bridge's tables (SQLAlchemy 2 declarative). The database is the only coordinator."""

from app.models.base import Base, new_id
from app.models.endpoints import Endpoint
from app.models.operations import (
    Alert,
    AuthFailure,
    BridgeState,
    DashboardSession,
    IdempotencyKey,
    UpstreamAccount,
    WorkerHeartbeat,
)
from app.models.outbox import Delivery, DeliveryAttempt, Event
from app.models.watches import (
    ALERTS_WATCH_ID,
    SYSTEM_STATE,
    USER_WATCHES,
    WATCHING_ONLY,
    Asset,
    StatusChange,
    Target,
    Watch,
)
from app.models.workflows import Workflow

__all__ = [
    "ALERTS_WATCH_ID",
    "SYSTEM_STATE",
    "USER_WATCHES",
    "WATCHING_ONLY",
    "Alert",
    "Asset",
    "AuthFailure",
    "Base",
    "BridgeState",
    "DashboardSession",
    "Delivery",
    "DeliveryAttempt",
    "Endpoint",
    "Event",
    "IdempotencyKey",
    "StatusChange",
    "Target",
    "UpstreamAccount",
    "Watch",
    "WorkerHeartbeat",
    "Workflow",
    "new_id",
]
