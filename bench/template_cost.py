"""The cost of message templates: deliveries/s of one worker's delivery path with and without one.

    .venv/bin/python bench/template_cost.py [--deliveries 500] [--runs 5] [--db sqlite,postgres]
                                            [--kinds webhook,http-discord,...] [--render-calls 1000]

About 2.5 minutes with the defaults on 2 cores (``--db sqlite`` alone: about 1).

Issue 22. One database per ``--db`` (SQLite file; PostgreSQL ``mi_bridge_bench_templates``, dropped
and recreated), migrated with the real migrations. N watches are seeded, each with one target of
every kind below (rows built by the registration's own ``build_target`` from a registration that
``validate_watch`` accepted, templates included), and each watch gets one ``analysis.completed``
event through ``app.outbox.emit.emit_event``: one pending delivery per target, all of a kind's
deliveries sharing the same N event bodies. Every delivery is parked (pending, due in a year).

Per repetition, for each database and each drained kind in turn (``--kinds``; every other
repetition in the reverse order, ABBA, so the machine's noise falls on a kind and on the kind it
is compared with alike): that kind's N deliveries are made due, and
``app.worker.delivery.deliver_once`` of one ``WorkerRuntime`` (16 sends in flight, the product's)
runs in a loop until a tick claims nothing; the drain is timed (wall clock, and this process's CPU:
the worker side only), and the tick's claim and record transactions are counted. The script checks
that all N succeeded with no error on their attempts and that the receiver saw every request, then
parks them again (attempts deleted, Slack message ts cleared: the next drain posts anew), so every
drain starts from the same table.

Kinds (the receiver is one threaded ``http.server`` in a process of its own on 127.0.0.1, answering
200 at once; it parses every JSON body it gets and counts the invalid ones):

- ``webhook``: a signed Standard Webhooks POST of the stored event, byte for byte (no template);
- ``http-discord`` / ``http-gchat``: ``http`` targets with the README's Discord / Google Chat recipe
  as the body template (JSON-string autoescape, ``truncate``, ``if``/``for``);
- ``slack-en`` / ``slack-ko``: ``slack`` targets through slack-sdk (the product's ``BoundedWebClient``)
  against the receiver's fake Web API (``chat.postMessage``), default Block Kit message, in English /
  Korean; an ``analysis.completed`` is two calls (the message, then the outcome as a thread reply);
- ``slack-en-template`` / ``slack-ko-template``: the same with a message ``template`` (mrkdwn
  autoescape) that uses ``labels``, ``message`` and ``dashboard_url``.

Then the pure render cost of one message per kind (microseconds per call, median of repetitions;
the notifier's own pure functions on the same event and target snapshots the worker sends):
``webhook.build_payload``, ``http_target.build_payload``, ``mrkdwn_templates.message_for``, with
the template render alone beside them.

Prints deliveries/s per run and their medians, the ratios with template / without measured in the
same repetition (median of the per-run ratios), the worker's CPU per delivery, and the render costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import WEBHOOK_SECRET, bench_app, fresh_postgres, machine, median

PG_DB = "mi_bridge_bench_templates"
PUBLIC_URL = "https://bridge.example.test"
SLACK_TOKEN = "xoxb-bench-token"  # noqa: S105 - the fake Slack's, not a credential
SLACK_CHANNEL = "C0BENCH0001"
PARKED = timedelta(days=365)

#: The README's recipes (section "The http target"), as registration targets take them.
DISCORD_BODY = (
    '{"content": "**{{ event.type }}**: asset {{ asset.asset_id }} ({{ asset.workspace }}/'
    "{{ asset.project_id }}) {{ analysis.status }}{% if labels.title %}\\n"
    "{{ labels.title | truncate(200) }}{% endif %}{% if dashboard_url %}\\n{{ dashboard_url }}"
    '{% endif %}", "allowed_mentions": {"parse": []}}'
)
GCHAT_BODY = (
    '{"text": "*{{ event.type }}*: asset {{ asset.asset_id }} ({{ asset.workspace }}/'
    "{{ asset.project_id }})\\nstatus: {{ analysis.status }}{% for key, value in labels.items() %}"
    '\\n{{ key }}: {{ value }}{% endfor %}"}'
)
#: A Slack message template in the README's style: a label in bold, the default line, a link.
SLACK_TEMPLATE = (
    "*{{ labels.title }}* ({{ labels.desk }}): {{ message }}"
    "{% if dashboard_url %} <{{ dashboard_url }}|open>{% endif %}"
)

LABELS = {"title": "Evening news 2026-12-05 / 저녁 뉴스", "desk": "sports", "cms_id": "cms-000000"}


@dataclass(frozen=True)
class Kind:
    name: str
    #: The registration target (``{receiver}`` is replaced by the receiver's base URL).
    spec: dict[str, Any]
    #: Requests the receiver gets per delivery of an analysis.completed.
    calls: int = 1
    #: The kind this one is compared with (same transport without a template), if not webhook.
    base: str | None = None


def _slack(language: str, template: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "slack", "channel": SLACK_CHANNEL, "language": language}
    if template:
        spec["template"] = SLACK_TEMPLATE
    return spec


KINDS = (
    Kind("webhook", {"type": "webhook", "url": "{receiver}/hook/webhook", "secret": WEBHOOK_SECRET}),
    Kind(
        "http-discord", {"type": "http", "url": "{receiver}/hook/discord", "body": DISCORD_BODY},
        base="webhook",
    ),
    Kind(
        "http-gchat",
        {"type": "http", "url": "{receiver}/hook/gchat", "body": GCHAT_BODY,
         "headers": {"Content-Type": "application/json; charset=UTF-8"}},
        base="webhook",
    ),
    Kind("slack-en", _slack("en", False), calls=2),
    Kind("slack-en-template", _slack("en", True), calls=2, base="slack-en"),
    Kind("slack-ko", _slack("ko", False), calls=2),
    Kind("slack-ko-template", _slack("ko", True), calls=2, base="slack-ko"),
)  # fmt: skip
BY_NAME = {kind.name: kind for kind in KINDS}
#: Drained by default (the Korean pair with ``--kinds``); the render costs are measured for every kind.
DEFAULT_KINDS = "webhook,http-discord,slack-en,slack-en-template"


# -- the receiver: its own process, so its CPU and GIL are not the worker's --------------------


def serve_receiver() -> None:
    """Run the receiver: webhooks and http targets under /hook/, Slack's Web API under /api/.

    Prints its port, then serves until killed. ``GET /counts`` answers the requests seen per path
    and the number whose body was not valid JSON (or, for Slack, had no ``text``).
    """
    lock = threading.Lock()
    counts: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    seq = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                document = json.loads(body)
                valid = isinstance(document, dict)
            except ValueError:
                document, valid = None, False
            if self.path.startswith("/api/chat."):
                valid = valid and bool(document.get("text"))
                with lock:
                    seq[0] += 1
                    ts = f"1765000000.{seq[0]:06d}"
                answer = json.dumps({"ok": True, "channel": SLACK_CHANNEL, "ts": ts}).encode()
                content_type = "application/json; charset=utf-8"
            else:
                answer, content_type = b"ok", "text/plain"
            with lock:
                counts[self.path] += 1
                bad[self.path] += not valid
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def do_GET(self) -> None:
            with lock:
                answer = json.dumps({"counts": counts, "bad": bad}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    print(server.server_address[1], flush=True)
    server.serve_forever()


class Receiver:
    """The receiver process (``serve_receiver``) and a way to read its counts."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - this very script
            [sys.executable, __file__, "--serve-receiver"], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        port = int(self.process.stdout.readline())
        self.url = f"http://127.0.0.1:{port}"

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        import requests

        data = requests.get(f"{self.url}/counts", timeout=5).json()
        return Counter(data["counts"]), Counter(data["bad"])

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


