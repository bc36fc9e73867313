"""``mi-bridge watch add|list|show|stop``: in process through click's runner, and as real processes.

``add --wait`` runs as a real ``mi-bridge`` process against a SQLite file, while the test runs real
poll ticks against the simulator on the same file until the watch ends.
"""

from __future__ import annotations

import io
import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.cli.watch import watch_group
from app.cli.watch_follow import NO_WORKER_HINT, NO_WORKER_HINT_AFTER, NoWorkerHint
from app.cli.watch_output import Progress, StatusLine
from app.db import db
from app.models import Target, Watch
from app.worker.heartbeat import beat
from app.worker.polling import poll_once
from app.worker.runtime import WorkerRuntime
from app.worker.workflows import workflow_once
from tests.fixtures import (
    CLOSED_SLACK_API_URL,
    TEST_ACCESS_KEY,
    TEST_SECRET_KEY,
    UNUSED_SLACK_TOKEN,
    FakeClock,
)
from tests.watchtools import PUBLIC_HOOK, secret_of

MI_BRIDGE = str(Path(sys.executable).with_name("mi-bridge"))
SLACK_HOOK = "https://hooks.example.test/services/T000/B000/XXXX"
#: Webhook URL for real processes: an IP literal, so the system resolver never asks DNS.
LITERAL_HOOK = "https://93.184.216.34/mi"


def invoke(app, command: str, *more: str):
    """Run ``mi-bridge watch COMMAND MORE`` in process against ``app`` (``command`` is split on
    spaces, ``more`` is not); stdout and stderr stay apart."""
    return app.test_cli_runner().invoke(watch_group, [*command.split(), *more])


