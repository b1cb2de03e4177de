"""interactive: true on an action step: its command runs attached to the responder's terminal (the
TUI suspends and comes back; the CLI runs it attached), or in a new tmux window inside tmux; its
start, end and exit status are recorded, its output is not captured."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from helpers.components import missing

from runbook.catalog import load, load_catalog
from runbook.default_plugins.shell_action import TmuxWindow
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store

CATALOG = Path(__file__).parent / "lang_catalog"


@pytest.fixture
def engine(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(), host, load([str(CATALOG)]))
    store.close()


class Tmux:
    """A tmux server of the test's own; $TMUX names it, as it does for a program run inside tmux."""

    def __init__(self, socket: str):
        self.socket = socket

    def __call__(self, *args, check=True):
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=check)

    def windows(self) -> list[str]:
        return self("list-windows", "-a", "-F", "#{window_name}", check=False).stdout.split()

    def wait_for(self, condition, what: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # bounded polling of what tmux shows
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"{what} never happened; windows: {self.windows()}")

    def screen(self, target: str) -> str:
        return self("capture-pane", "-p", "-t", target, check=False).stdout


@pytest.fixture
def tmux(monkeypatch):
    if not shutil.which("tmux"):
        missing("tmux", "run ./scripts/test (it installs the Debian package tmux)")
    socket = os.path.join(tempfile.gettempdir(), f"rb-{uuid.uuid4().hex[:8]}.tmux")
    server = Tmux(socket)
    server("new-session", "-d", "-s", "main", "-x", "100", "-y", "30")
    monkeypatch.setenv("TMUX", f"{socket},0,0")
    yield server
    server("kill-server", check=False)


def answer_in_window(tmux: Tmux, text: str) -> None:
    """The responder switches to the step's window, sees the prompt and types `text`."""
    tmux.wait_for(lambda: "runbook-edit" in tmux.windows(), "the step's window opening")
    tmux.wait_for(lambda: "new size for data-0?" in tmux.screen("runbook-edit"), "the prompt")
    tmux("send-keys", "-t", "runbook-edit", "-l", text)
    tmux("send-keys", "-t", "runbook-edit", "Enter")


def test_lint_names_what_an_interactive_step_cannot_have(tmp_path):
    text = (CATALOG / "interactive.yaml").read_text()
    run = text[text.index("    run: "):text.index("    interactive: true")]
    extra = "    timeout: 5m\n    capture: {size: {regex: '(\\\\d+)Gi'}}\n"
    bad = text.replace(run, "    uses: resize\n").replace("    interactive: true\n", "    interactive: true\n" + extra)
    (tmp_path / "bad.yaml").write_text(bad)
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    assert [(p.path, p.message) for p in load_catalog([str(tmp_path)]).errors] == [
        ("steps[0].interactive", "interactive: runs a run: command attached to your terminal, but this step has no "
                                 "run: (a uses: action is run by a plugin, not in a terminal)"),
        ("steps[0].timeout", "an interactive command runs until the responder ends it; remove timeout:"),
        ("steps[0].capture", "capture: needs what the command printed or a rerun by itself, but an interactive "
                             "command's output is the responder's, not captured; drop one of them"),
    ]


def test_without_a_terminal_it_is_refused_and_nothing_recorded(engine):
    iid = engine.open("volume-edit", "ana").id
    engine.approve(iid, "ana", "edit")
    before = len(engine.store.events(iid))
    with pytest.raises(CommandError, match=r"step 'edit' is interactive: run it from your terminal, with "
                                           r"`runbook incident step INC-\S+ edit --run` or in the TUI"):
        engine.run(iid, "ana", "edit")
    assert len(engine.store.events(iid)) == before


def test_the_approval_covers_that_it_runs_attached(engine):
    from runbook.engine import approvals

    state = engine.state(engine.open("volume-edit", "ana").id)
    covered = approvals.covered(state, state.playbook.step("edit"))
    assert covered["attached"] is True and covered["command"].endswith("data-0")


