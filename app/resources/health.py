"""What ``/healthz`` and ``/readyz`` answer."""

from __future__ import annotations

from pydantic import Field

from app.outbox.envelopes import ContractModel
from app.resources.fields import Timestamp
from app.vocabulary import AlertKind, AuthHealth, DatabaseHealth, Liveness, ReadinessStatus


class Health(ContractModel):
    """``/healthz``: the process serves."""

    status: Liveness


class Readiness(ContractModel):
    """``/readyz``: what the bridge needs, and the credential and rate-limit health it reports."""

    status: ReadinessStatus
    database: DatabaseHealth
    worker_last_seen: Timestamp | None
    upstream_auth: AuthHealth
    slack_auth: AuthHealth
    rate_limited_until: Timestamp | None
    accounts: dict[str, AuthHealth] = Field(
        description="each NCP account's authentication health, by the short fingerprint of its "
        "access key (never the key)"
    )
    alerts: list[AlertKind] = Field(
        description="the kinds of the bridge.alert conditions firing now (status degraded)"
    )
