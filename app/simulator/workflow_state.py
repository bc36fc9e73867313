"""The workflow side of ``SimulatorState``: analysis requests, imports, scene summaries.

``WorkflowState`` is ``SimulatorState``'s base: it owns the shared world's lock, assets, config and
clock (set by ``SimulatorState.__init__``) and every method here holds that lock. Refusals are
exceptions the upstream API turns into answers:

- ``UnknownAssetError``: no such asset (404).
- ``AnalysisConflictError``: an analysis or summary is already waiting or running, or (cancels)
  none is (409).
- ``RequestRefusedError``: a service error with its HTTP status, code and message. The simulator's
  choices where NCP documents nothing: indexing an asset whose import has not COMPLETED, and a
  summary of an asset whose analysis is not ANALYZE_COMPLETED, answer 400 code 10001.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from app.simulator.assets import RUNNING, AssetKey, Pin, SimAsset
from app.simulator.imports import COMPLETED, MISSING_OBJECT, ImportJob, registered_result
from app.simulator.settings import SimConfig
from app.simulator.specs import AssetSpec
from app.simulator.summaries import (
    SUMMARIZE_CANCELED,
    SUMMARY_RUNNING,
    SummaryRun,
    summary_result,
    summary_status,
)
from app.simulator.work import AssetWork
from app.simulator.workflow_specs import ObjectSpec
from app.upstream.statuses import ANALYZE_COMPLETED, BEFORE_ANALYZE

#: Imported assets are numbered from here (skipping ids already used in the project).
FIRST_IMPORTED_ASSET_ID = 700001
INVALID_REQUEST_CODE = "10001"


class UnknownAssetError(LookupError):
    """The asset does not exist and auto-create is off."""


class AnalysisConflictError(Exception):
    """The request conflicts with the asset's current status (the API answers 409)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class RequestRefusedError(Exception):
    """The request is refused with a service error (``{"code", "message"}``, HTTP ``status``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def asset_from_spec(key: AssetKey, spec: AssetSpec, now: float) -> SimAsset:
    """A new asset from a parsed spec: its plan starts at ``now``, or at the first index request
    when ``spec.await_index`` (until then it answers BEFORE_ANALYZE)."""
    return SimAsset(
        *key,
        plan=Pin(BEFORE_ANALYZE) if spec.await_index else spec.plan,
        started_at=now,
        message_field=spec.message_field,
        code_as_number=spec.code_as_number,
        analysis_plan=spec.plan if spec.await_index else None,
        index_refusal=spec.index_refusal,
        work=AssetWork(summary_plan=spec.summary_plan),
    )


class WorkflowState:
    """Workflow methods over the state ``SimulatorState`` sets up (see the module docstring)."""

    _lock: threading.Lock
    _base_clock: Callable[[], float]
    _advanced: float
    _config: SimConfig
    _assets: dict[AssetKey, SimAsset]

    def _clock(self) -> float:
        return self._base_clock() + self._advanced

    def _clear_workflows_locked(self) -> None:
        self._objects: dict[tuple[str, str], ObjectSpec] = {}
        self._imports: list[dict[str, Any]] = []
        self._next_import_id = FIRST_IMPORTED_ASSET_ID

    def _resolve_locked(self, key: AssetKey) -> SimAsset | None:
        asset = self._assets.get(key)
        if asset is None and self._config.auto_create:
            asset = SimAsset(*key, plan=self._config.default_schedule, started_at=self._clock())
            self._assets[key] = asset
        return asset

    def _known_locked(self, key: AssetKey) -> SimAsset:
        asset = self._assets.get(key)
        if asset is None:
            raise UnknownAssetError(key)
        return asset

    # Analysis requests.

    def request_analysis(self, key: AssetKey, body: Any = None) -> SimAsset:
        """Record an index request's ``body`` and start an analysis: the asset's analysis plan
        (else its schedule, else the default one) restarts now. An unknown asset auto-created by
        this request starts its default schedule.

        Raises UnknownAssetError, RequestRefusedError (import not completed, ``index_refusal``),
        or AnalysisConflictError while one is waiting or running.
        """
        with self._lock:
            known = key in self._assets
            asset = self._resolve_locked(key)
            if asset is None:
                raise UnknownAssetError(key)
            now = self._clock()
            self._assets[key] = asset = asset.with_work(asset.work.index_requested(body))
            if not known:
                return asset
            job = asset.work.import_job
            if job is not None and job.status(now) != COMPLETED:
                raise RequestRefusedError(
                    400, INVALID_REQUEST_CODE, "The asset's import is not completed."
                )
            refusal = asset.index_refusal
            if refusal is not None:
                raise RequestRefusedError(refusal.status, refusal.code, refusal.message)
            status = asset.snapshot(now).status
            if status in RUNNING:
                raise AnalysisConflictError(status)
            plan = asset.analysis_plan or asset.schedule or self._config.default_schedule
            self._assets[key] = asset = asset.restarted(plan, now)
            return asset

    # Imports.

    def put_object(self, bucket: str, key: str, spec: ObjectSpec) -> tuple[dict[str, Any], bool]:
        """Declare (or redeclare) an object that imports succeed on; return (view, created)."""
        with self._lock:
            created = (bucket, key) not in self._objects
            self._objects[(bucket, key)] = spec
            return spec.view(bucket, key), created

    def object_views(self) -> list[dict[str, Any]]:
        """Every declared object, in declaration order."""
        with self._lock:
            return [spec.view(bucket, key) for (bucket, key), spec in self._objects.items()]

    def delete_object(self, bucket: str, key: str) -> bool:
        """Forget a declared object (later imports of it end FILE_NOT_EXIST); False if unknown."""
        with self._lock:
            return self._objects.pop((bucket, key), None) is not None

    def start_import(
        self, workspace: str, project_id: str, request: dict[str, Any], access_key: str | None
    ) -> int:
        """Start importing ``request["bucketName"]``/``request["key"]`` into a new asset (waiting
        for an index request); log the import; return the new asset id."""
        bucket, object_key = request["bucketName"], request["key"]
        with self._lock:
            now = self._clock()
            spec = self._objects.get((bucket, object_key))
            asset_id = self._next_asset_id_locked(workspace, project_id)
            key = (workspace, project_id, str(asset_id))
            if spec is None:
                analysis = AssetSpec(self._config.default_schedule, await_index=True)
                job = ImportJob(bucket, object_key, MISSING_OBJECT, now)
            else:
                analysis, job = spec.analysis, ImportJob(bucket, object_key, spec.plan, now)
            asset = asset_from_spec(key, analysis, now)
            self._assets[key] = asset.with_work(replace(asset.work, import_job=job))
            self._imports.append(
                {
                    "workspace": workspace,
                    "project_id": project_id,
                    "bucket": bucket,
                    "key": object_key,
                    "asset_id": asset_id,
                    "at": now,
                    "access_key": access_key,
                    "body": request,
                }
            )
            return asset_id

    def _next_asset_id_locked(self, workspace: str, project_id: str) -> int:
        while (workspace, project_id, str(self._next_import_id)) in self._assets:
            self._next_import_id += 1
        self._next_import_id += 1
        return self._next_import_id - 1

    def import_result(self, key: AssetKey) -> dict[str, Any]:
        """The ``result`` of an import-status answer; an asset that was not imported (made by the
        control API or auto-created) reads COMPLETED. Raises UnknownAssetError."""
        with self._lock:
            asset = self._known_locked(key)
            job = asset.work.import_job
            if job is None:
                return registered_result(asset.asset_id)
            return job.result(asset.asset_id, self._clock())

    def import_log(self) -> list[dict[str, Any]]:
        """Every import request, oldest first (``at`` on the schedule clock)."""
        with self._lock:
            return [dict(entry) for entry in self._imports]

    # Scene summaries.

    def request_summary(self, key: AssetKey, body: Any = None) -> str:
        """Record a summary request's ``body`` and start the asset's summary schedule; return the
        status it starts at. Raises UnknownAssetError, RequestRefusedError unless the analysis
        completed, AnalysisConflictError while a summary is waiting or running."""
        with self._lock:
            asset = self._known_locked(key)
            now = self._clock()
            work = asset.work.summary_requested(body)
            self._assets[key] = asset.with_work(work)
            analysis = asset.snapshot(now).status
            if analysis != ANALYZE_COMPLETED:
                raise RequestRefusedError(
                    400,
                    INVALID_REQUEST_CODE,
                    f"A scene summary needs a completed analysis; the asset is {analysis}.",
                )
            status, _ = summary_status(work.summary, now)
            if status in SUMMARY_RUNNING:
                raise AnalysisConflictError(status)
            run = SummaryRun(work.summary_plan, now)
            self._assets[key] = asset.with_work(replace(work, summary=run))
            return run.status(now)[0]

    def cancel_summary(self, key: AssetKey) -> str:
        """Cancel a waiting or running summary (-> SUMMARIZE_CANCELED); return that status.
        Raises UnknownAssetError, or AnalysisConflictError unless one is waiting or running."""
        with self._lock:
            asset = self._known_locked(key)
            run = asset.work.summary
            status, _ = summary_status(run, self._clock())
            if run is None or status not in SUMMARY_RUNNING:
                raise AnalysisConflictError(status)
            cancelled = replace(run, pinned=SUMMARIZE_CANCELED)
            self._assets[key] = asset.with_work(replace(asset.work, summary=cancelled))
            return SUMMARIZE_CANCELED

    def summary_result(self, key: AssetKey) -> dict[str, Any]:
        """The ``result`` of a scene-summary status answer. Raises UnknownAssetError."""
        with self._lock:
            return summary_result(self._known_locked(key).work.summary, self._clock())

    def work_view(self, key: AssetKey) -> dict[str, Any] | None:
        """The control API's view of an asset's workflow side, or None if unknown."""
        with self._lock:
            asset = self._assets.get(key)
            if asset is None:
                return None
            now = self._clock()
            plan = asset.analysis_plan
            return {
                "analysis_plan": None if plan is None else _plan_view(plan),
                "index_refusal": None
                if asset.index_refusal is None
                else asset.index_refusal.to_dict(),
                **asset.work.view(asset.asset_id, now),
            }


def _plan_view(plan: Any) -> dict[str, Any]:
    if isinstance(plan, Pin):
        return {"status": plan.status, "message": plan.message, "index_id": plan.index_id}
    return dict(plan.to_dict())
