"""`runbook resume` in one process: its screen is drawn at once, then a worker makes the engine,
finds the incident and settles what a crash left half-done before any key acts; an incident it
cannot resume ends the command with its message and exit code (tests/test_tui_tmux.py runs it
in a real terminal).

The TUI runs headless here: on its own (`build_app`, driven by Pilot) or behind the real
command line (`resume`), which quits once the incident is on screen.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest
from pilot_helpers import widget_text
from test_degradation_races import FLAGS, INCIDENT, World, kill, read_line

from runbook.engine import Engine, SystemClock
from runbook.service import EngineService
from runbook.tui.app import RunbookApp, build_app
from runbook.tui.widgets.panels import IncidentHeader

BOUND = 600  # pauses of 50 ms: a guard against a hang, never reached when healthy
SETTLED = {"t.a": False, "t.b": False, "t.c": True, "t.d": True}  # what the interrupted degradation left


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./plugins: only the built-in plugins load
    w = World(tmp_path)
    monkeypatch.setenv("RUNBOOK_FLAGS", w.flags)
    monkeypatch.delenv("RUNBOOK_PLUGINS_DIR", raising=False)
    yield w
    w.close()


def interrupted(world) -> None:
    """A responder's process SIGKILLed between two flag writes of degradation t."""
    child = world.child("degrade", degradation="t", stop_at=2)
    read_line(child, "stopped")
    kill(child)


def events(world) -> list[str]:
    return [e.type for e in world.engine().state(INCIDENT).events]


async def until(pilot, condition) -> None:
    for _ in range(BOUND):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("the screen never got there")


def run(app, scenario) -> None:
    async def main():
        async with app.run_test(size=(100, 30)) as pilot:
            await scenario(pilot, app.screen_stack[0])
    asyncio.run(main())
    app.gateway.release()


def test_resume_settles_a_crash_off_the_screen_s_thread_before_showing_the_incident(world, monkeypatch):
    interrupted(world)
    assert "degradation_failed" not in events(world)
    settling = []
    real = Engine.reconcile

    def traced(engine, incident, **options):
        settling.append((incident, options, threading.current_thread() is threading.main_thread()))
        return real(engine, incident, **options)
    monkeypatch.setattr(Engine, "reconcile", traced)
    app = build_app(EngineService(lambda: world.engine(SystemClock()), own=True), None, "ana",
                    INCIDENT[4:8].lower(), live=False,
                    settle=True)  # a short id, in any case

    async def scenario(pilot, screen):
        await until(pilot, lambda: screen.view is not None)
        assert screen.incident == INCIDENT and screen.view.id == INCIDENT
        assert settling[0] == (INCIDENT, {"force": True}, False)  # the first thing done, on a worker
        # settled in the log before it is shown: what the flags really are, and that it failed half-way
        assert events(world)[-3:] == ["flag_changed", "flag_changed", "degradation_failed"]
        assert world.flag_values() == SETTLED
        assert any("interrupted half-way" in line.text for line in screen.view.timeline)
        assert not any(flag.pending for flag in screen.view.flags)
        assert INCIDENT in widget_text(screen.query_one(IncidentHeader))
    run(app, scenario)
    assert app.fatal is None
    assert world.engine().reconcile(INCIDENT, force=True) == []  # nothing left half-done


def test_the_first_frame_comes_before_the_engine_and_no_key_acts_until_the_incident_is_settled(world):
    go_on, asked = threading.Event(), threading.Event()

    def slow_engine():  # the engine is being made (imports, a slow database) while keys are pressed
        asked.set()
        assert go_on.wait(60)
        return world.engine(SystemClock())
    app = build_app(EngineService(slow_engine, own=True), None, "ana", INCIDENT, live=False, settle=True)

    async def scenario(pilot, screen):
        await until(pilot, asked.is_set)  # the worker started after the first frame
        assert "resuming INC-RACE01…" in widget_text(screen.query_one(IncidentHeader))
        assert screen.query_one("#incident-body").loading
        for key in ("n", "a", "m", "x", "o", "escape"):
            await pilot.press(key)
            assert app.screen is screen, key  # no dialog, not home
        go_on.set()
        await until(pilot, lambda: screen.view is not None)
        assert not screen.query_one("#incident-body").loading
        assert "acknowledged" not in events(world) and screen.view.acknowledged_by is None
        await pilot.press("a")  # now keys act
        await until(pilot, lambda: "acknowledged" in events(world))
    run(app, scenario)


