"""background: on an action step: its run: command keeps running after the step is done (a
port-forward the next step reads through, a repair in its own session), its handle recorded; the
incident stops it when its until: step ends, at resolve, or by hand, and records how it ended."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.engine.events import BackgroundStarted
from runbook.engine.owner import host
from runbook.pluginapi import process_start
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store

CATALOG = Path(__file__).parent / "lang_catalog"


@pytest.fixture
def engine(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_DATA_DIR", str(tmp_path / "data"))
    store = Store(str(tmp_path / "db.sqlite"))
    plugins = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), plugins, load([str(CATALOG)]))
    yield engine
    store.close()


@pytest.fixture
def port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def wait_until(condition, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # bounded polling of a real process's progress
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} never happened")


def listening(port: str) -> bool:
    try:
        socket.create_connection(("127.0.0.1", int(port)), 0.2).close()
    except OSError:
        return False
    return True


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def handle(engine, iid: str, step: str):
    return engine.state(iid).background[step].record


def stops(events) -> list[dict]:
    return [e.data for e in events if e.type == "background_stopped"]


def reap_later(pgid: int):
    """Kill a group a failed test left running (a no-op once the incident stopped it)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# the language ------------------------------------------------------------------------------

def test_lint_names_what_a_background_step_cannot_have(tmp_path):
    text = (CATALOG / "background.yaml").read_text()
    bad = text.replace("    background: {until: verify}\n",
                       "    background: {until: verfy}\n    timeout: 5m\n"
                       "    expect: {matches: ok}\n")
    bad = bad.replace("    run: [sh, -c, \"sleep 600 & sleep 600; wait\"]\n", "    uses: repair\n")
    bad = bad.replace("  - title: Watch the repair\n", "  - id: early\n    kind: action\n    title: Early\n"
                      "    run: [\"true\"]\n    background: {until: forward}\n    interactive: true\n"
                      "  - title: Watch the repair\n")
    (tmp_path / "bad.yaml").write_text(bad)
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    problems = [(p.path, p.message) for p in load_catalog([str(tmp_path)]).errors]
    assert problems == [
        ("steps[0].background.until", "step 'verfy' does not exist, known steps: early, forward, query, repair, "
                                      "step-6, verify; did you mean 'verify'?"),
        ("steps[0].timeout", "a background command runs until the incident stops it; remove timeout: (background: "
                             "{until: STEP} stops it at a step)"),
        ("steps[0].expect", "expect: needs the command to end, but a background command runs on after its step is "
                            "done (its output goes to a file); drop one of them"),
        ("steps[3].background", "background: keeps a run: command running, but this step has no run: (a uses: action "
                                "is run by a plugin, which runs nothing in the background)"),
        ("steps[4].background", "a command runs either attached to the responder's terminal (interactive:) or in the "
                                "background (background:), not both; drop one of them"),
        ("steps[4].background.until", "step 'forward' comes before 'early', so the command would be stopped before "
                                      "it started; name a later step"),
    ]


def test_the_approval_covers_that_it_runs_on(engine):
    from runbook.engine import approvals

    state = engine.state(engine.open("db-repair", "ana").id)
    assert approvals.covered(state, state.playbook.step("forward"))["background"] == "verify"
    assert approvals.covered(state, state.playbook.step("repair"))["background"] == "resolve"


# the engine, with real processes ------------------------------------------------------------

def test_a_forward_serves_the_next_step_and_stops_when_its_until_step_is_done(engine, port):
    iid = engine.open("db-repair", "ana", params={"port": port}).id
    started = engine.run(iid, "ana", "forward")
    forward = handle(engine, iid, "forward")
    try:
        assert [e.type for e in started][-4:-2] == ["action_finished", "background_started"]
        assert engine.state(iid).steps["forward"].status == "done"  # done once it started
        assert (forward.host, forward.pgid, forward.until) == (host(), forward.pid, "verify")
        assert forward.start == process_start(forward.pid) and forward.argv[:3] == ["python3", "-m", "http.server"]
        assert forward.output.endswith(f"incidents/{iid}/background/forward.log")
        wait_until(lambda: listening(port), "the forward listening")
        read = engine.run(iid, "ana", "query")  # while it runs, the next step reads through it
        assert engine.state(iid).steps["query"].output.strip() == "200", read
        assert group_alive(forward.pgid)
        done = engine.complete(iid, "ana", "verify")
        assert stops(done) == [{"step": "forward", "pid": forward.pid, "how": "stopped", "exit_code": -15,
                                "why": "“Check that the replica answers” done", "detail": ""}]
        assert not group_alive(forward.pgid) and "forward" not in engine.state(iid).background
        assert "GET / HTTP" in Path(forward.output).read_text()  # what it printed, in its file
    finally:
        reap_later(forward.pgid)


