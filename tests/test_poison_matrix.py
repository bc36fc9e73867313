"""The poison matrix: one bad peer or one bad value never stalls, loops or floods the others.

One scenario per database (``tests/poison_scenario.py``: two ``mi-bridge worker`` processes, real
servers on 127.0.0.1) runs every poison side by side with bystander watches; each test below judges
one case on what the scenario recorded:

- bystanders (other assets, other targets, on the same workers) finish and are delivered within
  their normal time, exactly once each, while the poisons are active;
- worker memory stays under 300 MiB through a 300 MB answer;
- each poison ends in a recorded, bounded state: attempts recorded and counted by the retry
  schedule, or pending with a bounded wait, or a poll recorded as failed and retried at its
  back-off; never a batch rolled back and sent again every lease period.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import pairwise

import pytest

from tests import dbtools
from tests.hostile_servers import Hit
from tests.poison_records import AssetRow, DeliveryRow, Run
from tests.poison_scenario import (
    BYSTANDERS_A,
    BYSTANDERS_B,
    BYSTANDERS_C,
    CHANNELS,
    LONG_401,
    NUL_MESSAGE,
    POLL_MAX_INTERVAL,
    RATE_LIMITED,
    RETRY_SCHEDULE,
    SLACK_BYSTANDER,
    SLACK_DOWN,
    SLACK_THREAD,
    PoisonScenario,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

#: Normal time for a bystander: a change is seen within the poll interval cap (1 s) plus a tick,
#: and a due delivery is sent within about a second; both with room for a busy 2-core machine.
DETECTION_SECONDS = 3.5
DELIVERY_SECONDS = 3.0
MEMORY_LIMIT_KB = 300 * 1024
SEND_DEADLINE = 15.0
HOUR = 3600.0
TICK = 1.0  # the worker's tick, the furthest ahead it claims
CLOCKS = 0.05  # the simulator's arrival time is not the worker's send time
PAUSE_WRITTEN = 1.0  # from the 429's arrival to its pause committed, on a busy machine
CHANGED, COMPLETED = "analysis.status_changed", "analysis.completed"
_CONFIG_PREFIXES = ("BRIDGE_", "MI_", "NCP_", "SLACK_")
_CONFIG_NAMES = {"DATABASE_URL", "SECRET_KEY", "LOG_LEVEL", "PORT"}


@pytest.fixture(
    scope="module",
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)],
)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The scenario on one database, played once for every test of that database."""
    log_dir = tmp_path_factory.mktemp(f"poison-{request.param}")
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if not name.startswith("MI_BRIDGE_TEST_") and (
                name.startswith(_CONFIG_PREFIXES) or name in _CONFIG_NAMES
            ):
                env.delenv(name)
        if request.param == "sqlite":
            played = PoisonScenario("sqlite", f"sqlite:///{log_dir}/bridge.db", log_dir).play()
            _summarise(played)
            yield played
            return
        admin_url, template = request.getfixturevalue("postgres_template")
        name = dbtools.create_database(admin_url, template=template)
        try:
            url = dbtools.with_database(admin_url, name)
            played = PoisonScenario("postgres", url, log_dir).play()
            _summarise(played)
            yield played
        finally:
            dbtools.drop_database(admin_url, name)


def _summarise(run: Run) -> None:
    start = run.marks["workers_started"]
    marks = {k: round(v - start, 1) for k, v in run.marks.items() if ":" not in k}
    missed = [name for name, reached in run.reached.items() if not reached]
    detection, delivery = [], []
    for label in (*BYSTANDERS_A, SLACK_BYSTANDER, *BYSTANDERS_B):
        completed = [e for e in run.events[label] if e.type == COMPLETED]
        detection += [e.created_at - run.marks[f"terminal:{label}"] for e in completed]
        for event in run.events[label]:
            delivery += [a.at - event.created_at for a in run.received("good", event.id)]
    print(
        f"\npoison matrix on {run.database}: {run.seconds:.1f} s; marks {marks};"
        f" waits missed {missed or 'none'}; bystanders: completion seen within"
        f" {max(detection, default=float('nan')):.2f} s, events received within"
        f" {max(delivery, default=float('nan')):.2f} s; memory {run.memory_kb};"
        f" exits {run.exit_codes}"
    )
    drip = sorted((a for d in run.deliveries["p-drip"] for a in d.attempts), key=lambda a: a.at)
    zero = [len(d.attempts) for d in run.deliveries["p-ra-0"]]
    thread = [len(d.attempts) for d in run.deliveries[SLACK_THREAD]]
    poisoned = {label: run.probes[label].fault_matched for label in ("u-index", "u-401")}
    print(
        f"  drip attempts {[round(a.duration_ms / 1000, 1) for a in drip]} s;"
        f" 300 MB answer: bytes written per connection {[h.sent for h in run.hits['huge']]};"
        f" Retry-After 0 attempts {zero}; Slack thread delivery attempts {thread};"
        f" upstream poisoned polls by the end of phase B {poisoned}"
    )


