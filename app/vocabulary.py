"""The contract's words, each spelled once: every state, reason, event type and outcome is a StrEnum
here, used as it is by the models, the pydantic request and response models and the templates.
A member *is* its string (``WatchState.WATCHING == "watching"``), so rows, JSON and SQL compare
with it directly.

Nothing in this module imports from the rest of the app (it is the bottom layer).
"""

from __future__ import annotations

from enum import StrEnum


class WatchState(StrEnum):
    """Where a watch is: ``watching`` until it ends in one of the other states."""

    WATCHING = "watching"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    STOPPED = "stopped"
    ERROR = "error"


#: Every watch state, in the contract's order.
WATCH_STATES: tuple[WatchState, ...] = tuple(WatchState)
#: The states a watch never leaves.
ENDED_STATES: frozenset[WatchState] = frozenset(WatchState) - {WatchState.WATCHING}


class WatchReason(StrEnum):
    """Why a watch ended or changed endpoint generation (the watch's ``reason``)."""

    EXPIRED = "expired"
    ASSET_NOT_FOUND = "asset_not_found"
    STOPPED = "stopped"
    UPSTREAM_REJECTED = "upstream_rejected"
    GENERATION_GONE = "generation_gone"
    #: Workflows (``import``, ``analyze``, ``summarize``): a request that starts work was refused,
    #: or the work itself failed.
    IMPORT_REJECTED = "import_rejected"
    IMPORT_FAILED = "import_failed"
    ANALYZE_REJECTED = "analyze_rejected"
    SUMMARIZE_REJECTED = "summarize_rejected"
    SUMMARY_FAILED = "summary_failed"


class WatchStage(StrEnum):
    """Which part of its workflow a watch is in (``done`` once it ended, whatever it asked for)."""

    IMPORTING = "importing"
    ANALYZING = "analyzing"
    SUMMARIZING = "summarizing"
    DONE = "done"


class WorkflowStep(StrEnum):
    """The next thing the bridge does for a workflow (``workflows.step``).

    The ``*_request`` steps call an upstream endpoint that starts work; ``import_status`` and
    ``summary_status`` follow that work; ``analysis`` means the watch follows its asset with the
    ordinary polls (nothing for the workflow job to do until the analysis ends); ``done``: nothing left.
    """

    IMPORT_REQUEST = "import_request"
    IMPORT_STATUS = "import_status"
    ANALYZE_REQUEST = "analyze_request"
    ANALYSIS = "analysis"
    SUMMARIZE_REQUEST = "summarize_request"
    SUMMARY_STATUS = "summary_status"
    DONE = "done"


class EventType(StrEnum):
    """The ``type`` of an event (and of the webhook envelope that carries it)."""

    ANALYSIS_COMPLETED = "analysis.completed"
    ANALYSIS_FAILED = "analysis.failed"
    ANALYSIS_CANCELLED = "analysis.cancelled"
    ANALYSIS_STATUS_CHANGED = "analysis.status_changed"
    WATCH_EXPIRED = "watch.expired"
    WATCH_ERROR = "watch.error"
    BRIDGE_TEST = "bridge.test"
    #: To ``BRIDGE_ALERT_TARGETS`` only: a condition the operators must know of started or ended.
    BRIDGE_ALERT = "bridge.alert"
    #: Workflows: the import of an object, and the scene summary after the analysis.
    ASSET_IMPORTED = "asset.imported"
    ASSET_IMPORT_FAILED = "asset.import_failed"
    SUMMARY_COMPLETED = "summary.completed"
    SUMMARY_FAILED = "summary.failed"
    SUMMARY_CANCELLED = "summary.cancelled"
    #: Opt-in: the upstream status has not changed for the watch's ``stalled_after_seconds``.
    ANALYSIS_STALLED = "analysis.stalled"


#: The events a registration may subscribe to (``bridge.*`` are the bridge's own).
SUBSCRIBABLE_EVENTS: tuple[EventType, ...] = tuple(
    e for e in EventType if e not in (EventType.BRIDGE_TEST, EventType.BRIDGE_ALERT)
)
#: The events of a registration that names none (unchanged by 0.2: its events are opt-in).
DEFAULT_EVENTS: tuple[EventType, ...] = (
    EventType.ANALYSIS_COMPLETED,
    EventType.ANALYSIS_FAILED,
    EventType.ANALYSIS_CANCELLED,
    EventType.WATCH_EXPIRED,
    EventType.WATCH_ERROR,
)
#: The events that end a workflow's stages, added to a workflow watch's ``events`` by itself.
IMPORT_EVENTS = (EventType.ASSET_IMPORTED, EventType.ASSET_IMPORT_FAILED)
SUMMARY_EVENTS = (
    EventType.SUMMARY_COMPLETED,
    EventType.SUMMARY_FAILED,
    EventType.SUMMARY_CANCELLED,
)


