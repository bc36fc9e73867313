"""The workflow job: the upstream calls that start work (import, analysis, scene summary) and the
statuses of that work, one due workflow at a time, each in its own transactions.

Per tick: claim the due workflows (a lease, committed), make each one's call on the client's loop
with no transaction open, apply each answer in a transaction of its own (one workflow that cannot be
stored never holds up the others). The ordinary polls follow the analysis itself
(``app.worker.apply``); this job takes over again when it ends, for a summary.

Exactly one import per registration: the registration's ``Idempotency-Key`` makes a retried POST
answer the first watch, so there is one workflow row. Its import call is guarded by
``calling_since``, committed before the call and cleared with the answer: a worker that finds it set
(the earlier worker died during the call, or the call's answer was lost) cannot know whether NCP
imported, so it first looks the object up in the project's asset list and adopts what it finds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeGuard

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, selectinload

from app.db import db
from app.health import bridge_state, upstream_accounts
from app.models import UpstreamAccount, Watch, Workflow
from app.outbox.emit import emit_event
from app.outbox.envelopes import Analysis
from app.upstream import work_calls as calls
from app.upstream.work_calls import Progress, WorkAnswer, WorkCall, WorkOutcome
from app.vocabulary import (
    AuthHealth,
    EventType,
    WatchReason,
    WatchStage,
    WatchState,
    WorkflowStep,
)
from app.watches.assets import upsert_due_asset
from app.worker.pacing import error_interval, next_interval
from app.worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

#: Workflows claimed per tick (their calls are few and far between: a small batch suffices).
CLAIM_BATCH = 32
#: Seconds after which a tick starts no more workflow calls.
TICK_BUDGET = 5.0
#: Seconds one workflow call may take in all.
CALL_BUDGET = 10.0
#: What a lease adds to each call it covers: the commit before it and the apply after it.
CALL_SLACK = 5.0
#: A 429's pause without Retry-After, and the longest one honoured (as the polls').
DEFAULT_PAUSE_SECONDS = 30.0
MAX_PAUSE_SECONDS = 3600.0
#: The asset list pages a lost-import lookup reads at most (100 assets each).
MAX_LOOKUP_PAGES = 50
IMPORT_RUNNING = "IN_PROGRESS"
IMPORT_DONE = "COMPLETED"
SUMMARY_RUNNING = ("BEFORE_SUMMARIZE", "WAIT_SUMMARIZE", "SUMMARIZING")
SUMMARY_ENDS = {
    "SUMMARIZE_COMPLETED": (EventType.SUMMARY_COMPLETED, WatchState.COMPLETED, None),
    "SUMMARIZE_FAIL": (EventType.SUMMARY_FAILED, WatchState.FAILED, WatchReason.SUMMARY_FAILED),
    "SUMMARIZE_CANCELED": (EventType.SUMMARY_CANCELLED, WatchState.CANCELLED, None),
}
_REJECTED_REASON = {
    WorkflowStep.IMPORT_REQUEST: WatchReason.IMPORT_REJECTED,
    WorkflowStep.IMPORT_STATUS: WatchReason.IMPORT_REJECTED,
    WorkflowStep.ANALYZE_REQUEST: WatchReason.ANALYZE_REJECTED,
    WorkflowStep.SUMMARIZE_REQUEST: WatchReason.SUMMARIZE_REJECTED,
    WorkflowStep.SUMMARY_STATUS: WatchReason.SUMMARIZE_REJECTED,
}


def workflow_once(runtime: WorkerRuntime) -> int:
    """One tick of the workflow job (its own scheduler job: a slow workflow call never delays a
    poll); returns how many workflows advanced."""
    with runtime.workflow_lock, runtime.app.app_context():
        try:
            return advance_workflows(runtime)
        finally:
            db.session.remove()


def advance_workflows(runtime: WorkerRuntime) -> int:
    """Make the calls of the due workflows and apply their answers; returns how many advanced.

    Stops starting calls after ``TICK_BUDGET`` seconds: what was claimed and not reached is given
    back, due as it was, for the next tick (one upstream endpoint that answers slowly holds up at
    most one tick's worth of the others).
    """
    session = db.session()
    now = runtime.clock()
    token = runtime.next_claim_token()
    claimed = _claim(session, token, now, runtime.settings.bridge_lease_seconds)
    session.commit()
    advanced = 0
    ends = time.monotonic() + TICK_BUDGET
    for watch_id in claimed:
        if runtime.stop.is_set() or time.monotonic() > ends:
            break
        try:
            advanced += _advance_one(runtime, session, watch_id, token)
        except Exception:
            session.rollback()
            log.exception(
                "workflow of watch %s could not advance; retried after its lease", watch_id
            )
    _release(session, token)
    session.commit()
    return advanced


def _claim(session: Session, token: str, now: datetime, lease: float) -> list[str]:
    due = (
        select(Workflow.watch_id)
        .where(
            Workflow.next_at <= now,
            or_(Workflow.lease_expires_at.is_(None), Workflow.lease_expires_at < now),
        )
        .order_by(Workflow.next_at)
        .limit(CLAIM_BATCH)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(due))
    if ids:
        session.execute(
            update(Workflow)
            .where(Workflow.watch_id.in_(ids))
            .values(lease_owner=token, lease_expires_at=now + timedelta(seconds=lease))
        )
    return ids


def _release(session: Session, token: str) -> None:
    session.execute(
        update(Workflow)
        .where(Workflow.lease_owner == token)
        .values(lease_owner=None, lease_expires_at=None)
    )


def _load(session: Session, watch_id: str, token: str) -> tuple[Workflow, Watch] | None:
    workflow = session.get(Workflow, watch_id, with_for_update=True)
    if workflow is None or workflow.lease_owner != token:
        return None  # another worker took it over after our lease expired
    watch = session.scalars(
        select(Watch).where(Watch.id == watch_id).options(selectinload(Watch.targets))
    ).one()
    return workflow, watch


def _advance_one(runtime: WorkerRuntime, session: Session, watch_id: str, token: str) -> int:
    loaded = _load(session, watch_id, token)
    if loaded is None:
        session.rollback()
        return 0
    workflow, watch = loaded
    now = runtime.clock()
    if watch.state != WatchState.WATCHING:
        workflow.step, workflow.next_at = WorkflowStep.DONE, None
        session.commit()
        return 0
    paused = _paused_until(session, watch.workspace, runtime)
    if paused is not None:  # its account is paused (a 429): no call before the pause ends
        workflow.next_at = paused
        session.commit()
        return 0
    step = WorkflowStep(workflow.step)
    if step == WorkflowStep.IMPORT_REQUEST:
        return _import(runtime, session, workflow, watch, now)
    call = _call_for(step, workflow, watch)
    if call is None:
        workflow.next_at = None
        session.commit()
        return 0
    _hold_lease(workflow, runtime, calls=1)
    session.commit()  # no transaction stays open during the call
    answer = _send(runtime, watch.workspace, call)
    loaded = _load(session, watch_id, token)
    if loaded is None:
        session.rollback()
        return 0
    workflow, watch = loaded
    _apply(session, step, workflow, watch, answer, runtime)
    session.commit()
    return 1


def _call_for(step: WorkflowStep, workflow: Workflow, watch: Watch) -> WorkCall | None:
    ws, pid, asset_id = watch.workspace, watch.project_id, watch.asset_id or ""
    if step == WorkflowStep.IMPORT_STATUS:
        return WorkCall("GET", calls.import_status_path(ws, pid, asset_id))
    if step == WorkflowStep.ANALYZE_REQUEST:
        return WorkCall("POST", calls.index_path(ws, pid, asset_id),
                        dict(workflow.analyze_options or {}), starts_work=True)  # fmt: skip
    if step == WorkflowStep.SUMMARIZE_REQUEST:
        return WorkCall("POST", calls.summary_path(ws, pid, asset_id),
                        dict(workflow.summarize_options or {}), starts_work=True)  # fmt: skip
    if step == WorkflowStep.SUMMARY_STATUS:
        return WorkCall("GET", calls.summary_status_path(ws, pid, asset_id))
    return None  # ANALYSIS (the polls follow it) and DONE


def _send(runtime: WorkerRuntime, workspace: str, call: WorkCall) -> WorkAnswer:
    """``call`` on the client's loop, within ``MI_MAX_RPS`` like every upstream request."""

    async def limited() -> WorkAnswer:
        if not await runtime.limiter.acquire(runtime.stop):
            return calls.transport_failure("not sent: the worker is stopping")
        return await calls.send_work_call(runtime.client, workspace, call, CALL_BUDGET)

    return runtime.client.submit(limited()).result(timeout=CALL_BUDGET + CALL_SLACK)


# --- the import: guarded against repeating it -----------------------------------------------------


def _import(
    runtime: WorkerRuntime, session: Session, workflow: Workflow, watch: Watch, now: datetime
) -> int:
    """Import the object once: look it up first when an earlier call's fate is unknown."""
    watch_id, token = watch.id, workflow.lease_owner or ""
    key, bucket = workflow.import_key or "", workflow.import_bucket or ""
    ws, pid = watch.workspace, watch.project_id
    if workflow.calling_since is not None:
        session.commit()
        lookup = _look_up_import(runtime, session, watch_id, token, key)
        if lookup is None:
            return 0  # the lease was lost meanwhile: another worker has the workflow now
        loaded = _load(session, watch_id, token)
        if loaded is None:
            session.rollback()
            return 0
        workflow, watch = loaded
        if isinstance(lookup, WorkAnswer):  # the list could not be read: try again later
            _back_off(session, workflow, watch, lookup, runtime)
            session.commit()
            return 1
        if lookup.found is not None:
            log.info("watch %s: found its import of %s after a lost answer", watch_id, key)
            _imported(workflow, watch, lookup.found, runtime.clock())
            session.commit()
            return 1
        if not lookup.complete:
            # Importing again could make a second asset; giving up keeps the promise of one.
            _end(session, watch, workflow, WatchState.ERROR, WatchReason.IMPORT_REJECTED,
                 f"could not tell whether the import of {key} reached NCP: it is not among the "
                 f"first {MAX_LOOKUP_PAGES * calls.LOOKUP_PAGE_SIZE} assets of the project",
                 runtime.clock())  # fmt: skip
            session.commit()
            return 1
        # Listed in full, and not there: the earlier call never reached NCP. This one is the one.
    workflow.calling_since = now
    _hold_lease(workflow, runtime, calls=1)
    session.commit()
    call = WorkCall("POST", calls.import_path(ws, pid), {"key": key, "bucketName": bucket},
                    starts_work=True)  # fmt: skip
    answer = _send(runtime, ws, call)
    loaded = _load(session, watch_id, token)
    if loaded is None:
        session.rollback()
        return 0
    workflow, watch = loaded
    asset_id = calls.asset_id_of(answer.result) if answer.result is not None else None
    if answer.outcome is WorkOutcome.ACCEPTED and asset_id is not None:
        _imported(workflow, watch, asset_id, runtime.clock())
    elif answer.outcome in (WorkOutcome.RETRY, WorkOutcome.AUTH):
        if not answer.uncertain:
            workflow.calling_since = None  # refused before any work: nothing to look up
        _back_off(session, workflow, watch, answer, runtime)
    else:
        workflow.calling_since = None
        _end(session, watch, workflow, WatchState.ERROR, WatchReason.IMPORT_REJECTED,
             answer.failure, runtime.clock())  # fmt: skip
    session.commit()
    return 1


@dataclass(frozen=True)
class _Lookup:
    """What the asset list says of a lost import: the asset found (None: not listed), and whether
    the whole list was read."""

    found: str | None
    complete: bool


def _look_up_import(
    runtime: WorkerRuntime, session: Session, watch_id: str, token: str, key: str
) -> _Lookup | WorkAnswer | None:
    """Page through the project's assets for an unadopted one imported from ``key`` (the newest);
    a failed page's answer, to be retried; None once the lease is lost."""
    watch = session.get_one(Watch, watch_id)
    ws, pid = watch.workspace, watch.project_id
    taken = set(session.scalars(select(Workflow.imported_asset_id).where(
        Workflow.imported_asset_id.is_not(None), Workflow.import_key == key)))  # fmt: skip
    session.rollback()  # no transaction stays open during the calls
    found: list[str] = []
    for page in range(1, MAX_LOOKUP_PAGES + 1):
        if not _renew_lease(session, watch_id, token, runtime):
            return None
        answer = _send(runtime, ws, WorkCall("GET", calls.asset_list_path(ws, pid, page)))
        if answer.outcome is not WorkOutcome.ACCEPTED or answer.result is None:
            return answer
        found += [i for i in calls.listed_imports(answer.result, key) if i not in taken]
        listed, total = calls.listed_count(answer.result), calls.total_count(answer.result)
        if listed < calls.LOOKUP_PAGE_SIZE or (total is not None and
                                               page * calls.LOOKUP_PAGE_SIZE >= total):  # fmt: skip
            return _Lookup(found[-1] if found else None, complete=True)
    return _Lookup(found[-1] if found else None, complete=False)


def _renew_lease(session: Session, watch_id: str, token: str, runtime: WorkerRuntime) -> bool:
    """Extend the lease over one more call (committed); False when it is no longer ours."""
    seconds = max(runtime.settings.bridge_lease_seconds, CALL_BUDGET + CALL_SLACK)
    renewed = session.execute(
        update(Workflow)
        .where(Workflow.watch_id == watch_id, Workflow.lease_owner == token)
        .values(lease_expires_at=runtime.clock() + timedelta(seconds=seconds))
    )
    session.commit()
    return bool(getattr(renewed, "rowcount", 0))


def _hold_lease(workflow: Workflow, runtime: WorkerRuntime, *, calls: int) -> None:
    """Extend the lease over the ``calls`` about to be made, so that no other worker can take the
    workflow over while one is in flight (a lease shorter than a call would let it import again)."""
    seconds = max(runtime.settings.bridge_lease_seconds, calls * (CALL_BUDGET + CALL_SLACK))
    workflow.lease_expires_at = runtime.clock() + timedelta(seconds=seconds)


def _imported(workflow: Workflow, watch: Watch, asset_id: str, now: datetime) -> None:
    workflow.imported_asset_id = asset_id
    workflow.calling_since = None
    workflow.step = WorkflowStep.IMPORT_STATUS
    workflow.failures, workflow.interval = 0, 0.0
    workflow.next_at = now
    watch.asset_id = asset_id
    watch.updated_at = now


# --- applying answers ----------------------------------------------------------------------------


def _apply(
    session: Session,
    step: WorkflowStep,
    workflow: Workflow,
    watch: Watch,
    answer: WorkAnswer,
    runtime: WorkerRuntime,
) -> None:
    now = runtime.clock()
    if answer.outcome in (WorkOutcome.RETRY, WorkOutcome.AUTH):
        _back_off(session, workflow, watch, answer, runtime)
        return
    accepted = answer.outcome is WorkOutcome.ACCEPTED and answer.result is not None
    running = answer.outcome is WorkOutcome.CONFLICT  # only requests that start work see 409
    if not (accepted or running):
        _end(
            session, watch, workflow, WatchState.ERROR, _REJECTED_REASON[step], answer.failure, now
        )
        return
    workflow.failures = 0
    workflow.last_error = None
    if step == WorkflowStep.ANALYZE_REQUEST:
        _follow_analysis(session, workflow, watch, now)
    elif step == WorkflowStep.SUMMARIZE_REQUEST:
        workflow.step, workflow.interval = WorkflowStep.SUMMARY_STATUS, 0.0
        workflow.next_at = now + timedelta(seconds=runtime.pacing.base)
    elif step == WorkflowStep.IMPORT_STATUS:
        _apply_import_status(session, workflow, watch, calls.import_progress(answer.result or {}),
                             runtime)  # fmt: skip
    elif step == WorkflowStep.SUMMARY_STATUS:
        _apply_summary_status(session, workflow, watch, calls.summary_progress(answer.result or {}),
                              runtime)  # fmt: skip


def _follow_analysis(session: Session, workflow: Workflow, watch: Watch, now: datetime) -> None:
    """The analysis request was answered: the watch follows its asset's polls from now on."""
    asset = upsert_due_asset(
        session, watch.workspace, watch.project_id, watch.asset_id or "", watch.api, now
    )
    watch.asset_pk, watch.polls_from = asset.pk, now
    watch.stage, watch.updated_at = WatchStage.ANALYZING, now
    workflow.step, workflow.next_at = WorkflowStep.ANALYSIS, None


def _apply_import_status(
    session: Session,
    workflow: Workflow,
    watch: Watch,
    progress: Progress | None,
    runtime: WorkerRuntime,
) -> None:
    now = runtime.clock()
    if progress is None or progress.status == IMPORT_RUNNING:
        _again_later(workflow, runtime, changed=progress is None or
                     workflow.import_status != progress.status)  # fmt: skip
        if progress is not None:
            workflow.import_status = progress.status
        return
    workflow.import_status, workflow.import_message = progress.status, progress.message
    workflow.import_metadata = progress.metadata
    analysis = Analysis(watch.status, watch.status, watch.index_id, progress.message)
    # Each event is written after the move it reports, so its ``stage`` is where the watch is now.
    if progress.status != IMPORT_DONE:
        _end(session, watch, workflow, WatchState.FAILED, WatchReason.IMPORT_FAILED,
             progress.message or progress.status, now, event=False)  # fmt: skip
        _emit(session, watch, EventType.ASSET_IMPORT_FAILED, analysis, now)
        return
    if workflow.analyze_options is None:
        _end(session, watch, workflow, WatchState.COMPLETED, None, None, now, event=False)
    else:
        watch.stage, watch.updated_at = WatchStage.ANALYZING, now
        workflow.step, workflow.next_at, workflow.interval = WorkflowStep.ANALYZE_REQUEST, now, 0.0
    _emit(session, watch, EventType.ASSET_IMPORTED, analysis, now)


def _apply_summary_status(
    session: Session,
    workflow: Workflow,
    watch: Watch,
    progress: Progress | None,
    runtime: WorkerRuntime,
) -> None:
    now = runtime.clock()
    if progress is None or progress.status not in SUMMARY_ENDS:
        changed = progress is not None and progress.status != workflow.summary_status
        if progress is not None:
            workflow.summary_status = progress.status
        _again_later(workflow, runtime, changed=changed)
        return
    workflow.summary_status, workflow.summary_message = progress.status, progress.message
    event_type, state, reason = SUMMARY_ENDS[progress.status]
    analysis = Analysis(watch.status, watch.status, watch.index_id, progress.message)
    _end(session, watch, workflow, state, reason, progress.message, now, event=False)
    _emit(session, watch, event_type, analysis, now)


def start_summary(workflow: Workflow, watch: Watch, now: datetime) -> None:
    """The analysis of a watch that asked for a summary completed: request it now (called by the
    poll's apply, which sent ``analysis.completed``; the watch stays watching)."""
    watch.stage, watch.updated_at = WatchStage.SUMMARIZING, now
    watch.asset_pk = None  # the polls are done with it
    workflow.step, workflow.next_at, workflow.interval = WorkflowStep.SUMMARIZE_REQUEST, now, 0.0


def _emit(
    session: Session, watch: Watch, event_type: str, analysis: Analysis, now: datetime
) -> None:
    if event_type in watch.events:
        emit_event(session, watch, event_type, f"wf:{event_type}", analysis, now)


def _end(
    session: Session,
    watch: Watch,
    workflow: Workflow,
    state: str,
    reason: str | None,
    message: str | None,
    now: datetime,
    *,
    event: bool = True,
) -> None:
    """End the watch (and its workflow); ``watch.error`` for an error, when subscribed."""
    watch.state, watch.finished_at, watch.updated_at = state, now, now
    if reason is not None:
        watch.reason = reason
    if message is not None:
        watch.message = message
    workflow.step, workflow.next_at = WorkflowStep.DONE, None
    workflow.calling_since = None
    if event and state == WatchState.ERROR:
        analysis = Analysis(watch.status, watch.status, watch.index_id, message)
        _emit(session, watch, EventType.WATCH_ERROR, analysis, now)


def _again_later(workflow: Workflow, runtime: WorkerRuntime, *, changed: bool) -> None:
    workflow.interval = next_interval(workflow.interval, runtime.pacing, changed=changed)
    workflow.next_at = runtime.clock() + timedelta(seconds=workflow.interval)


def _back_off(
    session: Session, workflow: Workflow, watch: Watch, answer: WorkAnswer, runtime: WorkerRuntime
) -> None:
    """A call to try again: after ``Retry-After`` if given, else the poll's error back-off; slowly
    for an account whose keys fail. A 429 pauses the account and a 401 marks its keys failing, as
    a poll's would: one account's trouble is one trouble, whichever request met it."""
    now = runtime.clock()
    account = runtime.client.account_for(watch.workspace)
    workflow.failures += 1
    workflow.last_error = answer.failure[:512]
    if answer.outcome is WorkOutcome.AUTH:
        seconds = runtime.pacing.cap
        detail = (answer.message or answer.detail)[:512]
        upstream_accounts.record_auth(session, account, AuthHealth.FAILING, detail, now)
    elif answer.retry_after is not None or answer.http_status == 429:
        seconds = min(MAX_PAUSE_SECONDS, max(answer.retry_after or DEFAULT_PAUSE_SECONDS,
                                             runtime.pacing.base))  # fmt: skip
        if answer.http_status == 429:
            until = now + timedelta(seconds=seconds)
            upstream_accounts.pause_until(session, account, until, now)
    else:
        workflow.interval = error_interval(workflow.interval, runtime.pacing)
        seconds = workflow.interval
    workflow.next_at = now + timedelta(seconds=seconds)


def _paused_until(session: Session, workspace: str, runtime: WorkerRuntime) -> datetime | None:
    """When the rate-limit pause of ``workspace``'s account ends (None: not paused)."""
    account = runtime.client.account_for(workspace)
    now = runtime.clock()
    if account.bridge_wide:
        return bridge_state.polling_paused_until(session, now)
    row = session.get(UpstreamAccount, account.fingerprint)
    if row is None or row.rate_limited_until is None or row.rate_limited_until <= now:
        return None
    return row.rate_limited_until


def workflow_of(session: Session, watch: Watch) -> Workflow | None:
    """The workflow row of a watch (None for a plain one: only workflow watches have a stage, so a
    plain watch costs no query)."""
    return session.get(Workflow, watch.id) if watch.stage is not None else None


def wants_summary(workflow: Workflow | None) -> TypeGuard[Workflow]:
    return workflow is not None and workflow.summarize_options is not None
