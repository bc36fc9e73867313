"""Registering and stopping watches: the domain logic behind ``POST``/``DELETE /api/v1/watches``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.config import Settings
from app.models import Watch
from app.notify.webhook import GENERATED_SECRET_BYTES
from app.vocabulary import ApiGeneration, EventType, WatchReason, WatchState
from app.watches.assets import unschedule_if_unwatched, upsert_due_asset
from app.watches.endpoint_refs import build_target, resolve_endpoint_refs
from app.watches.validation import (
    MAX_SECRET_BYTES,
    TargetIn,
    WatchCreate,
    WebhookTargetIn,
)
from app.watches.workflows import (
    follows_asset_now,
    initial_stage,
    plan_workflow,
    workflow_events,
)

assert GENERATED_SECRET_BYTES <= MAX_SECRET_BYTES


@dataclass
class Registration:
    """A new watch and the secrets generated for it (shown once, in the 201 response)."""

    watch: Watch
    generated_secrets: dict[str, str] = field(default_factory=dict)


def register_watch(
    session: Session,
    request: WatchCreate,
    settings: Settings,
    default_targets: Sequence[TargetIn],
    now: datetime,
) -> Registration:
    """Add a watch, its targets and (if new) its asset row; the asset becomes due now.

    ``default_targets`` (validated ``BRIDGE_DEFAULT_TARGETS``) are used when the request names none.
    Raises ``InvalidWatch`` for a reference to no endpoint. The caller commits.
    """
    specs = request.targets or default_targets
    endpoints = resolve_endpoint_refs(session, specs, from_defaults=not request.targets)
    # An import gives an asset of today's generation unless the registration names another.
    api = request.api or (ApiGeneration.INDEX if request.import_ else settings.mi_default_api)
    timeout = request.timeout_seconds or settings.bridge_watch_timeout
    workflow = plan_workflow(request, now)
    asset = None
    if follows_asset_now(workflow):
        if request.asset_id is None:
            raise AssertionError("validated: a watch without import has an asset_id")
        asset = upsert_due_asset(
            session, request.workspace, request.project_id, request.asset_id, api, now
        )
    events = workflow_events(request)
    stalled_after = request.stalled_after_seconds or settings.bridge_stalled_after
    watch = Watch(
        state=WatchState.WATCHING,
        workspace=request.workspace,
        project_id=request.project_id,
        asset_id=request.asset_id,
        api=api,
        asset_pk=asset.pk if asset is not None else None,
        asset=asset,
        labels=dict(request.labels),
        events=events,
        created_at=now,
        updated_at=now,
        deadline_at=now + timedelta(seconds=timeout),
        poll_count=0,
        stage=initial_stage(workflow),
        stalled_after_seconds=stalled_after if EventType.ANALYSIS_STALLED in events else None,
    )
    registration = Registration(watch)
    for position, spec in enumerate(specs):
        watch.targets.append(build_target(spec, endpoints.get(position), position, now))
    session.add(watch)
    session.flush()  # assigns target ids
    if workflow is not None:
        workflow.watch_id = watch.id
        session.add(workflow)
    # Known already: the 201 body reads it, and a lazy load would be one more round trip.
    set_committed_value(watch, "workflow", workflow)
    set_committed_value(watch, "history", [])  # a new watch has none: no SELECT to learn it
    for target, spec in zip(watch.targets, specs, strict=True):
        if isinstance(spec, WebhookTargetIn) and spec.secret is None:
            registration.generated_secrets[target.id] = target.secret or ""
    return registration


def stop_watch(session: Session, watch: Watch, now: datetime) -> bool:
    """End a watching watch as ``stopped`` (no events after this); False if it had already ended.

    Events created before the stop are still delivered. The caller commits.
    """
    if watch.state != WatchState.WATCHING:
        return False
    watch.state = WatchState.STOPPED
    watch.reason = WatchReason.STOPPED
    watch.finished_at = now
    watch.updated_at = now
    session.flush()
    if watch.asset is not None:
        unschedule_if_unwatched(session, watch.asset)
    return True