# --- bystanders, memory, ticks ------------------------------------------------------------------


def test_bystanders_finish_on_time_and_are_delivered_exactly_once(run: Run) -> None:
    """Other assets and targets on the same workers: every event received once, in normal time."""
    problems: list[str] = []
    for label in (*BYSTANDERS_A, SLACK_BYSTANDER, *BYSTANDERS_B):
        watch = run.watches[label]
        history = ("WAIT_ANALYZE", "ANALYZING", "ANALYZE_COMPLETED")
        if (watch.state, watch.history) != ("completed", history):
            problems.append(f"{label}: state {watch.state}, history {watch.history}")
            continue
        problems += _delivered_once(run, label, [CHANGED, CHANGED, COMPLETED])
        completed = run.events[label][-1]
        late = completed.created_at - run.marks[f"terminal:{label}"]
        if late > DETECTION_SECONDS:
            problems.append(f"{label}: completion seen {late:.1f} s after it happened")
    for label in BYSTANDERS_C:
        watch = run.watches[label]
        if watch.state != "completed":
            problems.append(f"{label}: state {watch.state}")
            continue
        problems += _delivered_once(run, label, [COMPLETED])
        late = run.events[label][0].created_at - run.marks[f"registered:{label}"]
        if late > DETECTION_SECONDS:
            problems.append(f"{label}: first poll {late:.1f} s after registration")
    messages = run.slack["general"]
    if len(messages) != 1 or [r["broadcast"] for r in messages[0]["replies"]] != [True]:
        problems.append(f"{SLACK_BYSTANDER}: the Slack channel holds {messages}")
    assert not problems, "\n".join(problems)


def _delivered_once(run: Run, label: str, types: list[str]) -> list[str]:
    """Problems with ``label``'s events: their types, and one timely request per webhook event."""
    events = run.events[label]
    if [e.type for e in events] != types:
        return [f"{label}: events {[e.type for e in events]}, expected {types}"]
    problems = []
    for delivery in run.deliveries[label]:
        if (delivery.state, delivery.attempt_count) != ("succeeded", 1):
            problems.append(f"{label} {delivery.event_type} {delivery.target_type}: {delivery}")
    for event in events:
        arrivals = run.received("good", event.id)
        if len(arrivals) != 1:
            problems.append(f"{label} {event.type}: received {len(arrivals)} times")
        elif arrivals[0].at - event.created_at > DELIVERY_SECONDS:
            late = arrivals[0].at - event.created_at
            problems.append(f"{label} {event.type}: received {late:.1f} s after it was created")
    return problems


def test_worker_memory_stays_under_300_mib(run: Run) -> None:
    """Peak and current resident memory of both workers, read after the 300 MB answers."""
    assert run.hits["huge"], "the 300 MB receiver was never called"
    assert set(run.memory_kb) == {"worker-1", "worker-2"}
    for name, memory in run.memory_kb.items():
        assert memory["VmHWM"] < MEMORY_LIMIT_KB, (name, memory)
        assert memory["VmRSS"] < MEMORY_LIMIT_KB, (name, memory)


def test_no_tick_fails_and_both_workers_stop_cleanly(run: Run) -> None:
    """A poison is contained inside its tick: no job ever raised; SIGTERM exits 0."""
    for name, output in run.outputs.items():
        failed = [line for line in output.splitlines() if "raised an exception" in line]
        assert failed == [], (name, failed[:3])
    assert run.exit_codes == {"worker-1": 0, "worker-2": 0}


# --- webhook receivers ---------------------------------------------------------------------------


