"""When to poll an asset next: pure functions of the last interval, the outcome and a random source.

Polling starts at ``BRIDGE_POLL_INTERVAL``, grows about 1.5x per unchanged poll up to
``BRIDGE_POLL_MAX_INTERVAL``, returns to the start on any change, and backs off twice as fast after
transient errors. The wait is jittered downwards only (up to 10 % shorter, so assets registered
together drift apart): the interval is a bound both ways. A poll comes no later than the interval
after the previous one was applied (a fixed interval of 10 s detects a change within 10 s plus a
worker tick), and no earlier than its jittered value: a worker may claim a poll ahead of its due
time, but sends the request at that time (``app.worker.poll_requests``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

GROWTH = 1.5
ERROR_GROWTH = 2.0
JITTER = 0.1  # up to 10 % shorter, never longer


@dataclass(frozen=True)
class PollPacing:
    """The configured bounds (seconds)."""

    base: float
    cap: float


def next_interval(previous: float, pacing: PollPacing, *, changed: bool) -> float:
    """The interval after a successful poll: back to ``base`` on change, else 1.5x up to ``cap``."""
    if changed or previous <= 0:
        return pacing.base
    return min(pacing.cap, max(pacing.base, previous * GROWTH))


def error_interval(previous: float, pacing: PollPacing) -> float:
    """The interval after a transient error: twice the last one (at least ``base``), up to ``cap``."""
    return min(pacing.cap, max(pacing.base, previous) * ERROR_GROWTH)


def jittered(interval: float, rng: random.Random) -> float:
    """``interval`` shortened by up to 10 % at random, never below 0.1 s."""
    return max(0.1, interval * rng.uniform(1 - JITTER, 1))
