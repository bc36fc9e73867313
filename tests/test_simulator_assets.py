"""Simulated assets: schedules as pure functions of a clock, analysis requests, real progression."""

import pytest

from app.simulator.assets import Pin, Schedule, SimAsset, derived_index_id
from app.simulator.settings import SimConfig
from app.simulator.specs import AssetSpec
from app.simulator.state import AnalysisConflictError, SimulatorState, UnknownAssetError
from tests.fixtures import FakeClock

KEY = ("ws", "1", "a1")
#: Where the simulator's clock (monotonic seconds) starts in these tests.
SIM_START = 1000.0


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [
        (-1.0, "WAIT_ANALYZE"),
        (0.0, "WAIT_ANALYZE"),
        (1.99, "WAIT_ANALYZE"),
        (2.0, "ANALYZING"),
        (6.99, "ANALYZING"),
        (7.0, "ANALYZE_COMPLETED"),
        (10_000.0, "ANALYZE_COMPLETED"),
    ],
)
def test_default_schedule_over_time(elapsed, expected):
    assert Schedule().status_after(elapsed) == expected


def test_zero_length_schedule_is_terminal_at_once():
    assert Schedule(0, 0, "ANALYZE_FAIL").status_after(0) == "ANALYZE_FAIL"


def test_snapshot_running_has_no_message_or_index():
    asset = SimAsset(*KEY, plan=Schedule(1, 1, message="never shown early", index_id=7))
    for now in (0.5, 1.5):
        snapshot = asset.snapshot(now)
        assert (snapshot.message, snapshot.index_id) == (None, None)


def test_completed_without_index_gets_a_stable_derived_one():
    asset = SimAsset(*KEY, plan=Schedule(0, 0))
    snapshot = asset.snapshot(5.0)
    assert snapshot.status == "ANALYZE_COMPLETED"
    # Derived from the key by CRC-32: the same id on every run and machine.
    assert snapshot.index_id == derived_index_id(KEY) == 4012556
    assert derived_index_id(("ws", "1", "a2")) != derived_index_id(KEY)


def test_completed_with_given_index_and_message():
    snapshot = SimAsset(*KEY, plan=Schedule(0, 0, index_id=4242, message="ok")).snapshot(1)
    assert (snapshot.status, snapshot.index_id, snapshot.message) == (
        "ANALYZE_COMPLETED",
        4242,
        "ok",
    )


def test_failure_carries_a_reason_even_without_one_given():
    assert SimAsset(*KEY, plan=Schedule(0, 0, "ANALYZE_FAIL")).snapshot(1).message
    given = SimAsset(*KEY, plan=Schedule(0, 0, "ANALYZE_FAIL", message="인물 추출 실패"))
    snapshot = given.snapshot(1)
    assert (snapshot.message, snapshot.index_id) == ("인물 추출 실패", None)


def test_pin_answers_any_status_as_given():
    snapshot = SimAsset(*KEY, plan=Pin("REINDEXING", "odd", 3)).snapshot(0)
    assert (snapshot.status, snapshot.message, snapshot.index_id) == ("REINDEXING", "odd", 3)
    assert SimAsset(*KEY, plan=Pin("ANALYZE_COMPLETED")).snapshot(0).index_id == derived_index_id(
        KEY
    )


def test_schedule_starts_when_the_asset_is_put():
    clock = FakeClock(SIM_START)
    state = SimulatorState(clock=clock)
    state.put_asset(KEY, AssetSpec(Schedule(2, 5)))
    clock.now += 1.5
    assert state.asset_view(KEY)["status"] == "WAIT_ANALYZE"
    clock.now += 1.0
    assert state.asset_view(KEY)["status"] == "ANALYZING"
    clock.now += 5.0
    view = state.asset_view(KEY)
    assert view["status"] == "ANALYZE_COMPLETED"
    assert view["schedule"]["elapsed_seconds"] == 7.5


def test_request_analysis_restarts_a_terminal_asset_and_conflicts_while_running():
    clock = FakeClock(SIM_START)
    state = SimulatorState(clock=clock)
    state.put_asset(KEY, AssetSpec(Schedule(1, 1, "ANALYZE_FAIL")))
    with pytest.raises(AnalysisConflictError):
        state.request_analysis(KEY)
    clock.now += 3
    assert state.asset_view(KEY)["status"] == "ANALYZE_FAIL"
    state.request_analysis(KEY)
    assert state.asset_view(KEY)["status"] == "WAIT_ANALYZE"
    clock.now += 1.5
    with pytest.raises(AnalysisConflictError) as conflict:
        state.request_analysis(KEY)
    assert conflict.value.status == "ANALYZING"
    clock.now += 1
    assert state.asset_view(KEY)["status"] == "ANALYZE_FAIL"  # the asset's own outcome again


def test_request_analysis_of_a_pinned_asset_uses_the_default_schedule():
    clock = FakeClock(SIM_START)
    state = SimulatorState(
        SimConfig(default_schedule=Schedule(1, 1, "ANALYZE_CANCEL")), clock=clock
    )
    state.put_asset(KEY, AssetSpec(Pin("BEFORE_ANALYZE")))
    state.request_analysis(KEY)
    clock.now += 2
    assert state.asset_view(KEY)["status"] == "ANALYZE_CANCEL"


def test_cancel_only_while_waiting_or_analysing():
    clock = FakeClock(SIM_START)
    state = SimulatorState(clock=clock)
    state.put_asset(KEY, AssetSpec(Schedule(1, 1)))
    clock.now += 1.5
    state.cancel_analysis(KEY)
    view = state.asset_view(KEY)
    assert (view["status"], view["schedule"]) == ("ANALYZE_CANCEL", None)
    with pytest.raises(AnalysisConflictError):
        state.cancel_analysis(KEY)


def test_unknown_assets_follow_auto_create():
    state = SimulatorState(SimConfig(auto_create=False), clock=FakeClock(SIM_START))
    assert state.resolve_asset(KEY) is None
    with pytest.raises(UnknownAssetError):
        state.request_analysis(KEY)
    with pytest.raises(UnknownAssetError):
        state.cancel_analysis(KEY)
    state.update_config(lambda config: SimConfig(auto_create=True))
    asset = state.resolve_asset(KEY)
    assert asset is not None
    assert asset.schedule == Schedule()


def test_asset_left_alone_moves_through_its_schedule(sim_control, sim_upstream, wait_until):
    sim_control.put(
        "/assets/ws/1/a1", json={"wait_seconds": 0.2, "analyze_seconds": 0.3, "index_id": 77}
    ).raise_for_status()

    def status():
        return sim_upstream.status("a1").json()["result"]

    seen = [status()["status"]]
    for expected in ("ANALYZING", "ANALYZE_COMPLETED"):
        result = wait_until(lambda expected=expected: (r := status())["status"] == expected and r)
        seen.append(result["status"])
    assert seen == ["WAIT_ANALYZE", "ANALYZING", "ANALYZE_COMPLETED"]
    assert result == {"status": "ANALYZE_COMPLETED", "analyzeStatusMessage": None, "indexId": 77}
