"""Workflows at registration: what a registration asks the bridge to start, as a ``Workflow`` row,
and the stage a watch shows.

A watch with ``import`` has no asset yet: it follows nothing until the import gives it one. A watch
with ``analyze`` follows its asset only once the analysis request was answered (its polls count from
then: ``polls_from``). A watch with only ``summarize`` follows its asset at once, like any watch,
and requests the summary when the analysis completes.
"""

from __future__ import annotations

from datetime import datetime

from app.models import Watch, Workflow
from app.vocabulary import (
    IMPORT_EVENTS,
    SUMMARY_EVENTS,
    EventType,
    WatchStage,
    WatchState,
    WorkflowStep,
)
from app.watches.validation import WatchCreate

#: The analysis's own terminal events, which a watch that requests an analysis always gets.
ANALYSIS_END_EVENTS = (
    EventType.ANALYSIS_COMPLETED,
    EventType.ANALYSIS_FAILED,
    EventType.ANALYSIS_CANCELLED,
)


def asks_for_work(request: WatchCreate) -> bool:
    return any(x is not None for x in (request.import_, request.analyze, request.summarize))


def plan_workflow(request: WatchCreate, now: datetime) -> Workflow | None:
    """The workflow row of a registration (its ``watch_id`` set by the caller), or None for a watch
    that only watches."""
    if not asks_for_work(request):
        return None
    if request.import_ is not None:
        step, due = WorkflowStep.IMPORT_REQUEST, now
    elif request.analyze is not None:
        step, due = WorkflowStep.ANALYZE_REQUEST, now
    else:
        step, due = WorkflowStep.ANALYSIS, None
    return Workflow(
        step=step,
        import_bucket=request.import_.bucket_name if request.import_ else None,
        import_key=request.import_.key if request.import_ else None,
        analyze_options=request.analyze,
        summarize_options=request.summarize,
        next_at=due,
        interval=0.0,
        failures=0,
        created_at=now,
        updated_at=now,
    )


def follows_asset_now(workflow: Workflow | None) -> bool:
    """Whether the new watch follows its asset from registration on (no request to wait for)."""
    return workflow is None or workflow.step == WorkflowStep.ANALYSIS


def initial_stage(workflow: Workflow | None) -> str | None:
    """The stage a new watch starts in (None: a plain watch, shown as ``analyzing``)."""
    if workflow is None:
        return None
    if workflow.step == WorkflowStep.IMPORT_REQUEST:
        return WatchStage.IMPORTING
    return WatchStage.ANALYZING


def workflow_events(request: WatchCreate) -> list[str]:
    """The registration's events plus the terminal events of the stages it asks for."""
    events = [str(event) for event in request.events]
    wanted: list[str] = []
    if request.import_ is not None:
        wanted += IMPORT_EVENTS
    if request.analyze is not None:
        wanted += ANALYSIS_END_EVENTS
    if request.summarize is not None:
        wanted += SUMMARY_EVENTS
    return list(dict.fromkeys([*events, *(str(event) for event in wanted)]))


def stage_of(watch: Watch) -> WatchStage:
    """The watch JSON's ``stage``: ``done`` once ended, else the stored stage (``analyzing`` for a
    plain watch)."""
    if watch.state != WatchState.WATCHING:
        return WatchStage.DONE
    return WatchStage(watch.stage) if watch.stage else WatchStage.ANALYZING