# -- seeding, arming and parking ----------------------------------------------------------------


def registration(kinds: list[Kind], receiver: str) -> dict[str, Any]:
    targets = [
        {k: (v.format(receiver=receiver) if k == "url" else v) for k, v in kind.spec.items()}
        for kind in kinds
    ]
    return {"workspace": "bench", "project_id": "1", "asset_id": "a0000000", "labels": LABELS,
            "targets": targets}  # fmt: skip


def seed(app: Any, kinds: list[Kind], receiver: str, count: int) -> None:
    """N completed watches, one target per kind each, one analysis.completed event each."""
    from sqlalchemy import insert, select, text, update
    from sqlalchemy.orm import selectinload

    from app.db import db
    from app.models import Asset, Delivery, Target, Watch, new_id
    from app.outbox.emit import emit_event
    from app.outbox.envelopes import Analysis
    from app.services import services
    from app.watches.endpoint_refs import build_target
    from app.watches.validation import validate_watch

    columns = [c.key for c in Target.__table__.columns]
    with app.app_context():
        # What the API accepts (templates compiled and checked for every subscribed event type).
        model = validate_watch(registration(kinds, receiver), services(app).validation, False)
        now = datetime.now(UTC)
        registered = now - timedelta(minutes=7, seconds=42)
        for start in range(0, count, 500):
            stop = min(count, start + 500)
            assets, watches, targets = [], [], []
            for i in range(start, stop):
                asset_id = f"a{i:07d}"
                assets.append({
                    "pk": i + 1, "workspace": "bench", "project_id": "1", "asset_id": asset_id,
                    "api": "video-assets", "status": "ANALYZE_COMPLETED", "message": None,
                    "interval": 10.0, "next_poll_at": None, "poll_count": 14,
                    "consecutive_errors": 0, "created_at": registered, "updated_at": now,
                })  # fmt: skip
                watch_id = new_id("wch")
                watches.append({
                    "id": watch_id, "state": "completed", "workspace": "bench", "project_id": "1",
                    "asset_id": asset_id, "api": "video-assets", "asset_pk": i + 1,
                    "status": "ANALYZE_COMPLETED", "labels": {**LABELS, "cms_id": f"cms-{i:06d}"},
                    "events": [str(e) for e in model.events], "created_at": registered,
                    "updated_at": now, "finished_at": now, "deadline_at": now + timedelta(days=3),
                    "poll_count": 14,
                })  # fmt: skip
                for position, spec in enumerate(model.targets or ()):
                    row = build_target(spec, None, position, registered)
                    row.id, row.watch_id = new_id("tgt"), watch_id
                    values = {c: getattr(row, c) for c in columns}
                    targets.append({c: v for c, v in values.items() if v is not None})
            db.session.execute(insert(Asset), assets)
            db.session.execute(insert(Watch), watches)
            db.session.execute(insert(Target), targets)
            db.session.commit()
            # The outbox write of the poll that saw the analysis complete: one event, one delivery
            # per target, in one transaction per batch of watches.
            batch = db.session.scalars(
                select(Watch)
                .where(Watch.id.in_([w["id"] for w in watches]))
                .options(selectinload(Watch.targets))
            ).all()
            for watch in batch:
                analysis = Analysis("ANALYZE_COMPLETED", "ANALYZING", 1001 + watch.asset_pk, None)
                emit_event(db.session, watch, "analysis.completed", "p14:done", analysis, now)
            db.session.commit()
        db.session.execute(
            update(Delivery).values(next_attempt_at=now + PARKED)
        )  # parked until armed
        db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(
                text("SELECT setval(pg_get_serial_sequence('assets', 'pk'), :n)"), {"n": count}
            )
            db.session.commit()
        with db.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
        db.session.remove()


