"""Pure parts of the dashboard: the phases of a watch, detection, formatting; search on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from app.dashboard.formatting import duration, excerpt, when
from app.dashboard.timeline import detection, phases

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def change(status: str, seconds: float, api: str = "index", **extra):
    return SimpleNamespace(
        status=status, api=api, observed_at=at(seconds),
        message=extra.get("message"), index_id=extra.get("index_id"),
    )  # fmt: skip


def test_phases_of_a_completed_watch():
    history = [
        change("WAIT_ANALYZE", 0.5),
        change("ANALYZING", 12),
        change("ANALYZE_COMPLETED", 70, index_id=1001),
    ]
    result = phases(T0, "index", history, finished_at=at(70), now=at(500))
    assert [(p.status, p.duration.total_seconds(), p.final) for p in result] == [
        (None, 0.5, False),
        ("WAIT_ANALYZE", 11.5, False),
        ("ANALYZING", 58.0, False),
        ("ANALYZE_COMPLETED", 0.0, True),
    ]
    assert result[-1].index_id == 1001
    assert all(p.ended_at is not None for p in result)


def test_the_last_phase_of_a_watching_watch_goes_on():
    result = phases(T0, "index", [change("ANALYZING", 1)], finished_at=None, now=at(31))
    assert (result[-1].status, result[-1].ended_at) == ("ANALYZING", None)
    assert result[-1].duration == timedelta(seconds=30)
    assert not result[-1].final


def test_a_watch_stopped_while_analysing_has_no_final_status():
    result = phases(T0, "index", [change("ANALYZING", 1)], finished_at=at(40), now=at(99))
    assert (result[-1].status, result[-1].duration, result[-1].final) == (
        "ANALYZING",
        timedelta(seconds=39),
        False,
    )


def test_no_history_is_one_waiting_phase_and_a_same_instant_first_poll_has_none():
    waiting = phases(T0, "assets", [], finished_at=None, now=at(3))
    assert [(p.status, p.api, p.ended_at) for p in waiting] == [(None, "assets", None)]
    instant = phases(T0, "index", [change("ANALYZING", 0)], finished_at=None, now=at(3))
    assert [p.status for p in instant] == ["ANALYZING"]


def test_detection_of_a_watching_and_an_ended_watch():
    asset = SimpleNamespace(next_poll_at=at(45))
    watching = SimpleNamespace(
        history=[change("ANALYZING", 2)], created_at=T0, state="watching",
        last_polled_at=at(40), poll_count=7, asset=asset, detection_lag_seconds=None,
    )  # fmt: skip
    seen = detection(watching, now=at(42.5))
    assert (seen.detected_at, seen.after_registration) == (at(2), timedelta(seconds=2))
    assert (seen.since_last_poll, seen.next_poll_at, seen.poll_count) == (
        timedelta(seconds=2.5),
        at(45),
        7,
    )
    assert seen.lag is None
    ended = SimpleNamespace(
        **{**vars(watching), "state": "completed", "detection_lag_seconds": 1.5}
    )
    seen = detection(ended, at(99))
    assert (seen.since_last_poll, seen.next_poll_at) == (None, None)
    assert seen.lag == timedelta(seconds=1.5)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.35, "350 ms"),
        (4.24, "4.2 s"),
        (192, "3 min 12 s"),
        (7500, "2 h 5 min"),
        (273600, "3 d 4 h"),
        (-1, "0 ms"),
        (None, "—"),
    ],
)
def test_durations(seconds, text):
    assert duration(seconds) == text


def test_times_and_excerpts():
    assert when(T0) == "2026-11-25 12:00:00 UTC"
    assert when(None) == "—"
    assert excerpt("a\n  b", 10) == "a b"
    assert excerpt("x" * 30, 10) == "x" * 9 + "…"


@pytest.mark.postgres
def test_label_search_on_postgresql(pg_app):
    from app.dashboard.listing import WatchQuery, list_watches
    from app.db import db
    from tests.dashboardtools import seed_watch

    app = pg_app
    wanted = seed_watch(app, "a1", labels={"cms_id": "ABC-123", "kind": "영상"})
    seed_watch(app, "a2", labels={"other": "x%y"})
    with app.app_context():
        for search in ("cms_id", "abc-1", "cms_id=abc", "영상", "CMS_ID"):  # "_" is in no ULID
            found = list_watches(db.session, WatchQuery(search=search)).watches
            assert [w.id for w in found] == [wanted], search
        assert list_watches(db.session, WatchQuery(search="%")).watches[0].asset_id == "a2"
        assert list_watches(db.session, WatchQuery(search="_i")).counts["watching"] == 1