@pytest.mark.parametrize(("typed", "ok", "code"), [("grow", True, 0), ("shrink", False, 1)])
def test_in_tmux_it_runs_in_a_new_window_and_its_end_is_recorded(engine, tmux, typed, ok, code):
    iid = engine.open("volume-edit", "ana").id
    engine.approve(iid, "ana", "edit")
    done: list = []
    runner = threading.Thread(target=lambda: done.append(engine.run(iid, "ana", "edit", terminal=TmuxWindow())))
    runner.start()
    answer_in_window(tmux, typed)
    runner.join(timeout=30)
    kinds = [(e.type, e.data) for e in done[0]]
    started = next(data for kind, data in kinds if kind == "action_started")
    finished = next(data for kind, data in kinds if kind == "action_finished")
    assert started["attached"] == "tmux window" and started["argv"][-1] == "data-0"
    assert (finished["ok"], finished["exit_code"], finished["output"], finished["handler"]) == (ok, code, "", "tmux")
    step = engine.state(iid).steps["edit"]
    assert step.status == ("done" if ok else "failed")
    assert "runbook-edit" not in tmux.windows()  # the window closes with the command


def test_a_window_closed_before_the_command_ended_is_recorded_so(engine, tmux):
    iid = engine.open("volume-edit", "ana").id
    engine.approve(iid, "ana", "edit")
    done: list = []
    runner = threading.Thread(target=lambda: done.append(engine.run(iid, "ana", "edit", terminal=TmuxWindow())))
    runner.start()
    tmux.wait_for(lambda: "runbook-edit" in tmux.windows(), "the step's window opening")
    tmux("kill-window", "-t", "runbook-edit")
    runner.join(timeout=30)
    finished = next(e.data for e in done[0] if e.type == "action_finished")
    assert not finished["ok"] and finished["exit_code"] is None
    assert finished["summary"].startswith("its tmux window was closed before it ended: sh -c")


def test_cli_runs_it_attached_to_the_terminal(rb, tmp_path):
    """`script` gives the CLI a terminal; what is typed there reaches the command, not runbook."""
    if not shutil.which("script"):
        missing("script", "install the Debian package bsdutils")
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "volume-edit").strip()
    rb("incident", "approve", iid, "edit")
    line = " ".join([sys.executable, "-m", "runbook", "--catalog", str(CATALOG), "incident", "step", iid, "edit",
                     "--run"])
    proc = subprocess.run(["script", "-qec", line, "/dev/null"], input="grow\n", cwd=rb.cwd, capture_output=True,
                          text=True, timeout=60, env={**rb.env, "TMUX": ""})
    assert proc.returncode == 0, proc.stdout
    assert "new size for data-0?" in proc.stdout
    assert "running sh -c" in proc.stdout and "attached to the responder's terminal" in proc.stdout
    with Store(str(rb.db)) as store:
        recorded = {e.type: e.data for e in store.events(iid)}
    assert recorded["action_started"]["attached"] == "terminal"
    assert (recorded["action_finished"]["exit_code"], recorded["action_finished"]["output"]) == (0, "")


def test_cli_without_a_terminal_says_how_to_run_it(rb):
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "volume-edit").strip()
    rb("incident", "approve", iid, "edit")
    said = rb("incident", "step", iid, "edit", "--run", expect=5, TMUX="")
    assert said.strip().endswith(f"step 'edit' is interactive: run it from your terminal, with `runbook incident step "
                                 f"{iid} edit --run` or in the TUI")


