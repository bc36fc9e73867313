"""How each fault kind answers a status request (see ``faults.py`` for the rules themselves)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Response, current_app

from app.simulator.faults import FiredFault
from app.simulator.gate import HoldGate
from app.simulator.responses import gateway_answer, json_answer, service_answer


def answer_fault(fault: FiredFault, gate: HoldGate) -> Response | None:
    """The response ``fault`` gives, or None when the request then gets its normal answer.

    ``slow`` and ``hold`` block the calling thread (on ``gate``) before returning None.
    """
    return _ANSWERS[fault.kind](fault.params, gate)


def _gateway(params: Mapping[str, Any], _gate: HoldGate) -> Response:
    return gateway_answer(
        params["status"], params["error_code"], params["message"], params.get("retry_after")
    )


def _service_error(params: Mapping[str, Any], _gate: HoldGate) -> Response:
    return service_answer(
        params["status"], params["code"], params["message"], wrapped=params["wrapped"]
    )


def _slow(params: Mapping[str, Any], gate: HoldGate) -> None:
    gate.pause(params["delay_seconds"])


def _hold(params: Mapping[str, Any], gate: HoldGate) -> None:
    gate.hold(params["timeout_seconds"])


def _malformed(params: Mapping[str, Any], _gate: HoldGate) -> Response:
    # 200 with a body that is not JSON, like an HTML error page from a proxy in the way.
    return current_app.response_class(
        params["body"], status=200, content_type=params["content_type"]
    )


def _unexpected(params: Mapping[str, Any], _gate: HoldGate) -> Response:
    return json_answer(params["body"], 200)


_ANSWERS: dict[str, Callable[[Mapping[str, Any], HoldGate], Response | None]] = {
    "http_error": _gateway,
    "rate_limit": _gateway,
    "auth": _gateway,
    "service_error": _service_error,
    "slow": _slow,
    "hold": _hold,
    "malformed": _malformed,
    "unexpected": _unexpected,
}
