"""Disk cost of a watch on PostgreSQL: register N watches with a typical life (two targets, status
ANALYZING then ANALYZE_COMPLETED, one analysis.completed event, one delivery per target answered
200 at the first attempt), sum pg_total_relation_size over the bridge's tables before and after,
then delete them all with one housekeeping pass.

    MI_BRIDGE_TEST_POSTGRES_URL=postgresql://... .venv/bin/python bench/disk_per_watch.py 3000

Result on 2026-12-05 (2 cores, PostgreSQL 15, N=3000): 4,948 bytes per watch (watch 994, deliveries
1,333, event 871, targets 568, asset 552, history 366, attempts 265); one pass deleted them in 2.2 s
as 30 batches of 100. N=200 overstates it (7.3 KB: first pages of every table and index).
"""

import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.simulator import SimConfig, SimulatorServer, SimulatorState
from app.worker.delivery import deliver_once
from app.worker.housekeeping import housekeep
from tests import dbtools
from tests.fixtures import (
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    TICK_TIMINGS,
    Bridge,
    FakeClock,
    SimControl,
    build_app,
    dispose,
    simulator_config,
)
from tests.receiver import Receiver

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
TABLES = [
    "watches",
    "targets",
    "status_history",
    "events",
    "deliveries",
    "delivery_attempts",
    "assets",
]


def sizes(url):
    with psycopg.connect(url) as c:
        return {
            t: c.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0] for t in TABLES
        }


def counts(url):
    with psycopg.connect(url) as c:
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608 - fixed table names


admin = dbtools.postgres_admin_url()
name = dbtools.create_database(admin)
url = dbtools.with_database(admin, name)
sim = SimulatorServer(
    "127.0.0.1", 0, SimulatorState(SimConfig(auto_create=False)), TEST_ACCESS_KEY, TEST_SECRET_KEY
)
sim.start()
receiver = Receiver().start()
clock = FakeClock()
app = build_app(
    url,
    clock=clock,
    **simulator_config(sim.url),
    **TICK_TIMINGS,
    BRIDGE_ALLOW_PRIVATE_URLS="true",
    BRIDGE_RETENTION_DAYS="30",
)
control = SimControl(sim.url)
bridge = Bridge(app, clock, sim, control)
try:
    before = sizes(url)
    started = time.monotonic()
    assets = [f"asset-{n:06d}" for n in range(N)]
    for a in assets:
        bridge.set_status(a, "ANALYZING")
        bridge.register(
            a,
            labels={"cms_id": f"cms-{a}"},
            targets=[
                {"type": "webhook", "url": receiver.url},
                {"type": "slack_webhook", "url": receiver.url + "/services/T000/B000/XXXX"},
            ],
        )
    while bridge.tick(advance=0.1).claimed:
        pass
    for a in assets:
        bridge.set_status(a, "ANALYZE_COMPLETED", index_id=1001)
    for _ in range(10):  # every asset becomes due within the 8 s cap
        while bridge.tick(advance=1).claimed:
            pass
    while deliver_once(bridge.runtime).claimed:
        pass
    print("built in", round(time.monotonic() - started), "s; rows:", counts(url))
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("VACUUM ANALYZE")
    after = sizes(url)
    per = {t: (after[t] - before[t]) / N for t in TABLES}
    print("bytes per watch by table:", {t: round(v) for t, v in per.items()})
    print(
        "total bytes per watch:",
        round(sum(per.values())),
        "before",
        sum(before.values()),
        "after",
        sum(after.values()),
    )
    clock.advance(31 * 24 * 3600)
    t0 = time.monotonic()
    report = housekeep(bridge.runtime)
    print(
        "housekeeping removed",
        dict(report.removed),
        "in",
        round(time.monotonic() - t0, 2),
        "s",
        len(report.batches),
        "batches",
    )
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("VACUUM")
    print(
        "after housekeeping + VACUUM (space kept for reuse):",
        sum(sizes(url).values()),
        "rows:",
        counts(url),
    )
finally:
    bridge.runtime.close()
    dispose(app)
    receiver.stop()
    sim.stop()
    control.close()
    dbtools.drop_database(admin, name)
