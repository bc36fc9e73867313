"""Watches as the API, the CLI and the dashboard show them: the watch with its targets, status
history and deliveries, and a page of watches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import Field

from app.clock import rfc3339
from app.models import Delivery as DeliveryRow
from app.models import Watch as WatchRow
from app.models import Workflow as WorkflowRow
from app.outbox.envelopes import ContractModel, Count, WatchId
from app.resources.deliveries import Delivery, delivery_resource
from app.resources.fields import Timestamp
from app.resources.targets import MASKED, Target, mask_slack_webhook, target_resource
from app.vocabulary import (
    ApiGeneration,
    PollFailureKind,
    TargetType,
    WatchReason,
    WatchStage,
    WatchState,
)
from app.watches.register_statement import NewTarget, NewWatch
from app.watches.validation import SubscribableEvent
from app.watches.workflows import stage_of


class HistoryItem(ContractModel):
    """One observed status (or generation) change, counted from the watch's registration."""

    status: str | None
    api: ApiGeneration
    index_id: int | None
    message: str | None
    observed_at: Timestamp


class LastError(ContractModel):
    """The asset's latest failed poll, while no poll has succeeded since."""

    at: Timestamp
    kind: PollFailureKind
    status_code: int | None = Field(description="the HTTP status, null for network errors")
    message: str
    consecutive: Count = Field(description="failed polls in a row")
    request_id: str | None = Field(
        description="NCP's x-ncp-request-id of the failed answer, for a support ticket"
    )


class ImportView(ContractModel):
    """The object a workflow imports, and how its import went."""

    bucket_name: str
    key: str
    status: str | None = Field(description="uploadStatus: IN_PROGRESS, COMPLETED, FAILED, ...")
    message: str | None = Field(description="uploadResult, the upstream's own words")
    metadata: dict[str, Any] | None = Field(description="metaData: resolution, durationMs, ...")


class SummaryView(ContractModel):
    """The scene summary of a workflow that asked for one."""

    status: str | None = Field(
        description="SUMMARIZE_COMPLETED, SUMMARIZE_FAIL, ...; null: not yet"
    )
    message: str | None


class WorkflowView(ContractModel):
    """What the registration asked the bridge to start, and how far it got."""

    import_: ImportView | None = Field(alias="import", description="the object to import")
    analyze: dict[str, Any] | None = Field(description="the analysis request's options")
    summarize: dict[str, Any] | None = Field(description="the summary request's options")
    summary: SummaryView | None
    last_error: str | None = Field(
        description="the latest failed call of the workflow (retried), null once one succeeds"
    )


class Watch(ContractModel):
    """A watch: its state, the last status seen, its targets, status history and deliveries."""

    id: WatchId
    state: WatchState
    stage: WatchStage = Field(description="importing, analyzing, summarizing; done once ended")
    workspace: str
    project_id: str
    asset_id: str | None = Field(description="null only while an import has not given it yet")
    api: ApiGeneration
    status: str | None
    index_id: int | None
    message: str | None = Field(description="the upstream's own text")
    reason: WatchReason | None = Field(description="why the watch ended or changed generation")
    labels: dict[str, str]
    events: list[SubscribableEvent]
    targets: list[Target]
    created_at: Timestamp
    updated_at: Timestamp
    deadline_at: Timestamp
    finished_at: Timestamp | None
    last_polled_at: Timestamp | None
    next_poll_at: Timestamp | None = Field(description="null once the watch has ended")
    poll_count: Count
    last_error: LastError | None = Field(
        description="the latest poll failed: why (null once a poll succeeds)"
    )
    stalled_after_seconds: float | None = Field(
        description="analysis.stalled after the status stayed the same this long (null: never)"
    )
    workflow: WorkflowView | None = Field(description="null for a watch that only watches")
    history: list[HistoryItem]
    deliveries: list[Delivery]


class WatchList(ContractModel):
    """A page of watches, newest first; pass ``next_cursor`` back as ``cursor`` (null: last page)."""

    items: list[Watch]
    next_cursor: WatchId | None


def watch_resource(
    watch: WatchRow,
    deliveries: Sequence[tuple[DeliveryRow, str]] = (),
    generated_secrets: dict[str, str] | None = None,
) -> Watch:
    """A watch row (targets, history and asset loaded, as ``app.watches.queries`` loads them) with
    its (delivery, event type) rows; ``generated_secrets`` (target id to secret) only in the answer
    to the registration that generated them."""
    secrets = generated_secrets or {}
    return Watch(
        id=watch.id,
        state=watch.state,
        stage=stage_of(watch),
        workspace=watch.workspace,
        project_id=watch.project_id,
        asset_id=watch.asset_id,
        api=watch.api,
        status=watch.status,
        index_id=watch.index_id,
        message=watch.message,
        reason=watch.reason,
        labels=watch.labels,
        events=watch.events,
        targets=[target_resource(target, secrets.get(target.id)) for target in watch.targets],
        created_at=watch.created_at,
        updated_at=watch.updated_at,
        deadline_at=watch.deadline_at,
        finished_at=watch.finished_at,
        last_polled_at=watch.last_polled_at,
        next_poll_at=_next_poll_at(watch),
        poll_count=watch.poll_count,
        last_error=last_error(watch),
        stalled_after_seconds=watch.stalled_after_seconds,
        workflow=workflow_view(watch.workflow),
        # A status change row's columns are the shape's fields (and more, which are not read).
        history=[HistoryItem.model_validate(c, from_attributes=True) for c in watch.history],
        deliveries=[delivery_resource(delivery, kind) for delivery, kind in deliveries],
    )