def test_without_an_id_the_latest_open_incident_is_resumed(world):
    later = world.engine()
    later.open("four-flags", "ana", incident="INC-LATER1")
    app = build_app(EngineService(lambda: world.engine(SystemClock()), own=True), None, "ana",
                    None, live=False, settle=True)

    async def scenario(pilot, screen):
        assert "resuming the latest open incident…" in widget_text(screen.query_one(IncidentHeader))
        await until(pilot, lambda: screen.view is not None)
        assert screen.incident == "INC-LATER1"
    run(app, scenario)


def test_the_plugins_load_on_the_main_thread_after_the_first_frame_before_settling(world, monkeypatch):
    """Some plugins must load on the main thread (to set a signal handler); the engine's work
    runs on a worker. Resuming, they load on the main thread before the worker settles anything."""
    order = []
    real = Engine.reconcile

    def traced(engine, incident, **options):
        order.append("settled")
        return real(engine, incident, **options)
    monkeypatch.setattr(Engine, "reconcile", traced)
    app = build_app(EngineService(lambda: world.engine(SystemClock()), own=True), None, "ana",
                    INCIDENT, live=False, settle=True,
                    preload=lambda: order.append(("plugins", threading.current_thread() is threading.main_thread())))

    async def scenario(pilot, screen):
        await until(pilot, lambda: screen.view is not None)
    run(app, scenario)
    assert order == [("plugins", True), "settled"]


# behind the command line ------------------------------------------------------------------------

@pytest.fixture
def resume(world, rb, monkeypatch):
    """`runbook resume ARGS` as a responder runs it, the TUI headless: it quits once the incident
    is shown (`resume.shown` holds what the screen showed), or ends by itself on an error. In this
    process: the terminal check and the app's run are replaced."""
    from runbook.cli import tui

    monkeypatch.setattr(tui, "require_terminal", lambda *a: None)
    shown, drawn = [], []
    real = RunbookApp.run

    def headless(app, **options):
        async def until_shown(pilot):
            screen = app.screen_stack[0]
            drawn.append(widget_text(screen.query_one(IncidentHeader)))
            await until(pilot, lambda: screen.view is not None or app.fatal is not None)
            if app.fatal is None:
                shown.append(screen.view)
                app.exit()
        return real(app, headless=True, auto_pilot=until_shown, size=(100, 30))
    monkeypatch.setattr(RunbookApp, "run", headless)
    rb.cwd = world.tmp  # no ./plugins: only the built-in plugins load
    rb.env["RUNBOOK_FLAGS"] = world.flags
    del rb.env["RUNBOOK_PLUGINS_DIR"]

    def invoke(*args, catalog=None, expect=0, **extra_env):
        return rb.inproc("--catalog", str(catalog or world.catalog_dir), "--db", world.db, "resume", *args,
                         expect=expect, **extra_env)
    invoke.shown, invoke.drawn = shown, drawn
    return invoke


def one_error_line(err: str, text: str) -> None:
    """The command said why it ended in one line that holds `text`."""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("runbook: error: ") and text in lines[0], err


