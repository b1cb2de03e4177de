"""`runbook resume` in a terminal forks before it parses its command line (runbook/launch.py): the
child parses it with the real CLI and, for a resume, settles what a crash left half-done,
resolves the id and builds the view while the parent loads the TUI.

The fast path must give the same answer as the plain one (`prepare` in this process), relay the
child's errors with their exit codes, do nothing at all for a command line that is not a resume,
and leave the work to the parent when the child dies.
"""

from __future__ import annotations

import os
import signal

import click
import pytest
from test_degradation_races import FLAGS, HERE, INCIDENT, World, kill, read_line

from runbook import launch
from runbook.cli import cli, tui
from runbook.engine import SystemClock
from runbook.views import incident_view

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
                                reason="needs fork and POSIX signals")

# what a view holds that does not move with the clock
STABLE = ("id", "title", "status", "severity", "acknowledged_by", "tracks", "current", "ladder", "flags",
          "timeline", "events", "last_seq", "altered", "phase", "roles")


def stable(view) -> dict:
    fields = {name: getattr(view, name) for name in STABLE}
    fields["current"] = tuple(step._replace(timebox_left=None) for step in view.current)
    fields["timeline"] = tuple(line._replace(rel=0) for line in view.timeline)
    return fields


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./plugins: only the built-in plugins load
    w = World(tmp_path)
    monkeypatch.setenv("RUNBOOK_FLAGS", w.flags)
    monkeypatch.delenv("RUNBOOK_PLUGINS_DIR", raising=False)
    yield w
    w.close()


def argv(world, *words) -> list[str]:
    return ["--catalog", str(world.catalog_dir), "--db", world.db, *words]


def fork(world, *words) -> launch.Preparation:
    """What `runbook ...WORDS` does first in a terminal: fork a child that runs the CLI."""
    line = argv(world, *words)
    child = launch.Preparation.fork(lambda: cli.main(args=line, prog_name="runbook"))
    assert child is not None
    return child


def interrupted(world) -> None:
    """A responder's process SIGKILLed between two flag writes of degradation t."""
    child = world.child("degrade", degradation="t", stop_at=2)
    read_line(child, "stopped")
    kill(child)


def test_the_child_settles_an_interrupted_degradation_and_its_view_is_the_one_made_here(world):
    interrupted(world)
    answer = fork(world, "resume", INCIDENT[4:8].lower(), "--as", "ana").result()  # a short id, in any case
    ok, incident, view, settled, spec, actor = answer
    assert (ok, incident, actor) == ("ok", INCIDENT, "ana")
    assert spec == ((str(world.catalog_dir),), None, world.db)  # the session the parent makes its engine on
    # settled by the child, in the log, before the first frame: what the flags really are
    assert world.flag_values() == {"t.a": False, "t.b": False, "t.c": True, "t.d": True}
    said = [line.text for line in view.timeline if "interrupted half-way" in line.text]
    assert said, [line.text for line in view.timeline]
    assert not any(flag.pending for flag in view.flags)
    # what it appended is handed back for the TUI's observers (the child fed none of them)
    engine = world.engine(SystemClock())
    appended = [e for e in engine.state(INCIDENT).events if e.seq in settled]
    assert [e.type for e in appended] == ["flag_changed", "flag_changed", "degradation_failed"], appended
    assert settled == sorted(settled) and settled[-1] == engine.state(INCIDENT).events[-1].seq
    # the same answer as the path without the fork, on the same log, at (nearly) the same time
    again, found = launch.prepare(engine, INCIDENT)
    assert again == incident and stable(found) == stable(view) == stable(incident_view(engine, INCIDENT)[0])
    assert engine.reconcile(INCIDENT, force=True) == []  # nothing left half-done


def test_the_child_picks_the_latest_open_incident_when_no_id_is_given(world):
    _, incident, view, settled, _, _ = fork(world, "resume").result()
    assert incident == INCIDENT and view.id == INCIDENT and view.status == "open" and settled == []


@pytest.mark.parametrize("typed, message", [
    ("ZZZ", "no incident 'ZZZ' (see `runbook incident list --all`)"),
    ("\x1b[31mINC", "no incident"),
])
def test_an_error_in_the_child_is_raised_here_as_the_cli_prints_it(world, typed, message):
    child = fork(world, "resume", typed)
    with pytest.raises(launch.RelayedError) as raised:
        child.result()
    assert raised.value.exit_code == 3
    assert message in str(raised.value)
    assert "\x1b" not in str(raised.value)  # escaped once, in the child, and not raw here