def test_skipping_the_until_step_stops_it_too(engine, port):
    iid = engine.open("db-repair", "ana", params={"port": port}).id
    engine.run(iid, "ana", "forward")
    forward = handle(engine, iid, "forward")
    try:
        engine.skip(iid, "ana", "query", "no need")
        stopped = stops(engine.skip(iid, "ana", "verify", "checked by hand"))
        assert stopped[0]["why"] == "“Check that the replica answers” skipped"
        assert not group_alive(forward.pgid)
    finally:
        reap_later(forward.pgid)


def test_resolve_stops_the_whole_process_group(engine, port):
    iid = engine.open("db-repair", "ana", params={"port": port}).id
    for step in ("forward", "query", "verify"):
        engine.skip(iid, "ana", step, "not this time")
    engine.run(iid, "ana", "repair")
    repair = handle(engine, iid, "repair")
    try:
        wait_until(lambda: len(_group(repair.pgid)) == 3, "sh and its two sleeps")
        children = _group(repair.pgid) - {repair.pid}
        resolved = engine.resolve(iid, "ana")
        assert [(s["step"], s["how"], s["why"]) for s in stops(resolved)] == [("repair", "stopped", "resolved")]
        assert not group_alive(repair.pgid)
        assert all(process_start(pid) is None for pid in children)  # the children went with it
    finally:
        reap_later(repair.pgid)


def test_in_a_simulation_the_step_is_done_and_nothing_is_started(tmp_path):
    """The simulated plugins run nothing: a background step goes through with no handle."""
    from runbook.drills.simulated import SimulatedPlugins

    with Store(str(tmp_path / "db.sqlite")) as store:
        engine = Engine(store, VirtualClock(), SimulatedPlugins(), load([str(CATALOG)]))
        iid = engine.open("db-repair", "simulation").id
        events = engine.run(iid, "simulation", "forward")
        assert "background_started" not in [e.type for e in events]
        assert engine.state(iid).steps["forward"].status == "done" and not engine.state(iid).background


def test_a_handoff_that_resolves_the_incident_stops_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNBOOK_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    (tmp_path / "background.yaml").write_text((CATALOG / "background.yaml").read_text().replace(
        "  - title: Watch the repair\n    mitigates: true\n",
        "  - id: to-dba\n    kind: handoff\n    title: Hand over to the DBAs\n"
        "    to: {name: DBA on-call, contact: dba@example.com}\n    resolves: true\n    mitigates: true\n"))
    with Store(str(tmp_path / "db.sqlite")) as store:
        plugins = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
        engine = Engine(store, VirtualClock(), plugins, load([str(tmp_path)]))
        iid = engine.open("db-repair", "ana").id
        for step in ("forward", "query", "verify"):
            engine.skip(iid, "ana", step, "not this time")
        engine.run(iid, "ana", "repair")
        repair = handle(engine, iid, "repair")
        try:
            ended = stops(engine.complete(iid, "ana", "to-dba"))
            assert [(s["how"], s["why"]) for s in ended] == [("stopped", "handed off to DBA on-call")]
            assert not group_alive(repair.pgid)
        finally:
            reap_later(repair.pgid)