def test_drip_receiver_is_cut_off_at_the_send_deadline(run: Run) -> None:
    """One byte every 5 s: each attempt ends at 15 s, is recorded, and retries by the schedule."""
    hits = run.hits["drip"]
    assert hits, "the drip receiver was never called"
    done = _terminal_arrivals(run, (*BYSTANDERS_A, *BYSTANDERS_B))
    assert done, "no bystander was delivered at all"
    first = min(hits, key=lambda hit: hit.arrival.at)
    # The poison was active throughout: its first answer was dripping while every bystander finished.
    assert first.arrival.at < min(done)
    assert first.closed_at is None or first.closed_at > max(done)
    deliveries = run.deliveries["p-drip"]
    attempts = sorted((a for d in deliveries for a in d.attempts), key=lambda a: a.at)
    assert attempts, "no attempt recorded for the drip receiver"
    assert SEND_DEADLINE - 1.5 <= attempts[0].duration_ms / 1000 <= SEND_DEADLINE + 1.5, attempts[0]
    for delivery in deliveries:
        assert all(a.outcome != "succeeded" and a.error for a in delivery.attempts), delivery
        assert all(a.duration_ms <= (SEND_DEADLINE + 1.5) * 1000 for a in delivery.attempts)
        assert len(_hits_for(hits, delivery.event_id)) == len(delivery.attempts), delivery
        _assert_counted_by_schedule(delivery)


def test_nul_byte_in_a_200_answer_is_recorded_once(run: Run) -> None:
    """A 2xx whose body holds NUL bytes: delivered once, recorded (excerpt without NUL)."""
    _assert_in_bystander_bursts(run, "p-nul-body")
    for delivery in run.deliveries["p-nul-body"]:
        assert (delivery.state, delivery.attempt_count) == ("succeeded", 1), delivery
        [attempt] = delivery.attempts
        assert attempt.status_code == 200
        assert "\x00" not in (attempt.excerpt or "")
        assert len(run.received("nul", delivery.event_id)) == 1


def test_300_mb_answer_is_cut_short(run: Run) -> None:
    """A 200 streaming 300 MB: a few KB are read, the connection closed; success, memory flat."""
    _assert_in_bystander_bursts(run, "p-huge")
    hits = run.hits["huge"]
    for delivery in run.deliveries["p-huge"]:
        assert (delivery.state, delivery.attempt_count) == ("succeeded", 1), delivery
        assert len(_hits_for(hits, delivery.event_id)) == 1
    # What the kernel's socket buffers took; a reader that drained the answer takes 300 MB.
    assert all(hit.sent < 32 * 1024 * 1024 for hit in hits), [hit.sent for hit in hits]
    assert all(m["VmHWM"] < MEMORY_LIMIT_KB for m in run.memory_kb.values()), run.memory_kb


@pytest.mark.parametrize(("label", "receiver"), [("p-ra-inf", "inf"), ("p-ra-1e300", "1e300")])
def test_503_with_an_endless_retry_after_waits_the_hour(
    run: Run, label: str, receiver: str
) -> None:
    """``Retry-After: inf`` / ``1e300``: one recorded attempt, then a wait of exactly the 1 h cap."""
    _assert_in_bystander_bursts(run, label)
    for delivery in run.deliveries[label]:
        [attempt] = delivery.attempts
        assert attempt.status_code == 503
        assert (delivery.state, delivery.attempt_count) == ("pending", 0), delivery
        assert delivery.next_attempt_at is not None
        assert HOUR - 10 <= delivery.next_attempt_at - attempt.at <= HOUR + 10, delivery
        assert len(run.received(receiver, delivery.event_id)) == 1


def test_503_with_retry_after_zero_cannot_make_the_bridge_spin(run: Run) -> None:
    """``Retry-After: 0`` asks for no wait: each answer counts as a failed attempt, so every
    delivery is retried by the schedule (never faster) and ends dead; every request is recorded."""
    _assert_in_bystander_bursts(run, "p-ra-0")
    deliveries = run.deliveries["p-ra-0"]
    assert len(deliveries) == 3
    for delivery in deliveries:
        arrivals = sorted(a.at for a in run.received("zero", delivery.event_id))
        assert len(arrivals) == len(delivery.attempts), delivery
        assert all(a.status_code == 503 for a in delivery.attempts), delivery
        assert delivery.state == "dead", delivery
        assert delivery.attempt_count == len(delivery.attempts) == len(RETRY_SCHEDULE) + 1
        gaps = [later - earlier for earlier, later in pairwise(arrivals)]
        assert all(gap >= 0.9 * step for gap, step in zip(gaps, RETRY_SCHEDULE, strict=True)), gaps


