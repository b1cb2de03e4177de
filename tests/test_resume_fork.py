"""`runbook resume` prepares its first view in a forked child (cli/tui.py): the child settles what
a crash left half-done, resolves the id and builds the view while the parent loads the TUI.

The fast path must give the same answer as the plain one (`prepare` in this process), relay the
child's errors with their exit codes, and leave the work to the parent when the child dies.
"""

from __future__ import annotations

import os
import signal

import pytest

from runbook.cli import tui
from runbook.cli.context import Context
from runbook.engine import SystemClock
from runbook.views import incident_view
from test_degradation_races import FLAGS, HERE, INCIDENT, World, kill, read_line

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


def context(world) -> Context:
    return Context((str(world.catalog_dir),), None, world.db)


def interrupted(world) -> None:
    """A responder's process SIGKILLed between two flag writes of degradation t."""
    child = world.child("degrade", degradation="t", stop_at=2)
    read_line(child, "stopped")
    kill(child)


def test_the_child_settles_an_interrupted_degradation_and_its_view_is_the_one_made_here(world):
    interrupted(world)
    child = tui.Preparation.start(context(world), INCIDENT[4:8].lower())  # a short id, in any case
    assert child is not None
    incident, view, settled = child.result()
    assert incident == INCIDENT
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
    again, found = tui.prepare(engine, INCIDENT)
    assert again == incident and stable(found) == stable(view) == stable(incident_view(engine, INCIDENT)[0])
    assert engine.reconcile(INCIDENT, force=True) == []  # nothing left half-done


def test_the_child_picks_the_latest_open_incident_when_no_id_is_given(world):
    incident, view, settled = tui.Preparation.start(context(world), None).result()
    assert incident == INCIDENT and view.id == INCIDENT and view.status == "open" and settled == []


@pytest.mark.parametrize("typed, message", [
    ("ZZZ", "no incident 'ZZZ' (see `runbook incident list --all`)"),
    ("\x1b[31mINC", "no incident"),
])
def test_an_error_in_the_child_is_raised_here_as_the_cli_prints_it(world, typed, message):
    child = tui.Preparation.start(context(world), typed)
    with pytest.raises(tui.RelayedError) as raised:
        child.result()
    assert raised.value.exit_code == 3
    assert message in str(raised.value)
    assert "\x1b" not in str(raised.value)  # escaped once, in the child, and not raw here


def test_no_open_incident_is_relayed_with_its_exit_code(world):
    world.engine().resolve(INCIDENT, "ana")
    with pytest.raises(tui.RelayedError, match="no open incident to resume") as raised:
        tui.Preparation.start(context(world), None).result()
    assert raised.value.exit_code == 3


def test_a_child_that_dies_leaves_no_answer_and_nothing_half_done(world, monkeypatch):
    interrupted(world)

    def dies(engine, typed):  # in the child: killed before it settles anything
        os.kill(os.getpid(), signal.SIGKILL)
    monkeypatch.setattr(tui, "prepare", dies)
    assert tui.Preparation.start(context(world), INCIDENT).result() is None
    monkeypatch.undo()
    # the parent then does the work itself (resume's fallback), with the same outcome
    engine = world.engine()
    incident, view = tui.prepare(engine, INCIDENT)
    assert incident == INCIDENT and not any(flag.pending for flag in view.flags)
    assert set(world.flag_values()) == set(FLAGS)


@pytest.mark.parametrize("value, forks", [("1", False), ("yes", False), ("0", True), ("", True)])
def test_no_fork_when_asked(world, monkeypatch, value, forks):
    monkeypatch.setenv("RUNBOOK_NO_FORK", value)
    child = tui.Preparation.start(context(world), INCIDENT)
    assert (child is not None) == forks
    if child is not None:
        assert child.result()[0] == INCIDENT


def test_what_the_child_prints_never_reaches_the_terminal(world, monkeypatch, capfd):
    real = tui.prepare

    def noisy(engine, typed):  # a plugin or library writing to the terminal while the screen draws
        print("LEAK on stdout", flush=True)
        os.write(2, b"LEAK on stderr\n")
        return real(engine, typed)
    monkeypatch.setattr(tui, "prepare", noisy)
    assert tui.Preparation.start(context(world), INCIDENT).result()[0] == INCIDENT
    out, err = capfd.readouterr()
    assert "LEAK" not in out and "LEAK" not in err


class Ran:
    """Stands in for the TUI (run_tui): what `runbook resume` would have run it with."""

    def __init__(self, monkeypatch):
        self.calls = []
        monkeypatch.setattr(tui, "require_terminal", lambda *a: None)
        monkeypatch.setattr(tui, "run_tui", lambda ctx, actor, incident, engine, **kw: self.calls.append(
            (incident, engine, kw)))


def resume(world, *args):
    from click.testing import CliRunner

    from runbook.cli import cli

    return CliRunner().invoke(cli, ["--catalog", str(world.catalog_dir), "--db", world.db, "resume", *args])


def test_resume_runs_the_tui_on_the_child_s_view_and_makes_its_engine_later(world, monkeypatch, tmp_path):
    interrupted(world)
    ran, pids, real = Ran(monkeypatch), tmp_path / "pids", tui.prepare

    def traced(engine, typed):
        with open(pids, "a") as out:
            out.write(f"{os.getpid()}\n")
        return real(engine, typed)
    monkeypatch.setattr(tui, "prepare", traced)
    result = resume(world, INCIDENT[4:])
    assert result.exit_code == 0, result.output
    [(incident, engine, kw)] = ran.calls
    assert incident == INCIDENT and callable(engine)  # the engine is made after the first frame
    assert kw["first_view"].id == INCIDENT and not any(f.pending for f in kw["first_view"].flags)
    assert kw["observe_later"][0] == INCIDENT and len(kw["observe_later"][1]) == 3
    assert [int(line) for line in pids.read_text().split()] != [os.getpid()]  # prepared in the child


def test_when_the_child_dies_resume_settles_the_crash_itself(world, monkeypatch):
    interrupted(world)
    ran, parent, real = Ran(monkeypatch), os.getpid(), tui.prepare

    def dies_in_the_child(engine, typed):
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(engine, typed)
    monkeypatch.setattr(tui, "prepare", dies_in_the_child)
    result = resume(world, INCIDENT)
    assert result.exit_code == 0, result.output
    [(incident, engine, kw)] = ran.calls
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
    incident, view, settled = tui.Preparation.start(context(world), INCIDENT).result()
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

    from runbook.cli import cli

    monkeypatch.setenv("RUNBOOK_OBSERVER_GRACE", "abc")
    result = CliRunner().invoke(cli, ["--catalog", str(world.catalog_dir), "--db", world.db, "incident", "note",
                                      INCIDENT, "hello", "--as", "ana"])
    assert result.exit_code == 2 and "RUNBOOK_OBSERVER_GRACE" in result.output
    assert not [e for e in world.engine().state(INCIDENT).events if e.type == "note_added"]
    ran = Ran(monkeypatch)
    result = resume(world, INCIDENT)
    assert result.exit_code == 2 and "RUNBOOK_OBSERVER_GRACE" in result.output and ran.calls == []


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