def test_what_is_stopped_is_read_from_a_checkpoint_too(tmp_path, port, monkeypatch):
    """A long incident opens from a checkpoint: the handles it holds come back with it."""
    monkeypatch.setenv("RUNBOOK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RUNBOOK_CHECKPOINT_EVERY", "4")
    plugins = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    with Store(str(tmp_path / "db.sqlite")) as store:
        first = Engine(store, VirtualClock(), plugins, load([str(CATALOG)]))
        iid = first.open("db-repair", "ana", params={"port": port}).id
        first.run(iid, "ana", "forward")
        forward = handle(first, iid, "forward")
        for n in range(6):
            first.note(iid, "ana", f"note {n}")
    try:
        with Store(str(tmp_path / "db.sqlite")) as store:
            assert store.checkpoint(iid) is not None
            later = Engine(store, VirtualClock(), plugins, load([str(CATALOG)]))
            assert later.state(iid).base_seq > 0 and later.state(iid).background["forward"].seq > 0
            ended = stops(later.resolve(iid, "ana"))
            assert [(s["step"], s["how"]) for s in ended] == [("forward", "stopped")]
            assert not group_alive(forward.pgid)
    finally:
        reap_later(forward.pgid)


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(engine, port, monkeypatch):
    from runbook.engine import background

    monkeypatch.setattr(background, "GRACE", 0.3)
    iid = engine.open("db-repair", "ana", params={"port": port}).id
    engine.run(iid, "ana", "forward")
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 600"], start_new_session=True)
    try:
        # the handle now names a group that ignores SIGTERM (recorded as if started so)
        engine.stop_background(iid, "ana", "forward")
        engine.command(iid, "ana", lambda s: [BackgroundStarted("forward", ["sh"], stubborn.pid, stubborn.pid, host(),
                                                                process_start(stubborn.pid), "/dev/null")])
        wait_until(lambda: _stat_of(stubborn.pid) == "S", "the trap set")
        ended = stops(engine.stop_background(iid, "ana", "forward"))
        assert (ended[0]["how"], ended[0]["exit_code"]) == ("killed", -9)
        assert stubborn.poll() is not None or not group_alive(stubborn.pid)
    finally:
        reap_later(stubborn.pid)


def test_one_that_exits_by_itself_is_noticed_on_the_next_tick_with_its_status(engine):
    with socket.socket() as taken:  # the port is in use: the forward fails at once
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        iid = engine.open("db-repair", "ana", params={"port": str(taken.getsockname()[1])}).id
        engine.run(iid, "ana", "forward")
        pid = handle(engine, iid, "forward").pid
        noticed = []
        wait_until(lambda: noticed.extend(stops(engine.tick(iid))) or noticed, "its end noticed by a tick")
    assert noticed == [{"step": "forward", "pid": pid, "how": "exited", "exit_code": 1, "why": "", "detail": ""}]
    assert not engine.state(iid).background


def test_a_reused_pid_is_never_signalled(engine):
    """The handle names a live process whose start time is not the recorded one: someone else's."""
    iid = engine.open("db-repair", "ana").id
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        # a handle is looked at as soon as it is recorded (one may be due to stop at once): found gone
        ended = stops(engine.command(iid, "ana", lambda s: [BackgroundStarted("repair", ["sh"], other.pid, other.pid,
                                                                              host(), "1", "/dev/null")]))
        assert (ended[0]["how"], ended[0]["detail"]) == ("gone", "it ended while no runbook was watching, or its "
                                                                 "pid is another's now")
        assert other.poll() is None  # still running, untouched
    finally:
        other.kill()
        other.wait()


def test_one_on_another_host_is_not_signalled_and_resolve_says_so(engine):
    iid = engine.open("db-repair", "ana").id
    engine.command(iid, "ana", lambda s: [BackgroundStarted("repair", ["sleep", "600"], os.getpid(), os.getpid(),
                                                            "db-7", process_start(os.getpid()), "/dev/null")])
    assert not stops(engine.tick(iid)) and "repair" in engine.state(iid).background  # a tick leaves it be
    from runbook.cli.incident import summary

    shown = "\n".join(summary(engine.state(iid), engine.clock.now()))
    assert f"(pid {os.getpid()} on db-7, another host: stopped there, not here), until resolve" in shown
    for step in ("forward", "query", "verify", "repair"):
        engine.skip(iid, "ana", step, "elsewhere")
    ended = stops(engine.resolve(iid, "ana"))
    assert ended == [{"step": "repair", "pid": os.getpid(), "how": "elsewhere", "exit_code": None, "why": "resolved",
                      "detail": f"it runs on db-7: stop it there (kill -TERM -- -{os.getpid()})"}]


def test_running_it_again_while_it_runs_is_refused(engine, port):
    iid = engine.open("db-repair", "ana", params={"port": port}).id
    engine.run(iid, "ana", "forward")
    forward = handle(engine, iid, "forward")
    try:
        engine.restart(iid, "ana", "forward", "again")
        with pytest.raises(CommandError, match=rf"step 'forward' already has a command running in the background "
                                               rf"\(pid {forward.pid} on .*\); stop it first: runbook incident stop "
                                               rf"{iid} forward"):
            engine.run(iid, "ana", "forward")
    finally:
        engine.stop_background(iid, "ana", "forward")
        reap_later(forward.pgid)