# --- Slack ---------------------------------------------------------------------------------------


def test_slack_unreachable_retries_by_the_schedule_and_ends_dead(run: Run) -> None:
    """Every call to Slack loses its connection: each delivery is tried 1 + len(schedule) times."""
    _assert_in_bystander_bursts(run, SLACK_DOWN)
    deliveries = run.deliveries[SLACK_DOWN]
    assert len(deliveries) == 3
    for delivery in deliveries:
        assert delivery.state == "dead", delivery
        assert delivery.attempt_count == len(delivery.attempts) == len(RETRY_SCHEDULE) + 1
        assert all(a.outcome != "succeeded" and a.error for a in delivery.attempts), delivery
        gaps = [b.at - a.at for a, b in pairwise(delivery.attempts)]
        assert all(gap >= 0.9 * step for gap, step in zip(gaps, RETRY_SCHEDULE, strict=True)), gaps
    calls = [c for c in run.front_calls if c.channel in ("down", CHANNELS["down"])]
    assert len(calls) >= 3 * (len(RETRY_SCHEDULE) + 1)
    assert all(c.dropped for c in calls)
    assert run.slack["down"] == []


def test_slack_thread_reply_lost_never_posts_a_second_message(run: Run) -> None:
    """The thread reply loses its connection after the post succeeded: the retry edits the same
    message (its ``ts`` was kept) and replies once; the channel holds exactly one message."""
    channel = ("threads", CHANNELS["threads"])
    calls = [c for c in run.front_calls if c.channel in channel]
    assert any(c.dropped and c.thread_reply for c in calls), "no thread reply was lost"
    posts = [c for c in calls if c.method == "chat.postMessage" and not c.thread_reply]
    assert len(posts) == 1, posts
    [message] = run.slack["threads"]
    assert [reply["broadcast"] for reply in message["replies"]] == [True]
    [delivery] = run.deliveries[SLACK_THREAD]
    assert delivery.state == "succeeded", delivery
    assert delivery.attempt_count == len(delivery.attempts) >= 2, delivery
    assert all(a.outcome != "succeeded" and a.error for a in delivery.attempts[:-1]), delivery
    assert delivery.attempts[-1].outcome == "succeeded"


# --- upstream answers ----------------------------------------------------------------------------


def test_upstream_index_id_2_64_is_refused_and_polled_at_back_off(run: Run) -> None:
    """``indexId`` 2^64 cannot be stored: a recorded failed poll, the watch keeps watching."""
    probe = _assert_failed_polls_recorded(run, "u-index")
    # Classified as an unexpected (transient) answer: each one is one more consecutive error.
    assert probe.consecutive_errors >= probe.fault_matched - 1, probe
    assert run.watches["u-index"].index_id is None
    assert run.assets["u-index"].index_id is None


def test_upstream_nul_in_the_status_message_is_stripped(run: Run) -> None:
    """A NUL in ``analysisStatusMessage``: stored and sent without it; the watch ends failed."""
    clean = NUL_MESSAGE.replace("\x00", "")
    watch = run.watches["u-nul"]
    assert (watch.state, watch.status, watch.message) == ("failed", "ANALYZE_FAIL", clean)
    assert watch.history == ("WAIT_ANALYZE", "ANALYZE_FAIL")
    events = run.events["u-nul"]
    assert [e.type for e in events] == [CHANGED, "analysis.failed"]
    for event in events:
        assert event.body["data"]["analysis"]["message"] == clean
        assert len(run.received("good", event.id)) == 1
    assert {d.state for d in run.deliveries["u-nul"]} == {"succeeded"}
    # It was seen in the same poll batches as bystanders B started moving.
    started = [run.events[label][0].created_at for label in BYSTANDERS_B if run.events[label]]
    assert any(abs(events[0].created_at - at) <= 1.5 for at in started), (events, started)


def test_upstream_401_with_a_2000_character_message_is_recorded(run: Run) -> None:
    """A 401 whose message exceeds every column: recorded, cut to size, retried at back-off."""
    probe = _assert_failed_polls_recorded(run, "u-401")
    assert len(probe.last_error or "") <= 512
    assert len(LONG_401) == 2000
    detail = run.bridge.get("upstream_auth_detail")
    assert detail is None or len(detail) <= 512