def test_no_open_incident_is_relayed_with_its_exit_code(world):
    world.engine().resolve(INCIDENT, "ana")
    with pytest.raises(launch.RelayedError, match="no open incident to resume") as raised:
        fork(world, "resume").result()
    assert raised.value.exit_code == 3


@pytest.mark.parametrize("words", [
    ("incident", "note", INCIDENT, "resume", "--as", "ana"),  # "resume" as a note's text
    ("resume", "--help"),
    ("resume", INCIDENT, "--no-such-option"),
    ("resume", INCIDENT, "--as", ""),  # an actor the CLI refuses
    ("incident", "ack", INCIDENT, "--as", "ana"),
])
def test_a_command_line_that_is_not_a_resume_is_left_to_the_parent_untouched(world, words):
    """The guess was wrong: the child runs nothing, and the parent runs the command the usual
    way (where a usage error or --help prints once, from the parent)."""
    before = world.engine().state(INCIDENT).events
    assert fork(world, *words).result() is None
    assert world.engine().state(INCIDENT).events == before


def test_a_child_that_dies_leaves_no_answer_and_nothing_half_done(world, monkeypatch):
    interrupted(world)

    def dies(engine, typed):  # in the child: killed before it settles anything
        os.kill(os.getpid(), signal.SIGKILL)
    monkeypatch.setattr(launch, "prepare", dies)
    assert fork(world, "resume", INCIDENT).result() is None
    monkeypatch.undo()
    # the parent then does the work itself (resume's fallback), with the same outcome
    engine = world.engine()
    incident, view = launch.prepare(engine, INCIDENT)
    assert incident == INCIDENT and not any(flag.pending for flag in view.flags)
    assert set(world.flag_values()) == set(FLAGS)


@pytest.mark.parametrize("value, forks", [("1", False), ("yes", False), ("true", False), ("0", True),
                                          ("", True), ("no", True), (None, True)])
def test_no_fork_when_asked(value, forks):
    assert launch.forking_allowed({} if value is None else {"RUNBOOK_NO_FORK": value}) == forks


@pytest.mark.parametrize("words, guess", [
    (["resume"], True),
    (["resume", "854"], True),
    (["--catalog", "x", "--db", "y.db", "resume", "854", "--as", "ana"], True),
    (["--catalog=x", "--plugins-dir", "p", "resume"], True),
    (["--db", "resume"], False),  # a database file named resume, and no command
    (["--db", "resume", "resume"], True),
    (["resume", "--help"], False),
    (["resume", "854", "-h"], False),
    (["--help", "resume"], False),
    (["--version"], False),
    ([], False),
    (["incident", "resume", "854"], False),  # the headless one: no TUI, no fork
    (["incident", "note", "854", "resume"], False),
    (["--", "resume"], False),
])
def test_which_command_lines_fork(words, guess):
    assert launch.resume_requested(words) == guess


def test_the_guess_knows_every_root_option_that_takes_a_value():
    taking = {name for param in cli.params if isinstance(param, click.Option) and not param.is_flag
              for name in param.opts}
    assert taking == launch.ROOT_OPTIONS_WITH_VALUES


def test_what_the_child_prints_never_reaches_the_terminal(world, monkeypatch, capfd):
    real = launch.prepare

    def noisy(engine, typed):  # a plugin or library writing to the terminal while the screen draws
        print("LEAK on stdout", flush=True)
        os.write(2, b"LEAK on stderr\n")
        return real(engine, typed)
    monkeypatch.setattr(launch, "prepare", noisy)
    assert fork(world, "resume", INCIDENT).result()[1] == INCIDENT
    assert fork(world, "resume", "--no-such-option").result() is None  # click's usage error, in the child
    out, err = capfd.readouterr()
    assert "LEAK" not in out and "LEAK" not in err and "no-such-option" not in out + err


class Ran:
    """Stands in for the TUI (run_tui): what `runbook resume` would have run it with."""

    def __init__(self, monkeypatch):
        self.calls = []

        def record(ctx, actor, incident, engine, **kw):
            self.calls.append((ctx, actor, incident, engine, kw))
        monkeypatch.setattr(tui, "require_terminal", lambda *a: None)
        monkeypatch.setattr(tui, "run_tui", record)
        monkeypatch.setattr(launch, "run_tui", record)