def _group(pgid: int) -> set[int]:
    members = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid and _stat_of(int(entry)) not in (None, "Z"):
                    members.add(int(entry))
            except (ProcessLookupError, PermissionError):
                pass
    return members


def _stat_of(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return stat[stat.rfind(b")") + 2:].split()[0].decode()


# the CLI: each command its own process, so the command runs on after the one that started it ---

@pytest.fixture
def cli(rb, tmp_path):
    rb.catalogs = [CATALOG]
    rb.env = {**rb.env, "RUNBOOK_DATA_DIR": str(tmp_path / "data")}
    return rb


def test_cli_starts_it_shows_it_and_stops_it_by_hand(cli, port):
    iid = cli("incident", "open", "db-repair", "--param", f"port={port}").strip()
    said = cli("incident", "step", iid, "forward", "--run")
    assert "started in the background: python3 -m http.server" in said and "until step verify ends" in said
    with Store(str(cli.db)) as store:
        started = next(e.data for e in store.events(iid) if e.type == "background_started")
    try:
        assert group_alive(started["pgid"])
        shown = cli("incident", "show", iid)
        assert "RUNNING for " in shown
        assert f"(pid {started['pid']} on {host()}), until “Check that the replica answers” ends" in shown
        # its command output is in the file its handle recorded, and show points there
        ran = shown.split("command output")[1]
        assert "    forward (" in ran and f"| (in the background: output in {started['output']})" in ran
        assert "(no output)" not in ran
        assert cli("incident", "stop", iid, "verify", expect=5).strip().endswith(
            "step 'verify' has no background command running; running: forward")
        assert cli("incident", "stop", iid, "nope", expect=3).strip().endswith("has no step 'nope'")
        stopped = cli("incident", "stop", iid, "forward")
        assert f"background command of forward (pid {started['pid']}) stopped (stopped by ana)" in stopped
        assert not group_alive(started["pgid"])
        import json

        data = json.loads(cli("incident", "show", iid, "--json"))["background"]
        assert [(b["step"], b["pid"], b["ended"]["how"], b["ended"]["by"]) for b in data] == [
            ("forward", started["pid"], "stopped", "ana")]
        exported = cli("incident", "export", iid)
        assert "## Background commands" in exported and "stopped at" in exported
        assert f"(in the background: output in {started['output']})" in exported.split("## Command output")[1]
    finally:
        reap_later(started["pgid"])


def test_cli_resume_settles_what_ended_while_nobody_watched(cli, port):
    iid = cli("incident", "open", "db-repair", "--param", f"port={port}").strip()
    cli("incident", "step", iid, "forward", "--run")
    with Store(str(cli.db)) as store:
        started = next(e.data for e in store.events(iid) if e.type == "background_started")
    try:
        assert "RUNNING for" in cli("incident", "resume", iid)  # alive here: still running, shown
        os.killpg(started["pgid"], signal.SIGKILL)  # it dies while no runbook runs
        wait_until(lambda: process_start(started["pid"]) is None, "its end")
        resumed = cli("incident", "resume", iid)
        assert f"background command of forward (pid {started['pid']}) already gone" in resumed
        assert "gone at" in resumed  # and show's section says so
    finally:
        reap_later(started["pgid"])


# the TUI -----------------------------------------------------------------------------------

def test_tui_starts_it_shows_it_running_and_stops_it_after_a_confirm_saying_what_is_signalled(engine, port):
    from pilot_helpers import press, screen_text, settle

    from runbook.tui.app import build_app
    from runbook.tui.dialogs import ConfirmDialog

    iid = engine.open("db-repair", "ana", params={"port": port}).id
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)
    seen = {}

    async def scenario():
        async with app.run_test(size=(140, 44)) as pilot:
            await settle(pilot)
            await press(pilot, "u")
            assert isinstance(app.screen, ConfirmDialog)
            assert "It keeps running in the background until “Check that the replica answers” ends " \
                "(K stops it sooner)." in str(app.screen.detail)
            await press(pilot, "y")
            await settle(pilot)
            forward = seen["forward"] = handle(engine, iid, "forward")
            assert f"Forward the database port running (pid {forward.pid}" in screen_text(app)
            await press(pilot, "K")
            assert isinstance(app.screen, ConfirmDialog)
            detail = str(app.screen.detail)
            assert f"SIGTERM to process group {forward.pgid}" in detail and "SIGKILL 5s later" in detail
            assert "$ python3 -m http.server" in detail
            await press(pilot, "y")
            await settle(pilot)
            assert "running (pid" not in screen_text(app)
            await press(pilot, "K")  # nothing left to stop: it says so, and asks nothing
            assert not isinstance(app.screen, ConfirmDialog)

    try:
        asyncio.run(scenario())
        ended = [e.data for e in engine.store.events(iid) if e.type == "background_stopped"]
        assert [(d["how"], d["why"]) for d in ended] == [("stopped", "stopped by ana")]
        assert not group_alive(seen["forward"].pgid)
    finally:
        if "forward" in seen:
            reap_later(seen["forward"].pgid)


