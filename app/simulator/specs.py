"""Reading control-API request bodies into values, refusing anything malformed with a clear message.

Every parser raises ``SpecError`` whose text names the offending field; the control API turns
it into a 400. Unknown fields are refused too, so a typo never silently does nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.simulator.assets import DEFAULT_MESSAGE_FIELD, MESSAGE_FIELDS, OUTCOMES, Pin, Schedule
from app.simulator.envelopes import INVALID_REQUEST
from app.simulator.settings import GONE_STATUSES, GenerationSwitch, SimConfig
from app.simulator.summaries import SUMMARY_OUTCOMES, SummarySchedule
from app.simulator.work import Refusal

#: Long enough for any demo; short enough that a typo in units (ms for s) is caught.
MAX_SCHEDULE_SECONDS = 7 * 24 * 3600.0
#: Decades, so fixed historical timestamps (test vectors) can be replayed; epoch milliseconds
#: pasted by mistake are still refused.
MAX_CLOCK_OFFSET_SECONDS = 20 * 365 * 24 * 3600.0
MAX_STATUS_LENGTH = 200

SCHEDULE_FIELDS = ("wait_seconds", "analyze_seconds", "outcome", "message", "index_id")
SUMMARY_FIELDS = ("wait_seconds", "summarize_seconds", "outcome", "message")
_ASSET_OPTION_FIELDS = (
    "message_field",
    "code_as_number",
    "await_index",
    "index_refusal",
    "summary",
)
_REFUSAL_FIELDS = ("status", "code", "message")


class SpecError(ValueError):
    """A control-API body that cannot be accepted; ``str()`` names the field and the problem."""


_MISSING: Any = object()


def require_object(body: Any) -> dict[str, Any]:
    """``body`` as a dict, or SpecError if it is not a JSON object."""
    if not isinstance(body, dict):
        raise SpecError("body must be a JSON object")
    return body


def reject_unknown(body: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """SpecError naming the first field of ``body`` not in ``allowed``."""
    allowed = set(allowed)
    for name in body:
        if name not in allowed:
            raise SpecError(f"unknown field {name!r}; allowed: {', '.join(sorted(allowed))}")


def read_number(
    body: Mapping[str, Any], name: str, default: float, *, low: float, high: float
) -> float:
    """A finite number in [low, high] (booleans are not numbers), or ``default`` when absent."""
    value = body.get(name, _MISSING)
    if value is _MISSING:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(f"{name} must be a number")
    if not low <= value <= high:
        raise SpecError(f"{name} must be between {low:g} and {high:g}")
    return float(value)


def read_int(body: Mapping[str, Any], name: str, default: Any, *, low: int, high: int) -> Any:
    """An integer in [low, high], or ``default`` when absent."""
    value = body.get(name, _MISSING)
    if value is _MISSING:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{name} must be an integer")
    if not low <= value <= high:
        raise SpecError(f"{name} must be between {low} and {high}")
    return value


def read_optional_int(body: Mapping[str, Any], name: str, default: int | None) -> int | None:
    """A non-negative integer or null, or ``default`` when absent."""
    if body.get(name, _MISSING) is None:
        return None
    return read_int(body, name, default, low=0, high=2**63 - 1)


def read_bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    """true or false, or ``default`` when absent."""
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise SpecError(f"{name} must be true or false")
    return value


def read_optional_str(body: Mapping[str, Any], name: str, default: str | None) -> str | None:
    """A string or null, or ``default`` when absent."""
    value = body.get(name, default)
    if value is not None and not isinstance(value, str):
        raise SpecError(f"{name} must be a string or null")
    return value


def read_choice(body: Mapping[str, Any], name: str, default: Any, choices: Iterable[Any]) -> Any:
    """One of ``choices``, or ``default`` when absent."""
    choices = tuple(choices)
    value = body.get(name, default)
    # Exact type too: 404.0 is not 404, and True is not 1.
    if not any(type(value) is type(choice) and value == choice for choice in choices):
        shown = ", ".join(str(choice) for choice in choices)
        raise SpecError(f"{name} must be one of: {shown}")
    return value


def parse_schedule(body: Mapping[str, Any], base: Schedule) -> Schedule:
    """The schedule fields of ``body`` over ``base`` (absent fields keep ``base``'s values)."""
    return Schedule(
        wait_seconds=read_number(
            body, "wait_seconds", base.wait_seconds, low=0, high=MAX_SCHEDULE_SECONDS
        ),
        analyze_seconds=read_number(
            body, "analyze_seconds", base.analyze_seconds, low=0, high=MAX_SCHEDULE_SECONDS
        ),
        outcome=read_choice(body, "outcome", base.outcome, OUTCOMES),
        message=read_optional_str(body, "message", base.message),
        index_id=read_optional_int(body, "index_id", base.index_id),
    )


@dataclass(frozen=True)
class AssetSpec:
    """A parsed ``PUT /_sim/assets/...`` body.

    ``await_index``: the asset answers BEFORE_ANALYZE until an index request starts ``plan``
    (otherwise ``plan`` starts when the asset is put, as it always did).
    """

    plan: Schedule | Pin
    message_field: str = DEFAULT_MESSAGE_FIELD
    code_as_number: bool = False
    await_index: bool = False
    index_refusal: Refusal | None = None
    summary_plan: SummarySchedule = field(default_factory=SummarySchedule)


def parse_asset_spec(body: Any, default_schedule: Schedule) -> AssetSpec:
    """A pinned status (``status`` given) or a schedule (absent fields from the default one)."""
    body = require_object(body)
    if "status" in body:
        for name in ("wait_seconds", "analyze_seconds", "outcome"):
            if name in body:
                raise SpecError(f"{name} cannot be combined with status: pin or schedule, not both")
        reject_unknown(body, ("status", "message", "index_id", *_ASSET_OPTION_FIELDS))
        status = body["status"]
        if not isinstance(status, str) or not 0 < len(status) <= MAX_STATUS_LENGTH:
            raise SpecError(f"status must be a non-empty string of at most {MAX_STATUS_LENGTH}")
        plan: Schedule | Pin = Pin(
            status=status,
            message=read_optional_str(body, "message", None),
            index_id=read_optional_int(body, "index_id", None),
        )
    else:
        reject_unknown(body, (*SCHEDULE_FIELDS, *_ASSET_OPTION_FIELDS))
        plan = parse_schedule(body, default_schedule)
    return AssetSpec(
        plan=plan,
        message_field=read_choice(body, "message_field", DEFAULT_MESSAGE_FIELD, MESSAGE_FIELDS),
        code_as_number=read_bool(body, "code_as_number", False),
        await_index=read_bool(body, "await_index", False),
        index_refusal=parse_refusal(body.get("index_refusal")),
        summary_plan=parse_summary_schedule(body.get("summary", {})),
    )


def parse_refusal(body: Any) -> Refusal | None:
    """``index_refusal``: null, or ``{"status": 400-599 (400), "code": (10001), "message"}``."""
    if body is None:
        return None
    if not isinstance(body, dict):
        raise SpecError("index_refusal must be a JSON object or null")
    reject_unknown(body, _REFUSAL_FIELDS)
    code = body.get("code", INVALID_REQUEST[0])
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)
    if not isinstance(code, str) or not 0 < len(code) <= 32:
        raise SpecError("index_refusal.code must be a short string or integer")
    message = read_optional_str(body, "message", INVALID_REQUEST[1])
    return Refusal(
        status=read_int(body, "status", 400, low=400, high=599),
        code=code,
        message=INVALID_REQUEST[1] if message is None else message,
    )