def test_the_command_resumes_in_one_process_and_its_observers_see_what_it_settled(world, resume):
    plugins, seen = world.tmp / "plugins", world.tmp / "seen.txt"
    plugins.mkdir()
    (plugins / "recorder.py").write_text(
        "import threading\n"
        "from runbook.pluginapi import hookimpl\n"
        f"SEEN = open({str(seen)!r}, 'a', buffering=1)\n"
        "SEEN.write(f'loaded on the main thread: {threading.current_thread() is threading.main_thread()}\\n')\n"
        "@hookimpl\n"
        "def event_appended(settings, event):\n"
        "    SEEN.write(event.type + '\\n')\n")
    interrupted(world)
    resume(INCIDENT[4:], RUNBOOK_PLUGINS_DIR=str(plugins))
    [view] = resume.shown
    assert view.id == INCIDENT and not any(flag.pending for flag in view.flags)
    assert world.flag_values() == SETTLED
    # loaded once, on the main thread; then it saw what settling appended, first (the ticks follow)
    assert seen.read_text().splitlines()[:4] == ["loaded on the main thread: True", "flag_changed", "flag_changed",
                                                 "degradation_failed"]


@pytest.mark.parametrize("typed, code, message", [
    ("ZZZ", 3, "no incident 'ZZZ' (see `runbook incident list --all`)"),
    ("\x1b[31mINC", 3, "no incident '\\x1b[31mINC'"),  # escaped once, never raw on the terminal
])
def test_an_incident_that_is_not_there_ends_the_command_with_its_message(world, resume, typed, code, message):
    one_error_line(resume(typed, expect=code), message)
    assert resume.shown == [] and resume.drawn  # the screen was drawn, then ended


def test_no_open_incident_ends_the_command_with_exit_3(world, resume):
    world.engine().resolve(INCIDENT, "ana")
    one_error_line(resume(expect=3), "no open incident to resume (see `runbook incident list --all`)")


def test_a_damaged_record_ends_the_command_with_its_message(world, resume):
    with sqlite3.connect(world.db) as conn:
        conn.execute("DELETE FROM snapshots WHERE incident = ?", [INCIDENT])
    conn.close()
    one_error_line(resume(INCIDENT, expect=1), f"the record of {INCIDENT} is damaged: the playbook snapshot it runs on "
                                               "is missing")


def test_a_file_that_is_not_a_database_ends_the_command_with_exit_7(world, resume, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my notes, not a database\n" * 200)
    world.db = str(notes)
    one_error_line(resume(INCIDENT, expect=7), f"{notes} is not an incident database")


def test_a_bad_setting_or_a_missing_catalog_stops_resume_before_its_screen_and_settles_nothing(
        world, resume, tmp_path):
    interrupted(world)
    before = events(world)
    assert "RUNBOOK_OBSERVER_GRACE" in resume(INCIDENT, RUNBOOK_OBSERVER_GRACE="abc", expect=2)
    one_error_line(resume(INCIDENT, catalog=tmp_path / "nowhere", expect=2), f"no catalog at {tmp_path / 'nowhere'}")
    assert resume.drawn == [] and events(world) == before  # no screen, and the half-done change still to settle
    assert set(world.flag_values()) == set(FLAGS)


def test_a_bug_while_settling_is_one_line_and_exit_70(world, monkeypatch, capfd):
    """Not a RunbookError: the worker's crash is not swallowed; the command reports it as a bug."""
    from runbook.cli import main, tui

    def broken(engine, incident, **options):
        raise ValueError("a bug")
    monkeypatch.setattr(Engine, "reconcile", broken)
    monkeypatch.setattr(tui, "require_terminal", lambda *a: None)
    real = RunbookApp.run
    monkeypatch.setattr(RunbookApp, "run", lambda app: real(app, headless=True))
    monkeypatch.setattr("sys.argv", ["runbook", "--catalog", str(world.catalog_dir), "--db", world.db, "resume"])
    monkeypatch.delenv("RUNBOOK_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 70
    _, err = capfd.readouterr()
    assert err.strip().endswith("runbook: internal error: ValueError: a bug (this is a bug; rerun with "
                                "RUNBOOK_DEBUG=1 for details)"), err

