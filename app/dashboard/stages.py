"""A workflow watch's stages on its page: the stages it asked for and how far it got, and the
moments of its workflow (imported, analysis requested, summary requested and its outcome) set among
the phases of its analysis on the timeline.

Pure functions of the watch's rows, its events and ``now``. A watch without a workflow has one
stage (``analyzing``) and no moments: its timeline is its phases, as before workflows.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from app.dashboard.timeline import Phase, phases
from app.vocabulary import EventType, WatchStage, WatchState

#: Where moments go among phases of the same instant: the import and the analysis request come
#: before the first status they lead to, the summary after the status that started it.
IMPORT_ORDER, ANALYZE_ORDER, PHASE_ORDER, SUMMARY_ORDER = 1, 2, 5, 8
SUMMARY_ENDS = {
    EventType.SUMMARY_COMPLETED: "Summary completed",
    EventType.SUMMARY_FAILED: "Summary failed",
    EventType.SUMMARY_CANCELLED: "Summary cancelled",
}


class EventRow(Protocol):
    """What the timeline reads of an event row: its type and when it was emitted."""

    type: str
    created_at: datetime


@dataclass(frozen=True)
class StageStep:
    """One stage the watch asked for: ``passed``, ``current``, ``ended`` (where a watch that did not
    complete stopped), ``skipped`` (after that) or ``next``."""

    stage: str
    state: str


@dataclass(frozen=True)
class Moment:
    """A moment of the workflow on the timeline; ``ongoing`` while it is still going on,
    ``trouble`` when it is a failure."""

    at: datetime
    what: str
    detail: str | None = None
    ongoing: bool = False
    trouble: bool = False
    order: int = 0
    kind: ClassVar[str] = "moment"


def asked_stages(workflow: Any) -> list[str]:
    """The stages a watch with ``workflow`` (None: a plain watch) goes through, ``done`` last."""
    if workflow is None:
        return [WatchStage.ANALYZING, WatchStage.DONE]
    stages: list[str] = []
    if workflow.import_key is not None:
        stages.append(WatchStage.IMPORTING)
    if workflow.analyze_options is not None or workflow.import_key is None:
        stages.append(WatchStage.ANALYZING)
    if workflow.summarize_options is not None:
        stages.append(WatchStage.SUMMARIZING)
    return [*stages, WatchStage.DONE]


def stage_steps(watch: Any, workflow: Any) -> list[StageStep]:
    """The stages asked for in order, each with how far the watch got: a watch that ended without
    completing stopped at the stage it was in (``ended``); ``done`` is current once it ended."""
    stages = asked_stages(workflow)
    at = watch.stage or WatchStage.ANALYZING
    position = stages.index(at) if at in stages else 0
    if watch.state == WatchState.WATCHING:
        return [
            StageStep(stage, "passed" if n < position else "current" if n == position else "next")
            for n, stage in enumerate(stages)
        ]
    steps = []
    for n, stage in enumerate(stages[:-1]):
        if watch.state == WatchState.COMPLETED or n < position:
            steps.append(StageStep(stage, "passed"))
        else:
            steps.append(StageStep(stage, "ended" if n == position else "skipped"))
    return [*steps, StageStep(WatchStage.DONE, "current")]


def options_text(options: dict[str, Any] | None) -> str:
    """Request options as compact JSON (as NCP is sent them), ``{}`` for none."""
    return json.dumps(options or {}, ensure_ascii=False)


def object_name(workflow: Any) -> str:
    """The imported object as ``bucket/key``."""
    return f"{workflow.import_bucket}/{workflow.import_key}"


def analysis_started(watch: Any, workflow: Any) -> datetime | None:
    """When the watch began following its analysis: at registration for a watch that only watches
    (or only summarises), once the analysis request was answered for one that requested it; None
    while it has not (or never will: an import without ``analyze``)."""
    if workflow is None or (workflow.import_key is None and workflow.analyze_options is None):
        return watch.polls_from or watch.created_at
    return watch.polls_from if workflow.analyze_options is not None else None


def analysis_ended(watch: Any) -> datetime | None:
    """When the analysis ended: the last status seen for a watch that went on to summarise, else
    when the watch ended."""
    if watch.stage == WatchStage.SUMMARIZING and watch.history:
        return watch.history[-1].observed_at  # the completion that started the summary
    return watch.finished_at


def timeline_items(
    watch: Any, workflow: Any, events: Sequence[EventRow], now: datetime
) -> list[Phase | Moment]:
    """The analysis's phases and the workflow's moments, in time order."""
    items: list[Phase | Moment] = []
    started = analysis_started(watch, workflow)
    if started is not None:
        items += phases(started, watch.api, watch.history, analysis_ended(watch), now)
    items += workflow_moments(watch, workflow, events)
    return sorted(
        items,
        key=lambda item: (
            (item.at, item.order) if isinstance(item, Moment) else (item.started_at, PHASE_ORDER)
        ),
    )


def workflow_moments(watch: Any, workflow: Any, events: Sequence[EventRow]) -> list[Moment]:
    """The moments of the workflow: each from its event, or from the rows while it goes on."""
    if workflow is None:
        return []
    first: dict[str, EventRow] = {}
    for event in sorted(events, key=lambda event: event.created_at):
        first.setdefault(event.type, event)
    moments = _import_moments(watch, workflow, first)
    if workflow.analyze_options is not None:
        if watch.polls_from is not None:
            moments.append(
                Moment(watch.polls_from, "Analysis requested",
                       f"options {options_text(workflow.analyze_options)}", order=ANALYZE_ORDER)
            )  # fmt: skip
        elif watch.state == WatchState.WATCHING and watch.stage == WatchStage.ANALYZING:
            imported = first.get(EventType.ASSET_IMPORTED)
            since = imported.created_at if imported is not None else watch.created_at
            moments.append(Moment(since, "Requesting an analysis", workflow.last_error,
                                  ongoing=True, order=ANALYZE_ORDER))  # fmt: skip
    return moments + _summary_moments(watch, workflow, first)


def _import_moments(watch: Any, workflow: Any, first: dict[str, EventRow]) -> list[Moment]:
    if workflow.import_key is None:
        return []
    imported = first.get(EventType.ASSET_IMPORTED)
    failed = first.get(EventType.ASSET_IMPORT_FAILED)
    if imported is not None:
        detail = f"{object_name(workflow)} as asset {workflow.imported_asset_id}"
        return [Moment(imported.created_at, "Imported", detail, order=IMPORT_ORDER)]
    if failed is not None:
        detail = f"{object_name(workflow)}: {workflow.import_message or workflow.import_status}"
        return [Moment(failed.created_at, "Import failed", detail, trouble=True,
                       order=IMPORT_ORDER)]  # fmt: skip
    if watch.state == WatchState.WATCHING:
        status = f"status {workflow.import_status}" if workflow.import_status else "requested"
        return [Moment(watch.created_at, f"Importing {object_name(workflow)}", status,
                       ongoing=True, order=IMPORT_ORDER)]  # fmt: skip
    return []


def _summary_moments(watch: Any, workflow: Any, first: dict[str, EventRow]) -> list[Moment]:
    if workflow.summarize_options is None or watch.stage != WatchStage.SUMMARIZING:
        return []  # not asked for, or the analysis never completed
    requested_at = analysis_ended(watch) or watch.updated_at
    options = f"options {options_text(workflow.summarize_options)}"
    ended = [(kind, label) for kind, label in SUMMARY_ENDS.items() if kind in first]
    watching = watch.state == WatchState.WATCHING
    if workflow.summary_status is None and watching:
        return [Moment(requested_at, "Requesting a summary", workflow.last_error or options,
                       ongoing=True, order=SUMMARY_ORDER)]  # fmt: skip
    moments = [Moment(requested_at, "Summary requested", options, order=SUMMARY_ORDER)]
    if watching and workflow.summary_status is not None:
        moments.append(Moment(requested_at, "Summarizing", f"status {workflow.summary_status}",
                              ongoing=True, order=SUMMARY_ORDER + 1))  # fmt: skip
    for kind, label in ended:
        moments.append(
            Moment(first[kind].created_at, label, workflow.summary_message,
                   trouble=kind != EventType.SUMMARY_COMPLETED, order=SUMMARY_ORDER + 1)
        )  # fmt: skip
    return moments