def resume(world, *args):
    from click.testing import CliRunner

    return CliRunner().invoke(cli, argv(world, "resume", *args))


def test_the_parent_runs_the_tui_on_the_child_s_view_and_makes_its_engine_later(world, monkeypatch, tmp_path):
    interrupted(world)
    ran, pids, real = Ran(monkeypatch), tmp_path / "pids", launch.prepare

    def traced(engine, typed):
        with open(pids, "a") as out:
            out.write(f"{os.getpid()}\n")
        return real(engine, typed)
    monkeypatch.setattr(launch, "prepare", traced)
    assert fork(world, "resume", INCIDENT[4:], "--as", "bo").run() is True
    [(session, actor, incident, engine, kw)] = ran.calls
    assert incident == INCIDENT and actor == "bo"
    assert session.spec() == ((str(world.catalog_dir),), None, world.db)
    assert callable(engine) and engine == session.new_engine  # the engine is made after the first frame
    assert kw["first_view"].id == INCIDENT and not any(f.pending for f in kw["first_view"].flags)
    assert kw["observe_later"][0] == INCIDENT and len(kw["observe_later"][1]) == 3
    assert [int(line) for line in pids.read_text().split()] != [os.getpid()]  # prepared in the child


def test_the_parent_prints_the_child_s_error_once_with_its_exit_code(world, monkeypatch, capfd):
    ran = Ran(monkeypatch)
    with pytest.raises(SystemExit) as exited:
        fork(world, "resume", "ZZZ").run()
    assert exited.value.code == 3 and ran.calls == []
    out, err = capfd.readouterr()
    assert err == "runbook: error: no incident 'ZZZ' (see `runbook incident list --all`)\n" and out == ""


def test_when_the_child_dies_resume_runs_the_usual_way_and_settles_the_crash_itself(world, monkeypatch):
    interrupted(world)
    ran, parent, real = Ran(monkeypatch), os.getpid(), launch.prepare

    def dies_in_the_child(engine, typed):
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(engine, typed)
    monkeypatch.setattr(launch, "prepare", dies_in_the_child)
    assert fork(world, "resume", INCIDENT).run() is False  # __main__ then runs the CLI here
    assert ran.calls == []
    result = resume(world, INCIDENT)
    assert result.exit_code == 0, result.output
    [(_, _, _incident, engine, kw)] = ran.calls
    assert not callable(engine) and kw["first_view"].id == INCIDENT  # done here, with this engine
    assert not any(f.pending for f in kw["first_view"].flags)
    assert world.flag_values() == {"t.a": False, "t.b": False, "t.c": True, "t.d": True}


def test_the_tui_s_observers_get_what_the_child_settled(world, tmp_path, monkeypatch):
    from runbook.engine import SystemClock as Clock
    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.store import Store
    from runbook.tui.gateway import EngineGateway

    interrupted(world)
    _, incident, _view, settled, _, _ = fork(world, "resume", INCIDENT).result()
    host = PluginHost(Settings(flags_file=world.flags, plugins_dir=str(HERE / "plugins" / "observers")),
                      entry_points=False)
    made = []

    def make():
        from runbook.engine import Engine

        made.append(Engine(Store(world.db), Clock(), host, world.catalog))
        return made[-1]
    gateway = EngineGateway(make, observe_later=(incident, settled))
    assert made == []  # nothing made until engine work is asked for
    gateway.warm(incident)
    gateway.warm(incident)  # handed over once
    host.drain(5)
    seen = host.pm.get_plugin("recorder").SEEN
    assert [e.seq for e in seen] == settled
    gateway.close()
    gateway.release()


def test_a_bad_setting_stops_a_command_before_it_writes(world, monkeypatch):
    from click.testing import CliRunner

    monkeypatch.setenv("RUNBOOK_OBSERVER_GRACE", "abc")
    result = CliRunner().invoke(cli, argv(world, "incident", "note", INCIDENT, "hello", "--as", "ana"))
    assert result.exit_code == 2 and "RUNBOOK_OBSERVER_GRACE" in result.output
    assert not [e for e in world.engine().state(INCIDENT).events if e.type == "note_added"]
    ran = Ran(monkeypatch)
    result = resume(world, INCIDENT)
    assert result.exit_code == 2 and "RUNBOOK_OBSERVER_GRACE" in result.output and ran.calls == []
    with pytest.raises(launch.RelayedError, match="RUNBOOK_OBSERVER_GRACE") as raised:
        fork(world, "resume", INCIDENT).result()
    assert raised.value.exit_code == 2