def parse_summary_schedule(body: Any) -> SummarySchedule:
    """``summary``: a scene summary's schedule; absent fields from ``SummarySchedule()``."""
    if not isinstance(body, dict):
        raise SpecError("summary must be a JSON object")
    reject_unknown(body, SUMMARY_FIELDS)
    base = SummarySchedule()
    return SummarySchedule(
        wait_seconds=read_number(
            body, "wait_seconds", base.wait_seconds, low=0, high=MAX_SCHEDULE_SECONDS
        ),
        summarize_seconds=read_number(
            body, "summarize_seconds", base.summarize_seconds, low=0, high=MAX_SCHEDULE_SECONDS
        ),
        outcome=read_choice(body, "outcome", base.outcome, SUMMARY_OUTCOMES),
        message=read_optional_str(body, "message", None),
    )


def parse_config_changes(body: Any, current: SimConfig) -> SimConfig:
    """``current`` with the fields present in ``body`` changed (``default_schedule`` merges)."""
    body = require_object(body)
    reject_unknown(body, ("auto_create", "default_schedule", "clock_offset_seconds"))
    schedule = current.default_schedule
    if "default_schedule" in body:
        schedule_body = body["default_schedule"]
        if not isinstance(schedule_body, dict):
            raise SpecError("default_schedule must be a JSON object")
        reject_unknown(schedule_body, SCHEDULE_FIELDS)
        schedule = parse_schedule(schedule_body, schedule)
    return SimConfig(
        auto_create=read_bool(body, "auto_create", current.auto_create),
        default_schedule=schedule,
        clock_offset_seconds=read_number(
            body,
            "clock_offset_seconds",
            current.clock_offset_seconds,
            low=-MAX_CLOCK_OFFSET_SECONDS,
            high=MAX_CLOCK_OFFSET_SECONDS,
        ),
    )


def parse_generation_switch(body: Any) -> GenerationSwitch:
    """``{"enabled": bool, "status_code": 404|410}``; ``enabled`` is required."""
    body = require_object(body)
    reject_unknown(body, ("enabled", "status_code"))
    if "enabled" not in body:
        raise SpecError("enabled is required")
    return GenerationSwitch(
        enabled=read_bool(body, "enabled", True),
        status_code=read_choice(body, "status_code", 404, GONE_STATUSES),
    )