def test_a_stop_another_runbook_recorded_first_says_what_the_log_says(engine, monkeypatch):
    """The runbook that started a command is its parent: when someone else's SIGTERM ends it, that
    runbook's tick may reap it and record its end first. The stopper then says what was recorded
    instead of printing nothing and succeeding."""
    from runbook.engine import background
    from runbook.engine.events import BackgroundStopped

    iid = engine.open("db-repair", "ana").id
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)
    engine.command(iid, "ana", lambda s: [BackgroundStarted("repair", ["sleep", "600"], other.pid, other.pid, host(),
                                                            process_start(other.pid), "/dev/null")])

    def reaped_by_its_parent(record):
        other.terminate()
        other.wait()
        engine.command(iid, "runbook", lambda s: [BackgroundStopped("repair", other.pid, "exited", -15)])
        return "stopped", None
    monkeypatch.setattr(background, "terminate", reaped_by_its_parent)
    with pytest.raises(CommandError, match=rf"^not recorded: its end was recorded meanwhile, \d\d:\d\d:\d\d UTC by "
                                           rf"runbook: background command of repair \(pid {other.pid}\) ended by "
                                           r"SIGTERM \(status -15\)$"):
        engine.stop_background(iid, "bob", "repair")
    assert [e.actor for e in engine.state(iid).events if e.type == "background_stopped"] == ["runbook"]


def test_stopping_a_step_the_playbook_lacks_names_it(engine):
    from runbook.errors import NotFoundError

    iid = engine.open("db-repair", "ana").id
    with pytest.raises(NotFoundError, match=r"^playbook db-repair has no step 'nope'$"):
        engine.stop_background(iid, "ana", "nope")


def test_tui_k_stops_the_command_its_dialog_named_not_one_started_again_meanwhile(engine):
    from pilot_helpers import press, settle

    from runbook.engine.events import BackgroundStopped
    from runbook.tui.app import build_app
    from runbook.tui.dialogs import ConfirmDialog

    iid = engine.open("db-repair", "ana").id
    first, again = (subprocess.Popen(["sleep", "600"], start_new_session=True) for _ in range(2))

    def started(proc):
        engine.command(iid, "ana", lambda s: [BackgroundStarted("repair", ["sleep", "600"], proc.pid, proc.pid, host(),
                                                                process_start(proc.pid), "/dev/null")])
    started(first)
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(140, 44)) as pilot:
            await settle(pilot)
            await press(pilot, "K")
            assert isinstance(app.screen, ConfirmDialog)
            assert f"SIGTERM to process group {first.pid}" in str(app.screen.detail)
            # meanwhile, from another terminal: that one stopped, the step run again
            first.kill()
            first.wait()
            engine.command(iid, "bob", lambda s: [BackgroundStopped("repair", first.pid, "killed", None, "by bob")])
            started(again)
            await press(pilot, "y")
            await settle(pilot)
            return [n.message for n in app._notifications]

    try:
        said = asyncio.run(scenario())
        assert any(f"not stopped: step 'repair''s background command is another one now (pid {again.pid}" in n
                   for n in said), said
        assert again.poll() is None and "repair" in engine.state(iid).background  # the new one runs on, unseen
    finally:
        for proc in (first, again):
            proc.kill()
            proc.wait()


def test_a_command_whose_incident_resolved_while_it_started_is_stopped_at_once(engine, port, monkeypatch):
    """Resolve (another terminal) lands between the start's intent and its handle: the handle is
    recorded into a resolved incident, and stopped then, not left running for nobody to stop."""
    iid = engine.open("db-repair", "ana", params={"port": port}).id
    run = engine.plugins.run_action

    def resolved_meanwhile(request):
        out = run(request)
        engine.resolve(iid, "bob")
        return out
    monkeypatch.setattr(engine.plugins, "run_action", resolved_meanwhile)
    events = engine.run(iid, "ana", "forward")
    started = [e.data for e in events if e.type == "background_started"]
    try:
        assert [(d["how"], d["why"]) for d in stops(events)] == [("stopped", "resolved")]
        assert not engine.state(iid).background and not group_alive(started[0]["pgid"])
    finally:
        reap_later(started[0]["pgid"])