def test_tui_in_tmux_opens_the_window_and_records_the_run(engine, tmux):
    from pilot_helpers import press, settle

    from runbook.tui.app import build_app
    from runbook.tui.dialogs import ConfirmDialog

    iid = engine.open("volume-edit", "ana").id
    engine.approve(iid, "ana", "edit")
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(130, 44)) as pilot:
            try:
                await settle(pilot)
                await press(pilot, "u")
                assert isinstance(app.screen, ConfirmDialog)
                assert "It opens in a new tmux window." in str(app.screen.detail)
                await pilot.press("y")  # not press(): it would wait for the worker, which waits for the window
                await asyncio.to_thread(answer_in_window, tmux, "grow")
                await asyncio.to_thread(tmux.wait_for, lambda: "runbook-edit" not in tmux.windows(), "its end")
            finally:  # a failure above must not leave the engine's worker waiting on the window
                tmux("kill-window", "-t", "runbook-edit", check=False)
            await settle(pilot)  # the worker records the end

    asyncio.run(scenario())
    assert engine.state(iid).steps["edit"].status == "done"


def test_tui_in_a_real_terminal_suspends_runs_it_and_comes_back(tmux, tmp_path, fixture_env):
    """The real `runbook resume` in a tmux pane with $TMUX emptied: the app hands its terminal to
    the command, which reads what is typed, and is back on screen when it ends."""
    db = tmp_path / "db.sqlite"
    store = Store(str(db))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, load([str(CATALOG)]))
    iid = engine.open("volume-edit", "ana").id
    engine.approve(iid, "ana", "edit")
    store.close()
    env = {"TMUX": "", "RUNBOOK_DB": str(db), "RUNBOOK_FLAGS": str(tmp_path / "flags.json"), "RUNBOOK_USER": "ana",
           "TERM": "xterm-256color", "PYTHONPATH": fixture_env["PYTHONPATH"]}
    tmux("new-session", "-d", "-s", "tui", "-x", "120", "-y", "35", "env", *[f"{k}={v}" for k, v in env.items()],
         sys.executable, "-m", "runbook", "--catalog", str(CATALOG), "resume", iid)
    tmux.wait_for(lambda: "Edit the claim" in tmux.screen("tui"), "the incident screen")
    tmux("send-keys", "-t", "tui", "u")
    tmux.wait_for(lambda: "Run “Edit the claim" in tmux.screen("tui"), "the confirmation")
    tmux("send-keys", "-t", "tui", "y")
    tmux.wait_for(lambda: "new size for data-0?" in tmux.screen("tui"), "the command's prompt, the app suspended")
    tmux("send-keys", "-t", "tui", "-l", "grow")
    tmux("send-keys", "-t", "tui", "Enter")
    tmux.wait_for(lambda: "Watch the volume" in tmux.screen("tui") and "✓ Edit the claim" in tmux.screen("tui"),
                  "the app back, the step done")
    with Store(str(db)) as store:
        recorded = {e.type: e.data for e in store.events(iid)}
    assert recorded["action_started"]["attached"] == "terminal"
    assert (recorded["action_finished"]["ok"], recorded["action_finished"]["exit_code"]) == (True, 0)


def test_other_commands_go_on_while_an_interactive_command_runs(engine, tmux):
    """Only its start and its end go through the commands lane: a note (a second responder, an alert)
    is recorded while the command is still open in its window."""
    service = EngineService(engine)
    iid = engine.open("volume-edit", "ana").id
    service.command("approve", iid, "ana", "edit")
    done: list = []
    runner = threading.Thread(target=lambda: done.append(service.run_attached(iid, "ana", "edit", TmuxWindow())))
    runner.start()
    try:
        tmux.wait_for(lambda: "new size for data-0?" in tmux.screen("runbook-edit"), "the prompt")
        noted = service.command("note", iid, "bo", "the claim is at 98%")
        assert [e.type for e in noted] == ["note_added"]
        assert "edit" in service.query("state", iid).actions_pending  # still running when the note went in
        answer_in_window(tmux, "grow")
        runner.join(timeout=30)
    finally:
        tmux("kill-window", "-t", "runbook-edit", check=False)
        runner.join(timeout=30)
        service.close()
    kinds = [e.type for e in done[0]]
    assert kinds[:2] == ["action_started", "action_finished"] and "step_completed" in kinds
    log = [e.type for e in engine.store.events(iid)]
    assert log.index("action_started") < log.index("note_added") < log.index("action_finished")
    assert engine.state(iid).steps["edit"].status == "done"