def added(app, options: str) -> dict:
    """``watch add ws 1 OPTIONS --json``, which must succeed; the new watch."""
    result = invoke(app, f"add ws 1 {options} --json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stored(app, watch_id: str) -> Watch:
    with app.app_context():
        watch = db.session.get(Watch, watch_id)
        db.session.expunge_all()
        return watch


# --- add -----------------------------------------------------------------------------------------


def test_add_prints_a_summary_and_the_generated_secret_once(app_factory):
    clock = FakeClock()
    app = app_factory(clock=clock)
    result = invoke(
        app,
        f"add my-workspace 1234 5678 --webhook {PUBLIC_HOOK} --label cms_id=abc-123"
        " --label note=a=b --timeout 3600 --event analysis.completed --event watch.expired",
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Watching wch_")
    assert "my-workspace/1234/5678 (api video-assets)" in lines[0]
    secret_lines = [line for line in lines if "whsec_" in line]
    assert len(secret_lines) == 1
    watch_id = lines[0].split()[1].rstrip(":")
    with app.app_context():
        watch = db.session.get(Watch, watch_id)
        assert watch.labels == {"cms_id": "abc-123", "note": "a=b"}
        assert watch.events == ["analysis.completed", "watch.expired"]
        assert watch.deadline_at == clock.now + timedelta(seconds=3600)
        (target,) = watch.targets
        assert (target.type, target.url) == ("webhook", PUBLIC_HOOK)
        assert secret_lines[0].endswith(f"{target.id} (shown only this once): {target.secret}")
    assert "whsec_" not in invoke(app, f"show {watch_id}").stdout


def test_add_json_with_every_target_type(app):
    given = secret_of(32)
    body = added(
        app,
        f"5678 --api index --webhook {PUBLIC_HOOK} --webhook-secret {given}"
        f" --slack C0123456789 --slack-webhook {SLACK_HOOK}",
    )
    assert (body["state"], body["api"], body["asset_id"]) == ("watching", "index", "5678")
    webhook, slack, slack_webhook = body["targets"]
    assert (webhook["type"], webhook["url"]) == ("webhook", PUBLIC_HOOK)
    assert "secret" not in webhook  # a secret the operator gave is not echoed
    assert (slack["type"], slack["channel"]) == ("slack", "C0123456789")
    assert slack_webhook["type"] == "slack_webhook"
    assert slack_webhook["url"] == "https://hooks.example.test/services/T000/B000/****"
    with app.app_context():
        assert db.session.get(Target, webhook["id"]).secret == given
        assert db.session.get(Target, slack_webhook["id"]).url == SLACK_HOOK


def test_add_without_targets_uses_the_default_targets(app_factory):
    app = app_factory(BRIDGE_DEFAULT_TARGETS='[{"type": "slack", "channel": "C0DEFAULT"}]')
    body = added(app, "5678")
    assert [(t["type"], t["channel"]) for t in body["targets"]] == [("slack", "C0DEFAULT")]


def test_invalid_input_exits_2_with_the_api_422_messages(app, client, auth_headers, resolver):
    resolver.table["intranet.test"] = ["10.1.2.3"]
    payload = {
        "workspace": "bad id!",
        "project_id": "1234",
        "asset_id": "5678",
        "targets": [
            {"type": "webhook", "url": "https://intranet.test/hook"},
            {"type": "slack", "channel": "not a channel"},
            {"type": "slack_webhook", "url": "ftp://hooks.example.test/x"},
        ],
        "events": ["analysis.completed", "analysis.done"],
        "labels": {"": "empty-key"},
        "timeout_seconds": 5.0,
    }
    api = client.post("/api/v1/watches", json=payload, headers=auth_headers)
    assert api.status_code == 422
    expected = [f"{e['pointer']}: {e['detail']}" for e in api.get_json()["errors"]]
    assert len(expected) == 7

    result = invoke(
        app,
        "add --webhook https://intranet.test/hook --slack-webhook ftp://hooks.example.test/x"
        " --timeout 5 --label =empty-key --event analysis.completed --event analysis.done",
        *("bad id!", "1234", "5678", "--slack", "not a channel"),
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == expected
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Watch)) == 0


def test_no_targets_and_no_default_targets_is_refused(app):
    result = invoke(app, "add ws 1 a")
    assert (result.exit_code, result.stderr) == (2, "#/targets: required\n")


@pytest.mark.parametrize("webhooks", ["", f"--webhook {PUBLIC_HOOK} --webhook {PUBLIC_HOOK}2"])
def test_webhook_secret_must_belong_to_a_single_webhook(app, webhooks):
    result = invoke(app, f"add ws 1 a {webhooks} --webhook-secret {secret_of(32)}")
    assert result.exit_code == 2
    assert "--webhook-secret needs exactly one --webhook" in result.stderr


def test_label_must_be_key_equals_value(app):
    result = invoke(app, "add ws 1 a --slack C1 --label no-equals")
    assert result.exit_code == 2
    assert "'no-equals' is not KEY=VALUE" in result.stderr


# --- list, show, stop ----------------------------------------------------------------------------


def test_list_filters_newest_first(app):
    first = added(app, "a1 --slack C1")
    second = json.loads(invoke(app, "add other 2 a2 --slack C1 --json").stdout)
    third = added(app, "a3 --slack C1")
    assert invoke(app, f"stop {third['id']}").exit_code == 0

    def ids(options=""):
        result = invoke(app, f"list --json {options}")
        assert result.exit_code == 0, result.output
        return [item["id"] for item in json.loads(result.stdout)["items"]]

    assert ids() == [third["id"], second["id"], first["id"]]
    assert ids("--state stopped") == [third["id"]]
    assert ids("--state watching --workspace ws") == [first["id"]]
    assert ids("--project-id 2") == [second["id"]]
    assert ids("--limit 1") == [third["id"]]
    assert ids("--workspace nobody") == []
    assert invoke(app, "list --state sleeping").exit_code == 2

    table = invoke(app, "list --state watching").stdout.splitlines()
    assert table[0].split() == ["ID", "STATE", "API", "STATUS", "ASSET", "CREATED"]
    assert [row.split()[:5] for row in table[1:]] == [
        [second["id"], "watching", "video-assets", "-", "other/2/a2"],
        [first["id"], "watching", "video-assets", "-", "ws/1/a1"],
    ]
    assert invoke(app, "list --workspace nobody").stdout == "No watches match.\n"


def test_show_matches_the_api_and_reads_well(app, client, auth_headers):
    body = added(app, f"5678 --webhook {PUBLIC_HOOK} --slack-webhook {SLACK_HOOK} --label k=v")
    result = invoke(app, f"show {body['id']} --json")
    assert result.exit_code == 0
    api = client.get(f"/api/v1/watches/{body['id']}", headers=auth_headers).get_json()
    assert json.loads(result.stdout) == api

    text = invoke(app, f"show {body['id']}").stdout
    assert text.startswith(f"Watch {body['id']}\n")
    assert "  state      watching\n" in text
    assert "  asset      ws/1/5678 (api video-assets)\n" in text
    assert "  labels     k=v\n" in text
    assert "hooks.example.test/services/T000/B000/****" in text
    assert "XXXX" not in text
    assert "History: none yet" in text
    assert "Deliveries: none yet" in text


@pytest.mark.parametrize("command", ["show", "stop"])
def test_show_and_stop_of_an_unknown_watch_exit_1(app, command):
    result = invoke(app, f"{command} wch_01JD0000000000000000000000")
    assert result.exit_code == 1
    assert "no watch wch_01JD0000000000000000000000" in result.stderr


def test_stop_stops_once_then_says_it_had_ended(app):
    watch_id = added(app, "5678 --slack C1")["id"]
    result = invoke(app, f"stop {watch_id}")
    assert (result.exit_code, result.stdout) == (0, f"Stopped {watch_id}.\n")
    watch = stored(app, watch_id)
    assert (watch.state, watch.reason) == ("stopped", "stopped")
    assert watch.finished_at is not None
    again = invoke(app, f"stop {watch_id}")
    assert again.exit_code == 0
    assert again.stdout == f"{watch_id} had already ended (stopped); nothing changed.\n"
    assert stored(app, watch_id).finished_at == watch.finished_at


# --- real processes ------------------------------------------------------------------------------


class Running:
    """``mi-bridge ARGS`` running; threads collect its stdout (a pipe, or a terminal) and its stderr
    (a pipe) as they come.

    A context manager: leaving it kills the process if it still runs.
    """

    def __init__(self, args: str, env, cwd, tty=False):
        self.out: list[bytes] = []
        self.err: list[bytes] = []
        out_reader, out_writer = pty.openpty() if tty else os.pipe()
        err_reader, err_writer = os.pipe()
        self.process = subprocess.Popen(
            [MI_BRIDGE, *args.split()],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out_writer,
            stderr=err_writer,
        )
        os.close(out_writer)
        os.close(err_writer)
        self.readers = [
            threading.Thread(target=self._read, args=(fd, chunks), daemon=True)
            for fd, chunks in ((out_reader, self.out), (err_reader, self.err))
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(fd: int, chunks: list[bytes]) -> None:
        try:
            while chunk := os.read(fd, 4096):
                chunks.append(chunk)
        except OSError:
            pass  # a terminal's reading end fails with EIO once the process has exited
        finally:
            os.close(fd)

    @property
    def stdout(self) -> str:
        return b"".join(self.out).decode()

    @property
    def stderr(self) -> str:
        return b"".join(self.err).decode()

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        """Exit status, all of stdout and stderr; waits for the process to exit."""
        self.process.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout)
        return self.process.returncode, self.stdout, self.stderr

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *_exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.finish()


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/bridge.db"


@pytest.fixture
def bridge_env(app_factory, database_url) -> dict[str, str]:
    """Environment of a ``mi-bridge`` process on the test's (migrated) SQLite file."""
    app_factory(DATABASE_URL=database_url)
    return {
        **os.environ,
        "BRIDGE_ENV": "development",
        "DATABASE_URL": database_url,
        # ``--slack`` targets are refused without a bot token; nothing is sent in these tests.
        "SLACK_BOT_TOKEN": UNUSED_SLACK_TOKEN,
        "SLACK_API_URL": CLOSED_SLACK_API_URL,
    }


class Poller:
    """Real poll ticks against the simulator, on the test's database, with the real clock."""

    def __init__(self, app, control) -> None:
        self.app, self.control = app, control
        self.runtime = WorkerRuntime.from_app(app, kind="test")

    def set_status(self, asset_id: str, **pin) -> None:
        self.control.put(f"/assets/ws/1/{asset_id}", json=pin).raise_for_status()

    def until_shown(self, running: Running, text: str, wait_until) -> None:
        """Run poll ticks until ``text`` shows in the process's stdout."""
        wait_until(lambda: poll_once(self.runtime) and text in running.stdout, 20, repr(text))

    def until_exit(self, running: Running, wait_until) -> None:
        """Run poll ticks (and workflow ticks) until the process exits."""

        def ticked() -> bool:
            poll_once(self.runtime)
            workflow_once(self.runtime)
            return running.process.poll() is not None

        wait_until(ticked, 20)


@pytest.fixture
def poller(app_factory, database_url, simulator, sim_control):
    """A ``Poller``: re-polls are due 0.1 to 0.2 s after the last poll."""
    app = app_factory(
        DATABASE_URL=database_url,
        MI_API_URL=simulator.url,
        NCP_ACCESS_KEY=TEST_ACCESS_KEY,
        NCP_SECRET_KEY=TEST_SECRET_KEY,
        BRIDGE_POLL_INTERVAL="0.1",
        BRIDGE_POLL_MAX_INTERVAL="0.2",
    )
    poller = Poller(app, sim_control)
    yield poller
    poller.runtime.close()


def test_console_script_adds_lists_and_refuses(bridge_env, tmp_path):
    def run(args: str):
        return subprocess.run(
            [MI_BRIDGE, "watch", *args.split()],
            env=bridge_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    refused = run("add ws 1 a --webhook http://127.0.0.1:9/x --timeout 1")
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "#/targets/0/url: resolves to a loopback address: 127.0.0.1",
        "#/timeout_seconds: must be a number of seconds from 60 to 2592000 (30 days)",
    ]
    ok = run(f"add ws 1 a --webhook {LITERAL_HOOK} --json")
    assert ok.returncode == 0, ok.stderr
    watch = json.loads(ok.stdout)
    assert watch["targets"][0]["secret"].startswith("whsec_")
    assert run("list").stdout.splitlines()[1].split()[:2] == [watch["id"], "watching"]


FOLLOW = "watch add ws 1 clip --wait --wait-interval 0.05"


def test_add_wait_follows_to_completed_and_exits_0(bridge_env, tmp_path, poller, wait_until):
    poller.set_status("clip", status="ANALYZING")
    options = f" --api index --webhook {LITERAL_HOOK}"
    with Running(FOLLOW + options, bridge_env, tmp_path) as running:
        wait_until(lambda: "watching  status -  api index  polls 0" in running.stdout)
        poller.until_shown(running, "watching  status ANALYZING  api index  polls 1", wait_until)
        poller.set_status("clip", status="ANALYZE_COMPLETED", index_id=1001)
        poller.until_exit(running, wait_until)
        code, out, err = running.finish()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[-2].startswith("completed  status ANALYZE_COMPLETED  api index  polls ")
    assert lines[-1].endswith(" ended completed (ANALYZE_COMPLETED, index 1001)")
    shown = invoke(poller.app, f"show {lines[0].split()[1].rstrip(':')}").stdout
    assert "ANALYZE_COMPLETED  (api index)  index 1001" in shown
    assert "analysis.completed -> tgt_" in shown


def test_add_wait_json_exits_1_when_the_analysis_fails(bridge_env, tmp_path, poller, wait_until):
    poller.set_status("clip", status="ANALYZE_FAIL", message="video parsing failure")
    with Running(FOLLOW + " --slack C1 --json", bridge_env, tmp_path) as running:
        wait_until(lambda: running.stdout.endswith("\n"), message="the new watch printed")
        poller.until_exit(running, wait_until)
        code, out, err = running.finish()
    assert code == 1
    created, ended = (json.loads(line) for line in out.splitlines())
    assert (created["id"], created["state"]) == (ended["id"], "watching")
    assert (ended["state"], ended["message"]) == ("failed", "video parsing failure")
    progress = err.splitlines()
    assert progress[0].startswith("watching  status -  api video-assets  polls 0")
    assert progress[-1] == f"{ended['id']} ended failed (ANALYZE_FAIL, video parsing failure)"


def test_add_wait_on_a_terminal_rewrites_one_line(bridge_env, tmp_path, poller, wait_until):
    poller.set_status("clip", status="ANALYZING")
    with Running(FOLLOW + " --slack C1", bridge_env, tmp_path, tty=True) as running:
        poller.until_shown(running, "\rwatching  status ANALYZING", wait_until)
        poller.set_status("clip", status="ANALYZE_CANCEL")
        poller.until_exit(running, wait_until)
        code, out, _err = running.finish()
    assert code == 1
    live = out[out.index("\rwatching") : out.index(" ended ")]
    assert "\rcancelled  status ANALYZE_CANCEL" in live
    assert live.count("\n") == 1  # one line, rewritten in place, ended once at the end


def test_ctrl_c_stops_following_and_leaves_the_watch(bridge_env, tmp_path, app, wait_until):
    with Running(FOLLOW + " --slack C1", bridge_env, tmp_path) as running:
        wait_until(lambda: "watching  status -" in running.stdout)
        running.process.send_signal(signal.SIGINT)
        code, out, err = running.finish()
    assert code == 130
    watch_id = out.splitlines()[0].split()[1].rstrip(":")
    assert f"Stopped following {watch_id}; it is still watching" in err
    assert "Traceback" not in err
    assert stored(app, watch_id).state == "watching"


def test_add_wait_without_a_worker_says_so_once_and_keeps_waiting(
    bridge_env, tmp_path, poller, wait_until
):
    poller.set_status("clip", status="ANALYZE_COMPLETED", index_id=1001)
    with Running(FOLLOW + " --slack C1", bridge_env, tmp_path) as running:
        wait_until(lambda: NO_WORKER_HINT in running.stderr, 30, "the no-worker hint")
        assert running.process.poll() is None  # still following
        assert "watching  status -  api video-assets  polls 0" in running.stdout
        poller.until_exit(running, wait_until)  # a worker comes: it follows the watch to its end
        code, out, err = running.finish()
    assert code == 0, err
    assert err.splitlines() == [NO_WORKER_HINT]
    assert out.splitlines()[-1].endswith(" ended completed (ANALYZE_COMPLETED, index 1001)")


def test_the_no_worker_hint_waits_for_its_time_and_a_dead_heartbeat(app_factory, tmp_path, capsys):
    started = time.monotonic() - NO_WORKER_HINT_AFTER
    unpolled = Progress("watching", None, "index", 0)
    worked, unworked = app_factory(), app_factory(DATABASE_URL=f"sqlite:///{tmp_path}/unworked.db")
    runtime = WorkerRuntime.from_app(worked, kind="test")
    try:
        beat(runtime)
    finally:
        runtime.close()
    capsys.readouterr()  # the migrations' log lines

    def hints(app, since: float, shown: Progress, times: int = 1) -> str:
        with app.app_context():
            hint = NoWorkerHint(StatusLine(io.StringIO()), since)
            for _ in range(times):
                hint.check(shown)
        return capsys.readouterr().err

    assert hints(unworked, time.monotonic(), unpolled) == ""  # too early to ask
    assert hints(unworked, started, replace(unpolled, poll_count=1)) == ""  # polled: a worker runs
    assert hints(worked, started, unpolled) == ""  # a live heartbeat
    assert hints(unworked, started, unpolled, times=3) == NO_WORKER_HINT + "\n"  # once


def test_add_gives_the_slack_targets_a_template_and_a_language(app, tmp_path):
    template = tmp_path / "text.md"
    template.write_text("{{ labels.cms_id }}: {{ analysis.status }}", encoding="utf-8")
    body = added(app, f"5678 --slack C0123456789 --slack-webhook {SLACK_HOOK} --webhook "
                 f"{PUBLIC_HOOK} --template {template} --language ko")  # fmt: skip
    webhook, slack, slack_webhook = body["targets"]
    for target in (slack, slack_webhook):
        assert (target["template"], target["language"]) == (template.read_text(), "ko")
    assert "template" not in webhook
    assert "language" not in webhook
    with app.app_context():
        assert db.session.get(Target, slack["id"]).language == "ko"


def test_template_and_language_need_a_slack_target_and_a_valid_template(app, tmp_path):
    alone = invoke(app, f"add ws 1 5678 --webhook {PUBLIC_HOOK} --language ja")
    assert alone.exit_code == 2
    assert "need a --slack or --slack-webhook" in alone.output
    template = tmp_path / "broken.md"
    template.write_text("{{ asset.asset_id", encoding="utf-8")
    refused = invoke(app, f"add ws 1 5678 --slack C0123456789 --template {template}")
    assert refused.exit_code == 2
    assert refused.stderr.startswith("#/targets/0/template: ")
    unknown = invoke(app, "add ws 1 5678 --slack C0123456789 --language fr")
    assert unknown.exit_code == 2


def test_add_imports_analyses_and_summarises_with_wait(bridge_env, tmp_path, poller, wait_until):
    """``watch add --import BUCKET/KEY --analyze --summarize --wait`` as a real process, while real
    poll ticks (which run the workflow's calls too) go against the simulator."""
    declared = poller.control.put("/objects/media-in/videos/clip-01.mp4", json={
        "import_seconds": 0.2, "analysis": {
            "wait_seconds": 0.1, "analyze_seconds": 0.2, "outcome": "ANALYZE_COMPLETED",
            "index_id": 9, "summary": {"wait_seconds": 0.1, "summarize_seconds": 0.2}}})  # fmt: skip
    assert declared.status_code == 201, declared.text
    command = ("watch add ws 1 --import media-in/videos/clip-01.mp4 --analyze"
               ' --analyze-options {"sceneRange":"ALL"} --summarize --wait --wait-interval 0.05'
               f" --webhook {LITERAL_HOOK}")  # fmt: skip
    with Running(command, bridge_env, tmp_path) as running:
        wait_until(lambda: "watching (importing)" in running.stdout, message="the first line")
        poller.until_exit(running, wait_until)
        code, out, err = running.finish()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("ws/1/(importing media-in/videos/clip-01.mp4) (api index),"
                             f" deadline {lines[0].rsplit(' ', 1)[-1]}")  # fmt: skip
    stages = [line.split("  ")[0] for line in lines if line.startswith("watching (")]
    assert stages[0] == "watching (importing)"
    assert "watching (summarizing)" in stages
    assert lines[-1].endswith(" ended completed (ANALYZE_COMPLETED, index 9)")
    (imported,) = poller.control.get("/imports").json()["imports"]
    work = poller.control.get(f"/assets/ws/1/{imported['asset_id']}/workflow").json()
    assert work["last_index_body"] == {"sceneRange": "ALL"}


def test_workflow_options_are_checked(app):
    bad_object = invoke(app, "add ws 1 --import just-a-bucket --webhook", PUBLIC_HOOK)
    assert bad_object.exit_code == 2
    assert "is not BUCKET/KEY" in bad_object.output
    bad_json = invoke(app, "add ws 1 a --analyze-options {x --webhook", PUBLIC_HOOK)
    assert bad_json.exit_code == 2
    assert "is not JSON" in bad_json.output
    neither = invoke(app, "add ws 1 --webhook", PUBLIC_HOOK)
    assert neither.exit_code == 2
    assert neither.stderr.strip() == "#/asset_id: required"
    body = added(app, f"a --summarize --summarize-options {{\"lang\":\"ko\"}} --stalled-after 600"
                 f" --webhook {PUBLIC_HOOK}")  # fmt: skip
    assert (body["stage"], body["stalled_after_seconds"]) == ("analyzing", 600)
    assert body["workflow"]["summarize"] == {"lang": "ko"}
    assert "analysis.stalled" in body["events"]
    assert "summary.completed" in body["events"]  # a workflow's own terminal events