class ApiGeneration(StrEnum):
    """A generation of the upstream status endpoint; the value is its name in the API and config."""

    VIDEO_ASSETS = "video-assets"  # deprecated, to be turned off January 2027
    ASSETS = "assets"  # deprecated, to be removed January 2027
    INDEX = "index"  # current


class TargetType(StrEnum):
    """Where a notification goes."""

    WEBHOOK = "webhook"
    SLACK = "slack"
    SLACK_WEBHOOK = "slack_webhook"
    HTTP = "http"  # any chat tool or API: a JSON body rendered from a template


class Language(StrEnum):
    """The language of a target's default messages (``BRIDGE_LANGUAGE`` unless the target names one)."""

    EN = "en"
    KO = "ko"
    JA = "ja"


class DeliveryState(StrEnum):
    """A delivery's state: ``pending`` until it succeeded, failed for good, or ran out of tries."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"


class ReplayState(StrEnum):
    """Which ended deliveries an endpoint's replay sends again."""

    DEAD = "dead"
    FAILED = "failed"
    ANY = "any"  # dead, failed and succeeded


class DeliveryOutcome(StrEnum):
    """What one delivery attempt asks of the outbox (stored as the attempt's ``outcome``)."""

    SUCCEEDED = "succeeded"
    RETRY = "retry"  # a failed attempt: next one by the retry schedule, dead after the last
    #: Stored only (notifiers never return it): the failed attempt after which the retry schedule
    #: had run out, so the delivery is ``dead``. ``retry`` on the attempt rows always means "retried".
    GAVE_UP = "gave_up"
    THROTTLED = "throttled"  # 429/503 with Retry-After: wait it out, the attempt is not used up
    DISABLE_TARGET = "disable_target"  # the target is gone (410, channel_not_found...): failed
    REFUSED = "refused"  # the connect-time address check refused the destination: failed
    HOLD = "hold"  # a bridge-wide credentials problem: keep it, try later, disable nothing


class AlertKind(StrEnum):
    """``data.alert.kind`` of a ``bridge.alert`` event."""

    UPSTREAM_AUTH = "upstream_auth"  # the API Gateway answers 401
    UPSTREAM_UNREACHABLE = "upstream_unreachable"  # every poll failing for 5 minutes
    UPSTREAM_RATE_LIMITED = "upstream_rate_limited"  # a rate-limit pause of 5 minutes or more
    SLACK_AUTH = "slack_auth"  # Slack refuses the bot token
    WORKERS_MISSING = "workers_missing"  # no worker heartbeat for 60 s
    ENDPOINT_DISABLED = "endpoint_disabled"  # a receiver said it is gone
    DELIVERIES_DEAD = "deliveries_dead"  # a receiver's deliveries ran out of attempts


class AlertState(StrEnum):
    """``data.alert.state``: a condition began (or still holds: a reminder), or it ended."""

    FIRING = "firing"
    RESOLVED = "resolved"


class PollFailureKind(StrEnum):
    """The watch JSON's ``last_error.kind``: how a failed poll is treated."""

    TRANSIENT = "transient"  # network, timeouts, 5xx, odd answers: retried with back-off
    RATE_LIMITED = "rate_limited"  # 429: the whole bridge pauses
    AUTH = "auth"  # 401/403: the bridge's credentials (or clock); retried slowly
    PERMANENT = "permanent"  # other 4xx, a missing asset: the watch ends in error


class AuthHealth(StrEnum):
    """What the bridge knows of a credential (upstream keys, Slack token)."""

    OK = "ok"
    FAILING = "failing"
    UNKNOWN = "unknown"


class ReadinessStatus(StrEnum):
    """``/readyz``'s ``status``."""

    READY = "ready"
    #: Ready, with alerts firing (still 200): ``alerts`` names them.
    DEGRADED = "degraded"
    NO_WORKER = "no_worker"
    UNAVAILABLE = "unavailable"


class DatabaseHealth(StrEnum):
    """``/readyz``'s ``database``."""

    OK = "ok"
    UNREACHABLE = "unreachable"
    #: It answers, but without this code's schema (``mi-bridge db upgrade`` has not run yet).
    SCHEMA_MISSING = "schema_missing"


class Liveness(StrEnum):
    """``/healthz``'s ``status``: the process serves."""

    OK = "ok"