def test_upstream_429_with_retry_after_1e300_pauses_one_hour(run: Run) -> None:
    """A 429 pauses all polling by contract: for 1 h (the cap), recorded once, and nothing is polled
    after it; bystanders C, due just before it, finished and were delivered once."""
    assert run.reached["paused"], "no pause was recorded"
    until = run.bridge["rate_limited_until"]
    assert HOUR - 20 <= until - run.marks["paused"] <= HOUR + 1, until - run.marks["paused"]
    assert run.readyz.get("rate_limited_until") is not None, run.readyz
    asset = run.assets[RATE_LIMITED]
    assert asset.sim_requests == asset.poll_count == 1, asset
    assert asset.last_error is not None
    assert run.watches[RATE_LIMITED].state == "watching"
    # Nothing is polled once the pause is written, save what a worker had claimed before that: a
    # claim is sent at its due time, at most a tick after it was made.
    [limited_at] = run.requests[RATE_LIMITED]
    grace = TICK + PAUSE_WRITTEN + CLOCKS
    later = {
        label: [round(t - limited_at, 2) for t in times if t > limited_at + grace]
        for label, times in run.requests.items()
    }
    assert not any(later.values()), later
    problems = [p for label in BYSTANDERS_C for p in _delivered_once(run, label, [COMPLETED])]
    assert not problems, problems
    assert {run.watches[label].state for label in BYSTANDERS_C} == {"completed"}


# --- shared checks -------------------------------------------------------------------------------


def _terminal_arrivals(run: Run, labels: tuple[str, ...]) -> list[float]:
    """When the good receiver got each of these watches' completion event."""
    times = []
    for label in labels:
        completed = [e for e in run.events[label] if e.type == COMPLETED]
        times += [a.at for e in completed for a in run.received("good", e.id)]
    return times


def _hits_for(hits: list[Hit], event_id: str) -> list[Hit]:
    return [hit for hit in hits if hit.arrival.webhook_id == event_id]


def _assert_in_bystander_bursts(run: Run, label: str) -> None:
    """The poison's events were written alongside bystander A events of the same kind (within
    1.5 s), so its deliveries were due, and claimed, together with theirs."""
    events = run.events[label]
    assert events, f"{label} has no events"
    for event in events:
        near = [
            other
            for bystander in BYSTANDERS_A
            for other in run.events[bystander]
            if other.type == event.type and abs(other.created_at - event.created_at) <= 1.5
        ]
        assert near, f"{label} {event.type} was not written alongside any bystander event"


def _assert_counted_by_schedule(delivery: DeliveryRow) -> None:
    """Every failed attempt used one step of the schedule: pending with the next step ahead, or
    dead after the last."""
    assert delivery.attempt_count == len(delivery.attempts), delivery
    if delivery.state == "dead":
        assert delivery.attempt_count == len(RETRY_SCHEDULE) + 1, delivery
        return
    assert delivery.state == "pending", delivery
    if not delivery.attempts:  # still waiting for its turn behind an earlier delivery
        return
    step = RETRY_SCHEDULE[delivery.attempt_count - 1]
    assert delivery.next_attempt_at >= delivery.attempts[-1].at + 0.9 * step, delivery


def _assert_failed_polls_recorded(run: Run, label: str) -> AssetRow:
    """The asset's poisoned polls (read at the end of phase B) were each recorded as a failed poll,
    and it kept being polled, no faster than its interval; the watch watches on, with no event."""
    probe = run.probes[label]
    assert probe.fault_matched >= 3, f"{label}: only {probe.fault_matched} poisoned polls"
    assert probe.sim_requests - probe.poll_count in (0, 1), probe  # one may be in flight
    assert probe.last_error, probe
    assert probe.next_poll_at is not None, probe
    # Each failed poll is followed by the error back-off (the 1 s cap, jittered): never sooner.
    poisoned = [t for t in run.requests[label] if run.marks["phase_b"] <= t <= probe.at]
    gaps = [later - earlier for earlier, later in pairwise(poisoned)]
    assert all(gap >= 0.9 * POLL_MAX_INTERVAL - CLOCKS for gap in gaps), gaps
    assert run.watches[label].state == "watching"
    assert run.events[label] == []
    return probe