def _of_kind(position: int) -> Any:
    from sqlalchemy import select

    from app.models import Delivery, Target

    return Delivery.target_id.in_(select(Target.id).where(Target.position == position))


def arm(app: Any, position: int) -> int:
    """Make the deliveries of the kind at ``position`` due now; how many."""
    from sqlalchemy import update

    from app.db import db
    from app.models import Delivery

    with app.app_context():
        now = datetime.now(UTC)
        result = db.session.execute(
            update(Delivery)
            .where(_of_kind(position))
            .values(next_attempt_at=now - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        db.session.remove()
        return result.rowcount


def check_and_park(app: Any, position: int, expected: int) -> None:
    """Fail unless all ``expected`` deliveries succeeded with clean attempts; park them again."""
    from sqlalchemy import delete, func, select, text, update

    from app.db import db
    from app.models import Delivery, DeliveryAttempt, Target

    with app.app_context():
        session = db.session
        states = dict(
            session.execute(
                select(Delivery.state, func.count())
                .where(_of_kind(position))
                .group_by(Delivery.state)
            ).all()
        )
        seqs = select(Delivery.seq).where(_of_kind(position)).scalar_subquery()
        attempts, errors = session.execute(
            select(func.count(), func.count(DeliveryAttempt.error)).where(
                DeliveryAttempt.delivery_seq.in_(seqs)
            )
        ).one()
        if states != {"succeeded": expected} or attempts != expected or errors:
            example = session.scalar(
                select(DeliveryAttempt.error).where(
                    DeliveryAttempt.delivery_seq.in_(seqs), DeliveryAttempt.error.is_not(None)
                )
            )
            raise RuntimeError(
                f"position {position}: states {states}, {attempts} attempts, {errors} with an "
                f"error (e.g. {example!r}); expected {expected} clean successes"
            )
        session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_seq.in_(seqs)))
        session.execute(
            update(Delivery)
            .where(_of_kind(position))
            .values(
                state="pending", attempt_count=0, first_attempted_at=None, lease_owner=None,
                lease_expires_at=None, last_error=None, last_error_detail=None,
                next_attempt_at=datetime.now(UTC) + PARKED,
            )
            .execution_options(synchronize_session=False)
        )  # fmt: skip
        session.execute(
            update(Target)
            .where(Target.position == position)
            .values(slack_ts=None, slack_channel_id=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        session.remove()
        if db.engine.dialect.name == "postgresql":  # as autovacuum would between two bursts
            with db.engine.connect() as connection:
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
                connection.execute(text("VACUUM ANALYZE deliveries, delivery_attempts, targets"))


# -- the drain ----------------------------------------------------------------------------------


@dataclass
class Drain:
    rate: float  # deliveries per second
    cpu_us: float  # this process's CPU per delivery (the worker's side)
    ticks: int
    claims: int  # claim transactions (claim_due_deliveries calls that found something)
    records: int  # record transactions (the tick's _record calls)


#: Calls of the delivery tick's claim and record steps, counted by ``count_tick_steps``.
STEPS: Counter[str] = Counter()


def count_tick_steps() -> None:
    """Count the delivery tick's claims (non-empty) and record transactions: wrappers around the
    names ``app.worker.delivery`` calls them by (bench-side only; the code itself is unchanged)."""
    from app.worker import delivery

    if STEPS.get("installed"):
        return
    STEPS["installed"] = 1
    claim, record = delivery.claim_due_deliveries, delivery._record

    def counted_claim(*args: Any, **kwargs: Any) -> Any:
        claims = claim(*args, **kwargs)
        STEPS["claims"] += bool(claims)
        return claims

    def counted_record(*args: Any, **kwargs: Any) -> Any:
        STEPS["records"] += 1
        return record(*args, **kwargs)

    delivery.claim_due_deliveries = counted_claim
    delivery._record = counted_record


def drain(runtime: Any, expected: int) -> Drain:
    from app.worker.delivery import deliver_once

    count_tick_steps()
    steps = STEPS.copy()
    sent = ticks = 0
    cpu = time.process_time()
    started = time.perf_counter()
    while True:
        report = deliver_once(runtime)
        ticks += 1
        sent += report.sent
        if report.claimed == 0:
            break
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    if sent != expected:
        raise RuntimeError(f"sent {sent} of {expected}")
    done = STEPS - steps
    return Drain(sent / elapsed, cpu / sent * 1e6, ticks, done["claims"], done["records"])


class DatabaseBench:
    """One seeded database and one WorkerRuntime, drained kind by kind."""

    def __init__(self, db: str, receiver: Receiver, count: int, workdir: Path) -> None:
        kinds = list(KINDS)  # every kind is seeded (render costs); only the chosen ones drained
        url = f"sqlite:///{workdir / 'templates.db'}" if db == "sqlite" else fresh_postgres(PG_DB)
        self.app = bench_app(
            url, receiver.url,
            BRIDGE_ALLOW_PRIVATE_URLS=True,  # the receiver is on 127.0.0.1
            BRIDGE_PUBLIC_URL=PUBLIC_URL,
            SLACK_BOT_TOKEN=SLACK_TOKEN,
            SLACK_API_URL=f"{receiver.url}/api/",
        )  # fmt: skip
        started = time.perf_counter()
        seed(self.app, kinds, receiver.url, count)
        print(
            f"  [{db}] seeded {count} watches x {len(kinds)} targets, {count} events, "
            f"{count * len(kinds)} deliveries in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        from app.worker.runtime import WorkerRuntime

        self.runtime = WorkerRuntime.from_app(self.app)
        self.db, self.kinds, self.receiver, self.count = db, kinds, receiver, count

    def run(self, kind: Kind) -> Drain:
        position = self.kinds.index(kind)
        before, _ = self.receiver.counts()
        armed = arm(self.app, position)
        assert armed == self.count, (armed, self.count)
        result = drain(self.runtime, self.count)
        after, bad = self.receiver.counts()
        seen = sum((after - before).values())
        if seen != self.count * kind.calls or sum(bad.values()):
            raise RuntimeError(
                f"{kind.name}: receiver saw {seen} requests (expected "
                f"{self.count * kind.calls}), {dict(bad)} invalid"
            )
        check_and_park(self.app, position, self.count)
        return result

    def snapshots(self, limit: int) -> dict[str, list[tuple[Any, Any]]]:
        """(event, target) snapshots per kind, as the worker loads them for a send."""
        from sqlalchemy import select

        from app.db import db
        from app.models import Delivery
        from app.outbox.sending import load_claims

        found: dict[str, list[tuple[Any, Any]]] = {}
        with self.app.app_context():
            now = datetime.now(UTC)
            for position, kind in enumerate(self.kinds):
                seqs = db.session.scalars(
                    select(Delivery.seq)
                    .where(_of_kind(position))
                    .order_by(Delivery.seq)
                    .limit(limit)
                ).all()
                claims = load_claims(db.session, list(seqs), now)
                found[kind.name] = [(c.event, c.target) for c in claims]
            db.session.remove()
        return found

    def close(self) -> None:
        from app.db import db

        self.runtime.close()
        with self.app.app_context():
            db.engine.dispose()


# -- the pure render cost -----------------------------------------------------------------------


def render_functions(kind: Kind, context: Any) -> dict[str, Callable[[Any, Any], Any]]:
    """What a notifier of ``kind`` computes before its request, and its template render alone."""
    from app.notify import http_target, mrkdwn_templates, templating, webhook

    if kind.spec["type"] == "webhook":
        return {"message": lambda e, t: webhook.build_payload(e, t, 1765000000)}
    if kind.spec["type"] == "http":
        return {
            "message": lambda e, t: http_target.build_payload(
                e, t, 1765000000, context.public_url, context.language
            ),
            "variables": lambda e, t: mrkdwn_templates.variables(
                json.loads(e.body), context.language_of(t), context.public_url
            ),
            "template": _prepared(lambda v, t: templating.render_json(t.body or "", v), context),
        }
    functions: dict[str, Callable[[Any, Any], Any]] = {
        "message": lambda e, t: mrkdwn_templates.message_for(
            e.body, t.template, context.language_of(t), context.public_url
        ),
    }
    if kind.spec.get("template"):
        functions["template"] = _prepared(
            lambda v, t: mrkdwn_templates.render(t.template or "", v), context
        )
    return functions


def _prepared(render: Callable[[Any, Any], Any], context: Any) -> Callable[[Any, Any], Any]:
    """``render(variables, target)`` timed alone: the variables are computed once per event."""
    from app.notify import mrkdwn_templates

    cache: dict[str, Any] = {}

    def call(event: Any, target: Any) -> Any:
        variables = cache.get(event.id)
        if variables is None:
            variables = cache[event.id] = mrkdwn_templates.variables(
                json.loads(event.body), context.language_of(target), context.public_url
            )
        return render(variables, target)

    return call


def render_costs(
    kinds: list[Kind], snapshots: dict[str, list[tuple[Any, Any]]], context: Any, calls: int,
    repeats: int = 5,
) -> dict[str, dict[str, float]]:  # fmt: skip
    """Microseconds per call (median of ``repeats`` passes of ``calls`` calls) per kind and part;
    each pass times every kind and part in turn, so the machine's noise falls on all of them."""
    functions = [
        (kind.name, part, function, snapshots[kind.name])
        for kind in kinds
        for part, function in render_functions(kind, context).items()
    ]
    for _name, _part, function, pairs in functions:
        for event, target in pairs:  # warm: compiled templates, catalogs, the variables cache
            function(event, target)
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for name, part, function, pairs in functions:
            started = time.perf_counter()
            for i in range(calls):
                event, target = pairs[i % len(pairs)]
                function(event, target)
            elapsed = time.perf_counter() - started
            samples.setdefault((name, part), []).append(elapsed / calls * 1e6)
    costs: dict[str, dict[str, float]] = {}
    for (name, part), values in samples.items():
        costs.setdefault(name, {})[part] = statistics.median(values)
    return costs


# -- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=500, help="deliveries per kind per run")
    parser.add_argument("--runs", type=int, default=5, help="repetitions (median reported)")
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--kinds", default=DEFAULT_KINDS, help="comma-separated subset of: "
                        + ", ".join(BY_NAME))  # fmt: skip
    parser.add_argument("--render-calls", type=int, default=1000, help="calls per render pass")
    parser.add_argument("--serve-receiver", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receiver:
        serve_receiver()
        return
    chosen = [BY_NAME[name] for name in args.kinds.split(",")]
    for kind in chosen:
        if kind.base and kind.base not in args.kinds.split(","):
            parser.error(f"{kind.name} is compared with {kind.base}: list it too")
    databases = [d for d in ("sqlite", "postgres") if d in args.db.split(",")]
    print(f"machine: {machine()}")
    print(
        f"deliveries per kind per run: {args.deliveries}; runs: {args.runs}; "
        f"databases: {', '.join(databases)}; kinds: {', '.join(k.name for k in chosen)}"
    )
    results: dict[tuple[str, str], list[Drain]] = {}
    receiver = Receiver()
    print(f"receiver: {receiver.url} (ThreadingHTTPServer, its own process)")
    costs: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            benches = [DatabaseBench(db, receiver, args.deliveries, Path(tmp)) for db in databases]
            try:
                for run in range(1, args.runs + 1):
                    # ABBA: every other run goes backwards, so a drift of the machine's load
                    # within a run falls on a kind and on the one it is compared with alike.
                    order = chosen if run % 2 else chosen[::-1]
                    for bench in benches if run % 2 else benches[::-1]:
                        for kind in order:
                            result = bench.run(kind)
                            results.setdefault((bench.db, kind.name), []).append(result)
                            print(
                                f"run {run} {bench.db:8s} {kind.name:18s} {result.rate:7.0f} "
                                f"deliveries/s  {result.cpu_us:6.0f} us CPU/delivery  "
                                f"({result.ticks} ticks, {result.claims} claims, "
                                f"{result.records} record transactions)",
                                flush=True,
                            )
                bench = benches[0]
                costs = render_costs(
                    list(KINDS), bench.snapshots(200), bench.runtime.notifier_context,
                    args.render_calls,
                )  # fmt: skip
            finally:
                for bench in benches:
                    bench.close()
    finally:
        receiver.close()
    report(chosen, databases, results, costs)


def report(
    kinds: list[Kind],
    databases: list[str],
    results: dict[tuple[str, str], list[Drain]],
    costs: dict[str, dict[str, float]],
) -> None:
    print("\nmedians (deliveries/s; worker CPU per delivery):")
    for db in databases:
        for kind in kinds:
            drains = results[(db, kind.name)]
            runs = ", ".join(f"{d.rate:.0f}" for d in drains)
            print(
                f"  {db:8s} {kind.name:18s} {median([d.rate for d in drains]):7.0f}/s "
                f"{median([d.cpu_us for d in drains]):6.0f} us   (runs: {runs})"
            )
    print("\nratios with template / without (same run; median of per-run ratios):")
    for db in databases:
        for kind in kinds:
            if kind.base is None:
                continue
            mine, base = results[(db, kind.name)], results[(db, kind.base)]
            ratios = [m.rate / b.rate for m, b in zip(mine, base, strict=True)]
            cpu = [m.cpu_us - b.cpu_us for m, b in zip(mine, base, strict=True)]
            each = ", ".join(f"{r:.2f}" for r in ratios)
            print(
                f"  {db:8s} {kind.name:18s} / {kind.base:9s} {median(ratios):5.2f}   "
                f"(per run: {each}); CPU {median(cpu):+.0f} us/delivery"
            )
    print("\nrender cost per message (us per call, median of 5 passes; pure functions, no I/O):")
    print(
        "  message: what the notifier computes before its request (webhook: sign the stored body;"
    )
    print(
        "  http: parse, variables, render, JSON check, headers; slack: parse, Block Kit, template)"
    )
    print("  variables: parse the envelope + the template variables (incl. the default line)")
    print("  template: the render alone, variables given")
    for kind in KINDS:
        parts = costs.get(kind.name, {})
        row = "  ".join(f"{part} {value:6.1f}" for part, value in parts.items())
        print(f"  {kind.name:18s} {row}")
    for kind in KINDS:
        if kind.base and kind.name in costs and kind.base in costs:
            extra = costs[kind.name]["message"] - costs[kind.base]["message"]
            print(f"  {kind.name} - {kind.base}: {extra:+.1f} us per message")


if __name__ == "__main__":
    main()
