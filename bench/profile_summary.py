"""Summarise a py-spy raw (collapsed stacks) profile of bench/poll_throughput.py's worker runs.

    .venv/bin/py-spy record --rate 250 --idle --format raw -o /tmp/worker.txt -- \
        .venv/bin/python bench/poll_throughput.py --only worker-sqlite --runs 1
    .venv/bin/python bench/profile_summary.py /tmp/worker.txt

Only samples inside the measured loop count (``WorkerBench.run`` on the main thread, and the client's
event loop thread); seeding and start-up are left out. Record with ``--idle`` to see the main thread's
wall time (waiting on the database and on the pool included), or ``--gil`` to see who holds the GIL.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

#: (phase, marker): the first marker found in a stack, searched in this order, names its phase.
PHASES = (
    ("http: sign (signature v2)", "signed_headers"),
    ("http: classify answer", "classify_response"),
    ("http: curl's socket events and answers (the loop's callbacks)", "CurlPool._on_ready"),
    ("http: curl's timers and new transfers", "CurlPool._on_kick"),
    ("http: start a transfer, wait for its answer (CurlPool.request)", "CurlPool.request"),
    ("http: other (_poll_one)", "_poll_one"),
    ("event loop: other callbacks (task steps)", "_run_forever"),
    ("claim (UPDATE..RETURNING)", "claim_due_assets"),
    ("expire due watches", "expire_due_watches"),
    ("pause check (bridge_state)", "polling_paused_until"),
    ("apply: lock the batch + its watching watches (one SELECT .. FOR UPDATE)", "_lock_held_rows"),
    ("apply: quiet polls (one UPDATE on PostgreSQL, executemany on SQLite)", "_apply_quiet"),
    ("apply: ORM path (polls that change something)", "_apply_eventful"),
    ("apply: other", "apply_batch"),
    ("release", "release ("),
    ("commit", "commit"),
    ("waiting for the batch's requests (main thread)", "_results"),
    ("tick other", "WorkerBench.run"),
)


def main(path: str) -> None:
    phases: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = main_total = 0
    main_phases: Counter[str] = Counter()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        if "WorkerBench.run" not in stack and "_run_forever" not in stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for phase, marker in PHASES:
            if marker in stack:
                phases[phase] += count
                if "WorkerBench.run" in stack:
                    main_phases[phase] += count
                break
        if "WorkerBench.run" in stack:
            main_total += count
        leaves[frames[-1]] += count
        for name in {f.split(" (")[0] for f in frames}:
            inclusive[name] += count
    print(f"samples in the measured loop: {total} (main thread: {main_total})")
    print("\nmain thread (the tick loop) by phase, share of its samples:")
    for phase, count in main_phases.most_common():
        print(f"  {100 * count / main_total:5.1f}%  {phase}")
    print("\nall threads by phase (share of samples, all threads):")
    for phase, count in phases.most_common():
        print(f"  {100 * count / total:5.1f}%  {phase}")
    print("\ntop self (leaf frames):")
    for frame, count in leaves.most_common(15):
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print("\ntop inclusive functions:")
    skip = {"<module>", "main", "_bootstrap", "_bootstrap_inner", "run", "_worker"}
    shown = 0
    for name, count in inclusive.most_common():
        if name in skip:
            continue
        print(f"  {100 * count / total:5.1f}%  {name}")
        shown += 1
        if shown == 30:
            break


if __name__ == "__main__":
    main(sys.argv[1])