def test_stopping_by_hand_a_pid_reused_since_signals_nothing(engine, monkeypatch):
    from runbook.engine import background

    iid = engine.open("db-repair", "ana").id
    other = subprocess.Popen(["sleep", "600"], start_new_session=True)
    try:
        engine.command(iid, "ana", lambda s: [BackgroundStarted("repair", ["sh"], other.pid, other.pid, host(),
                                                                process_start(other.pid), "/dev/null")])
        monkeypatch.setattr(background, "_stat", lambda pid: ("S", "1"))  # the pid started anew since
        ended = stops(engine.stop_background(iid, "ana", "repair"))
        assert (ended[0]["how"], ended[0]["detail"]) == ("gone", "not signalled: its pid is free or another "
                                                                 "process's now")
        assert other.poll() is None  # still running, untouched
    finally:
        other.kill()
        other.wait()


def test_one_on_another_host_whose_until_step_ends_is_left_to_its_host(engine):
    """Its until step done here (a chat command through runbook serve, another responder): this host
    cannot signal it, so it stays running in the log for the runbook on its own host to stop (that
    host's tick); only resolve records it as not signalled."""
    iid = engine.open("db-repair", "ana").id
    engine.command(iid, "ana", lambda s: [BackgroundStarted("forward", ["sleep", "600"], os.getpid(), os.getpid(),
                                                            "db-7", process_start(os.getpid()), "/dev/null",
                                                            "verify")])
    from runbook.cli.incident import summary

    def show() -> str:
        return "\n".join(summary(engine.state(iid), engine.clock.now()))
    assert "until “Check that the replica answers” ends" in show()
    ended = []
    for step in ("forward", "query", "verify"):
        ended += stops(engine.skip(iid, "ana", step, "elsewhere"))
    assert not ended and "forward" in engine.state(iid).background
    # show says the step has ended and whose runbook stops the command, not "until … ends"
    assert "another host: stopped there, not here), though “Check that the replica answers” was skipped: it " \
           "waits for the runbook on db-7 to stop it" in show()
    engine.skip(iid, "ana", "repair", "elsewhere")
    assert [(d["how"], d["why"]) for d in stops(engine.resolve(iid, "ana"))] == [("elsewhere", "resolved")]


def test_an_end_by_a_signal_is_not_said_to_be_by_itself():
    """The runbook that started a command reaps it; when someone's kill (K or `incident stop` in
    another terminal) ended it, the timeline says the signal, not that it exited by itself."""
    from runbook.engine.events import BackgroundStopped

    assert BackgroundStopped("fwd", 7, "exited", -15).describe() == \
        "background command of fwd (pid 7) ended by SIGTERM (status -15)"
    assert BackgroundStopped("fwd", 7, "exited", 3).describe() == \
        "background command of fwd (pid 7) exited by itself with status 3"


def test_lint_says_an_until_naming_its_own_step_is_that_step(tmp_path):
    text = (CATALOG / "background.yaml").read_text().replace("{until: verify}", "{until: forward}")
    (tmp_path / "bad.yaml").write_text(text)
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    assert [p.message for p in load_catalog([str(tmp_path)]).errors] == [
        "step 'forward' is this step itself, so the command would be stopped before it started; name a later step"]


def test_a_command_whose_leader_exits_runs_on_as_its_group_until_stopped(engine):
    """`sh -c "worker & exit 3"`: the shell this runbook started exits at once, its child runs on in
    the group. A tick must not record the command ended (its child would then never be stopped);
    resolve stops the group and records the leader's exit status."""
    iid = engine.open("left-behind", "ana").id
    engine.run(iid, "ana", "restart")
    started = handle(engine, iid, "restart")
    try:
        wait_until(lambda: process_start(started.pid) is None or _stat_of(started.pid) == "Z",
                   "the shell to exit")
        for _ in range(3):
            assert stops(engine.tick(iid)) == []
        assert "restart" in engine.state(iid).background and group_alive(started.pgid)
        resolved = stops(engine.resolve(iid, "ana"))
        assert [(s["how"], s["exit_code"], s["why"]) for s in resolved] == [("stopped", 3, "resolved")]
        assert not group_alive(started.pgid)
    finally:
        reap_later(started.pgid)