def workflow_view(workflow: WorkflowRow | None) -> WorkflowView | None:
    if workflow is None:
        return None
    imported = None
    if workflow.import_key is not None:
        imported = ImportView(
            bucket_name=workflow.import_bucket or "", key=workflow.import_key,
            status=workflow.import_status, message=workflow.import_message,
            metadata=workflow.import_metadata,
        )  # fmt: skip
    summary = None
    if workflow.summarize_options is not None:
        summary = SummaryView(status=workflow.summary_status, message=workflow.summary_message)
    return WorkflowView.model_validate({
        "import": imported, "analyze": workflow.analyze_options,
        "summarize": workflow.summarize_options, "summary": summary,
        "last_error": workflow.last_error,
    })  # fmt: skip


def last_error(watch: WatchRow) -> LastError | None:
    """The asset's latest failed poll as this watch saw it: while watching, the asset's current
    one; once ended, the one it ended with (the asset may have been polled for other watches since)."""
    asset = watch.asset
    if asset is None or asset.last_error is None or asset.last_polled_at is None:
        return None
    if watch.finished_at is not None and asset.last_polled_at > watch.finished_at:
        return None
    return LastError(
        at=asset.last_polled_at,
        kind=asset.last_error_kind or PollFailureKind.TRANSIENT,
        status_code=asset.last_error_status,
        message=asset.last_error,
        consecutive=max(1, asset.consecutive_errors),
        request_id=asset.last_error_request_id,
    )


def _next_poll_at(watch: WatchRow) -> datetime | None:
    """The asset's next poll is the watch's only while it watches: an ended watch has none, even
    when other watches of the asset keep it polled."""
    if watch.state != WatchState.WATCHING or watch.asset is None:
        return None
    return watch.asset.next_poll_at


def watch_list(
    watches: Sequence[WatchRow],
    deliveries: dict[str, list[tuple[DeliveryRow, str]]],
    next_cursor: str | None,
) -> WatchList:
    """A page of watches, each with its deliveries (``deliveries`` maps watch ids to them)."""
    return WatchList(
        items=[watch_resource(watch, deliveries.get(watch.id, ())) for watch in watches],
        next_cursor=next_cursor,
    )


def registered_watch_json(watch: NewWatch) -> dict[str, Any]:
    """The 201 body of a registration made by ``app.watches.register_statement``, as a JSON-ready
    dict: what ``watch_resource(row, generated_secrets=...).as_json()`` gives for the same watch
    (key for key, in the same order: ``tests/test_registration_fast_path.py`` holds them equal),
    written from the values without building and dumping the pydantic models. A new watch is
    watching, plain (no workflow, stage ``analyzing``), with no history and no deliveries."""
    asset = watch.asset
    return {
        "id": watch.id,
        "state": WatchState.WATCHING.value,
        "stage": WatchStage.ANALYZING.value,
        "workspace": watch.workspace,
        "project_id": watch.project_id,
        "asset_id": watch.asset_id,
        "api": str(watch.api),
        "status": None,
        "index_id": None,
        "message": None,
        "reason": None,
        "labels": watch.labels,
        "events": watch.events,
        "targets": [_target_json(t, watch.generated_secrets.get(t.id)) for t in watch.targets],
        "created_at": rfc3339(watch.created_at),
        "updated_at": rfc3339(watch.created_at),
        "deadline_at": rfc3339(watch.deadline_at),
        "finished_at": None,
        "last_polled_at": None,
        "next_poll_at": rfc3339(asset["next_poll_at"]),
        "poll_count": 0,
        "last_error": _last_error_json(asset),
        "stalled_after_seconds": (
            None if watch.stalled_after_seconds is None else float(watch.stalled_after_seconds)
        ),
        "workflow": None,
        "history": [],
        "deliveries": [],
    }


def _last_error_json(asset: dict[str, Any]) -> dict[str, Any] | None:
    """``last_error`` of a watching watch: its asset's latest failed poll (``last_error``)."""
    if asset["last_error"] is None or asset["last_polled_at"] is None:
        return None
    return {
        "at": rfc3339(asset["last_polled_at"]),
        "kind": str(PollFailureKind(asset["last_error_kind"] or PollFailureKind.TRANSIENT)),
        "status_code": asset["last_error_status"],
        "message": asset["last_error"],
        "consecutive": max(1, asset["consecutive_errors"]),
        "request_id": asset["last_error_request_id"],
    }


def _target_json(target: NewTarget, generated_secret: str | None) -> dict[str, Any]:
    """``target_resource(row, generated_secret).as_json()`` for a new target (the endpoint's
    columns for a reference): each type's keys in its model's field order, ``endpoint``,
    ``template``, ``language`` and ``secret`` only when they have a value."""
    source: Any = target.endpoint or target.__dict__
    kind = target.type
    shown: dict[str, Any] = {"id": target.id, "type": kind}
    if kind == TargetType.SLACK:
        shown["channel"] = source["channel"]
    elif kind == TargetType.SLACK_WEBHOOK:
        shown["url"] = mask_slack_webhook(source["url"] or "")
    elif kind == TargetType.HTTP:
        shown["url"] = source["url"]
        shown["method"] = source["method"] or "POST"
        shown["headers"] = dict.fromkeys(source["headers"] or {}, MASKED)
        shown["body"] = source["body"] or ""
    else:
        shown["url"] = source["url"]
    shown["disabled"] = source["disabled"]
    shown["disabled_reason"] = source["disabled_reason"]
    if target.endpoint is not None:
        shown["endpoint"] = target.endpoint["name"]
    if kind in (TargetType.SLACK, TargetType.SLACK_WEBHOOK) and source["template"] is not None:
        shown["template"] = source["template"]
    if kind != TargetType.WEBHOOK and source["language"] is not None:
        shown["language"] = str(source["language"])
    if generated_secret is not None and kind == TargetType.WEBHOOK:
        shown["secret"] = generated_secret
    return shown