def test_a_screen_whose_engines_cannot_be_made_ends_with_the_error(world, monkeypatch):
    """The first frame came from the child's view; if this process then cannot reach the database
    (too many connections, the server gone), the TUI must not sit on a stale screen: it ends and
    the command prints the error with its exit code, as before the screen was drawn."""
    import asyncio

    from runbook.store.common import StoreError
    from runbook.tui.app import build_app

    view = incident_view(world.engine(SystemClock()), INCIDENT)[0]
    tries = []

    def unreachable():
        tries.append(1)
        raise StoreError("cannot reach the incident database: too many connections")
    app = build_app(unreachable, None, "ana", INCIDENT, first_view=view)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(50):  # the engines are asked for right after the first frame
                if app.fatal is not None:
                    break
                await pilot.pause(0.05)
    asyncio.run(scenario())
    assert isinstance(app.fatal, StoreError) and app.fatal.exit_code == 7
    assert not app.is_running and len(tries) == 1


def test_the_plugins_load_on_the_main_thread_after_the_first_frame(world):
    """Engines are made on workers, but a plugin may need the main thread when it loads (to set a
    signal handler): the TUI loads them there (`preload`), right after its first frame."""
    import asyncio
    import threading

    from runbook.tui.app import build_app

    view = incident_view(world.engine(SystemClock()), INCIDENT)[0]
    loaded = []
    app = build_app(lambda: world.engine(SystemClock()), None, "ana", INCIDENT, first_view=view,
                    preload=lambda: loaded.append(threading.current_thread() is threading.main_thread()))

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            for _ in range(50):
                if loaded:
                    break
                await pilot.pause(0.05)
    asyncio.run(scenario())
    app.gateway.release()
    assert loaded == [True]


def test_a_parent_started_with_sigchld_ignored_still_reads_the_child_s_answer(world):
    """Some supervisors start programs with SIGCHLD ignored: the child is then reaped by the
    kernel and waiting for it finds nothing, which is not an error."""
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        assert fork(world, "resume", INCIDENT).result()[1] == INCIDENT
    finally:
        signal.signal(signal.SIGCHLD, previous)


def test_a_resume_whose_tui_could_not_start_settles_nothing(world, tmp_path, monkeypatch):
    """No catalog where one is named: the command stops before anything is settled, in the child
    as in one process, so no event is appended that the plugins' observers would never see."""
    from click.testing import CliRunner

    interrupted(world)
    before = world.engine().state(INCIDENT).last_seq
    line = ["--catalog", str(tmp_path / "nowhere"), "--db", world.db, "resume", INCIDENT]
    with pytest.raises(launch.RelayedError, match="no catalog at") as raised:
        launch.Preparation.fork(lambda: cli.main(args=line, prog_name="runbook")).result()
    assert raised.value.exit_code == 2
    Ran(monkeypatch)  # in a terminal, in one process
    result = CliRunner().invoke(cli, line)
    assert result.exit_code == 2 and "no catalog at" in result.output
    assert world.engine().state(INCIDENT).last_seq == before  # the interrupted flag change is still there to settle


def test_a_process_the_child_forks_does_not_hold_the_answer_back(world, monkeypatch):
    """A plugin's helper process forked while the child settles (multiprocessing, a daemon)
    outlives the child; the parent reads the answer's pipe to its end and must not wait for
    that helper too."""
    import threading

    release_read, release_write = os.pipe()
    real = launch.prepare

    def forks_a_helper(engine, typed):
        if os.fork() == 0:  # the helper: waits until the test lets it go
            os.read(release_read, 1)
            os._exit(0)
        return real(engine, typed)
    monkeypatch.setattr(launch, "prepare", forks_a_helper)
    child = fork(world, "resume", INCIDENT)
    answers = []
    reader = threading.Thread(target=lambda: answers.append(child.result()), daemon=True)
    reader.start()
    reader.join(30)  # a guard against a hang, not a timing: the answer is there long before
    answered_while_the_helper_lives = bool(answers)
    os.write(release_write, b"x")  # the helper goes either way
    reader.join(30)
    os.close(release_read)
    os.close(release_write)
    assert answered_while_the_helper_lives and answers[0][1] == INCIDENT
