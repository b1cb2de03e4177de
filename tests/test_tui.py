"""The TUI driven like a responder would: Pilot flows, snapshots at two sizes, live updates from
another process. Everything runs on the engine's virtual clock except the live-update test."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from pilot_helpers import flat, press, settle, widget_text

from runbook.catalog import load
from runbook.engine import Engine, SystemClock, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store
from runbook.tui.app import build_app
from runbook.tui.dialogs.choice import ChoiceDialog
from runbook.tui.dialogs.confirm import ConfirmDialog
from runbook.tui.screens.home import HomeScreen
from runbook.tui.screens.incident import IncidentScreen
from runbook.tui.widgets.panels import StepList

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def make(tmp_path, repo_root, fixture_catalog):
    stores = []

    def factory(open_incident=True, clock=None, live=False, playbook="video-call-degraded"):
        store = Store(str(tmp_path / "db.sqlite"))
        stores.append(store)
        host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=str(repo_root / "plugins")),
                          entry_points=False)
        engine = Engine(store, clock or VirtualClock(START), host, load([str(fixture_catalog / "playbooks")]))
        incident = None
        if open_incident:
            incident = engine.open(playbook, "ana", incident="INC-TEST01").id
            engine.tick(incident)
        return build_app(EngineService(engine), engine.catalog, "ana", incident, live=live), engine
    yield factory
    for store in stores:
        store.close()


def test_walk_a_playbook_to_resolution_with_the_keyboard(make, tmp_path):
    app, engine = make()

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, IncidentScreen)
            await press(pilot, "a")                      # acknowledge
            await press(pilot, "d")                      # scope
            await press(pilot, "s")                      # media-servers: skip asks why
            await pilot.press(*"no SFU alarms")
            await press(pilot, "enter")
            await press(pilot, "d")                      # recent-change
            await press(pilot, "c")                      # decision: where?
            assert isinstance(app.screen, ChoiceDialog)
            await press(pilot, "2")                      # several regions -> cap-bitrate
            await press(pilot, "d")                      # degrade step asks first
            assert isinstance(app.screen, ConfirmDialog)
            await press(pilot, "y")
            await press(pilot, "d")                      # verify-bitrate: mitigates
            await press(pilot, "n")
            await pilot.press(*"cap holds")
            await press(pilot, "enter")
            await press(pilot, "tab")                    # the comms track, side by side
            assert app.screen.selected.track == "comms"
            await press(pilot, "d")
            await press(pilot, "x")                      # resolve asks, then restores the cap
            assert isinstance(app.screen, ConfirmDialog)
            await press(pilot, "y")
    asyncio.run(scenario())

    state = engine.state("INC-TEST01")
    kinds = [(e.type, e.data.get("step") or e.data.get("label") or e.data.get("text")) for e in state.events
             if e.type in ("acknowledged", "step_completed", "step_skipped", "decision_made", "mitigated",
                           "note_added", "degradation_applied", "degradation_restored", "resolved")]
    assert kinds == [
        ("acknowledged", None), ("step_completed", "scope"), ("step_skipped", "media-servers"),
        ("step_completed", "recent-change"), ("decision_made", "where"), ("degradation_applied", "cap-bitrate"),
        ("step_completed", "cap-bitrate"), ("step_completed", "verify-bitrate"), ("mitigated", "verify-bitrate"),
        ("note_added", "cap holds"), ("step_completed", "open-channel"), ("degradation_restored", None),
        ("resolved", None)]
    assert state.events[[e.type for e in state.events].index("step_skipped")].data["reason"] == "no SFU alarms"
    assert all(e.actor in ("ana", "runbook") for e in state.events)
    flags = json.loads((tmp_path / "flags.json").read_text())["flags"]
    assert flags["rtc.video.max-bitrate-kbps"]["defaultVariant"] == "1500"


def test_declining_a_confirmation_changes_nothing(make, tmp_path):
    app, engine = make()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "g", "1")
            assert isinstance(app.screen, ConfirmDialog)
            await press(pilot, "n")
    asyncio.run(scenario())
    assert not (tmp_path / "flags.json").exists()
    assert "degradation_started" not in [e.type for e in engine.state("INC-TEST01").events]


def test_home_opens_a_playbook_from_the_symptom_filter(make):
    app, engine = make(open_incident=False)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, HomeScreen)
            await pilot.press(*"login fails")           # typing filters at once: no key first
            await settle(pilot)
            table = app.screen.query_one("#playbooks")
            assert table.get_row_at(0)[0] == "login-outage"
            await press(pilot, "enter")                 # Enter asks to open the top match
            assert isinstance(app.screen, ConfirmDialog)
            await press(pilot, "y")
            assert isinstance(app.screen, IncidentScreen)
            steps = app.screen.query_one(StepList)
            return app.screen.incident, widget_text(steps), steps.size.height
    incident, listed, height = asyncio.run(scenario())
    state = engine.state(incident)
    assert state.playbook.id == "login-outage"
    # the whole step list, every title whole (wrapped, not cut), its height following its content
    shown = [step.title for step in state.playbook.tracks[0].steps if step.title in flat(listed)]
    assert len(shown) == len(state.playbook.tracks[0].steps), shown
    assert height >= len(listed.rstrip("\n").splitlines())  # laid out whole (it scrolls when taller than the screen)


def _screen_text(app) -> str:
    """What the screen shows, as text (from Textual's SVG screenshot)."""
    import html
    import re

    svg = app.export_screenshot()
    return html.unescape(" ".join(re.findall(r">([^<>]*)</text>", svg))).replace("\xa0", " ")


def test_errors_are_shown_not_raised(make):
    app, _engine = make()

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "a")
            await press(pilot, "a")  # already acknowledged
            return [n.message for n in app._notifications]
    messages = asyncio.run(scenario())
    assert any("already acknowledged by ana" in m.lower() for m in messages)


def test_event_from_another_process_appears_within_a_second(make, repo_root, fixture_catalog, tmp_path):
    app, _engine = make(clock=SystemClock(), live=True)
    env = {**os.environ, "RUNBOOK_DB": str(tmp_path / "db.sqlite"), "RUNBOOK_FLAGS": str(tmp_path / "flags.json"),
           "RUNBOOK_CATALOG": str(fixture_catalog / "playbooks")}

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            proc = subprocess.run([sys.executable, "-m", "runbook", "incident", "note", "INC-TEST01",
                                   "second responder here", "--as", "ben"], cwd=repo_root, env=env,
                                  capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 3.0
            while loop.time() < deadline:  # bounded wait for the screen's own 1-second refresh
                view = app.screen.view
                if view and any(line.text == "note: second responder here" for line in view.timeline):
                    seen = loop.time() - (deadline - 3.0)
                    await pilot.pause()  # notify() posts a message: let the app handle it
                    return seen, [n.message for n in app._notifications]
                await pilot.pause(0.05)
            return None, []
    seen_after, notifications = asyncio.run(scenario())
    assert seen_after is not None, "the note never appeared"
    assert "note: second responder here" in notifications


def test_escape_from_the_incident_it_started_on_goes_home_and_back(make):
    app, _engine = make()

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, IncidentScreen) and app.screen.view is not None
            await press(pilot, "escape")
            assert isinstance(app.screen, HomeScreen)
            await press(pilot, "tab", "enter")  # the open incidents list, then resume the first
            return app.screen
    screen = asyncio.run(scenario())
    assert isinstance(screen, IncidentScreen) and screen.incident == "INC-TEST01"


def test_the_incident_it_started_on_stops_refreshing_once_home_covers_it(make):
    """The incident the app started on is its first screen, which Textual cannot switch away
    from: home goes over it, and it must then neither tick nor refresh, as if it were gone."""
    app, _engine = make(live=True)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            started_on = app.screen
            await press(pilot, "escape")
            viewed, ticked = [], []
            real_view, real_tick = app.gateway.view, app.gateway.tick
            app.gateway.view = lambda incident: viewed.append(incident) or real_view(incident)
            app.gateway.tick = lambda incident: ticked.append(incident) or real_tick(incident)
            await pilot.pause(2.5)  # the incident screen ticks and refreshes every second
            return started_on, list(app.screen_stack), viewed, ticked
    started_on, stack, viewed, ticked = asyncio.run(scenario())
    assert stack[0] is started_on and isinstance(stack[-1], HomeScreen)
    assert viewed == [] and ticked == []


def test_a_screen_left_and_come_back_to_is_told_of_a_change_once(make):
    """Leaving the incident screen (unwatch) and coming back (watch) must not subscribe the
    gateway to the broadcaster again: each subscription would refresh the screen once more."""
    from runbook.tui.gateway import EngineGateway

    _, engine = make()
    gateway = EngineGateway(EngineService(engine), engine.catalog)
    told: list = []
    try:
        for _ in range(3):  # incident screen, home, incident screen, ...
            gateway.watch(told.append)
            gateway.unwatch(told.append)
        gateway.watch(told.append)
        assert gateway.service.broadcaster.subscribers() == 1
        gateway._changed([broadcaster_change("INC-TEST01")])  # as the broadcaster hands a change out
        assert told == ["INC-TEST01"]
    finally:
        gateway.close()
        gateway.service.join()


def broadcaster_change(incident: str):
    from runbook.broadcaster import Change

    return Change(1, incident, 2, f"{incident} · ana: note", "")


def test_quitting_never_closes_a_connection_under_a_tick_and_the_tick_still_lands(make):
    """Quitting while a tick is appending must not block the screen, must not close the tick's
    connection under it (that crashes the process) and must not lose its event; the command
    waits for it after the screen is gone, and engine work after that is refused."""
    import sqlite3
    import threading

    from runbook.tui.gateway import EngineGateway, GatewayClosed

    _, engine = make()
    gateway = EngineGateway(EngineService(engine), engine.catalog)
    ticker = gateway.service.ticks.call(lambda engine: engine)  # the ticks lane's engine
    release, inside = threading.Event(), threading.Event()
    real_tick = ticker.tick

    def slow_tick(incident):
        inside.set()
        assert release.wait(10)
        real_tick(incident)
        ticker.note(incident, "ana", "written while quitting")

    ticker.tick = slow_tick
    ticking = threading.Thread(target=gateway.tick, args=("INC-TEST01",))
    ticking.start()
    assert inside.wait(10)
    gateway.close()  # returns at once: the screen is not held up
    assert gateway.closed
    ticker.store.conn.execute("SELECT 1")  # still open for the tick that is using it
    told = threading.Event()
    waiting = threading.Thread(target=gateway.wait_idle, args=(told.set,))
    waiting.start()
    assert told.wait(10)  # the user is told why the command has not returned yet...
    assert waiting.is_alive()  # ...and it still waits: the tick holds its lock until released
    release.set()
    ticking.join(10)
    waiting.join(10)
    assert not waiting.is_alive()
    assert engine.state("INC-TEST01").notes[-1].data["text"] == "written while quitting"
    with pytest.raises(sqlite3.ProgrammingError):  # closed by the tick when it finished
        ticker.store.conn.execute("SELECT 1")
    assert gateway.tick("INC-TEST01") is False
    with pytest.raises(GatewayClosed):
        gateway.call("note", "INC-TEST01", "ana", "too late")
    with pytest.raises(GatewayClosed):
        gateway.view("INC-TEST01")


def _snapshot_app(make, open_incident):
    app, _ = make(open_incident=open_incident)
    return app


async def _ready(pilot):
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot_incident_screen(make, snap_compare, size):
    assert snap_compare(_snapshot_app(make, True), terminal_size=size, run_before=_ready)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_snapshot_home_screen(make, snap_compare, size):
    app, engine = make(open_incident=False)
    engine.open("calls-failing-one-region", "ana", incident="INC-TEST02")
    assert snap_compare(app, terminal_size=size, run_before=_ready)


def test_no_color_still_shows_state_with_symbols(make, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app, _engine = make()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "d")
            steps = str(app.screen.query_one("#steps").render())
            header = str(app.screen.query_one("#incident-header").render())
            return app.no_color, steps, header
    no_color, steps, header = asyncio.run(scenario())
    assert no_color is True
    assert "✓ Measure how bad" in steps and "»▶ Check SFU" in steps
    assert "not acknowledged" in header and "SEV2" in header


# keys are declared once, in the screens' bindings --------------------------------------------

def _screens_with_keys() -> list[type]:
    """Every full screen the TUI has (found in tui/screens/, so a new one is covered too)."""
    import importlib
    import inspect
    import pkgutil

    from textual.screen import ModalScreen, Screen

    import runbook.tui.screens as package

    found = []
    for module in pkgutil.iter_modules(package.__path__):
        members = inspect.getmembers(importlib.import_module(f"{package.__name__}.{module.name}"), inspect.isclass)
        found += [cls for _, cls in members if issubclass(cls, Screen) and not issubclass(cls, ModalScreen)
                  and cls.__module__.startswith(package.__name__)]
    return sorted(set(found), key=lambda cls: cls.__name__)


def _help_sections(app) -> dict[str, list[str]]:
    """The help screen's key tables as lines of text, by screen name."""
    import io

    from rich.console import Console

    sections = {}
    for static in app.screen.query(".help-keys"):
        console = Console(width=200, file=io.StringIO(), record=True, color_system=None)
        console.print(static.content)
        sections[static.id.removeprefix("help-")] = console.export_text().splitlines()
    return sections


def _row_keys(line: str, explanation: str) -> list[str]:
    """The keys of a help line that explains this (none when it explains something else)."""
    keys, found, _ = line.partition(explanation)
    return keys.replace(" / ", " ").split() if found else []


def _bound(screen_type: type) -> list:
    return [binding for binding in screen_type.BINDINGS if binding.description]


def test_help_footer_and_palette_show_every_binding_of_every_screen(make):
    from runbook.tui.keys import explain, key_display
    from runbook.tui.screens.debrief import DebriefScreen
    from runbook.tui.screens.help import HelpScreen
    from runbook.tui.screens.report import ReportScreen
    from runbook.tui.widgets.keybar import KeyBar

    app, _engine = make()
    screens = _screens_with_keys()
    assert {cls.__name__ for cls in screens} >= {"IncidentScreen", "HomeScreen", "DebriefScreen", "ReportScreen"}

    async def scenario():
        seen = {}
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            # every screen, reached by its keys: footer text and palette commands on each
            for keys, screen_type in (((), IncidentScreen), (("b",), DebriefScreen), (("escape", "escape"), HomeScreen),
                                      (("tab", "R"), ReportScreen)):
                await press(pilot, *keys)
                assert type(app.screen) is screen_type
                palette = {command.title: command.help for command in app.get_system_commands(app.screen)}
                available = getattr(app.screen, "key_available", lambda action: True)
                seen[screen_type] = (app.screen.query_one(KeyBar).content.plain, palette,
                                     {b.action for b in _bound(screen_type) if available(b.action)})
            await press(pilot, "question_mark")
            assert isinstance(app.screen, HelpScreen)
            return seen, _help_sections(app)
    seen, help_sections = asyncio.run(scenario())

    assert set(help_sections) == {cls.__name__ for cls in screens} | {"RunbookApp"}
    for screen_type in screens:
        lines = help_sections[screen_type.__name__]
        for binding in _bound(screen_type):
            for key in key_display(binding, every=True).split(" / "):
                assert any(key in _row_keys(line, explain(binding)) for line in lines), \
                    f"{screen_type.__name__}: {key} ({binding.description}) missing from help:\n" + "\n".join(lines)
    assert any("^p" in _row_keys(line, "Command palette") for line in help_sections["RunbookApp"])

    for screen_type, (footer, palette, available) in seen.items():
        # the keys that work now, in the bindings' order (the footer wraps rather than cut one)
        shown = [f"{key_display(b)} {b.description}" for b in _bound(screen_type)
                 if b.show and b.action in available] + ["^p Palette"]
        assert " ".join(footer.split()) == " ".join(shown), screen_type.__name__
        for binding in _bound(screen_type):
            assert binding.description in palette, f"{screen_type.__name__}: {binding.description} not in the palette"
            assert f"({key_display(binding, every=True)})" in palette[binding.description]
    assert "q Back" not in seen[DebriefScreen][0]  # a second key for the same action: help only


def test_help_lists_b_R_and_r_where_they_apply(make):
    app, _engine = make()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "question_mark")
            return _help_sections(app)
    sections = asyncio.run(scenario())

    def explains(screen: str, key: str) -> str:
        return " ".join(line for line in sections[screen] if line.split()[:1] == [key])

    assert "Debrief" in explains("IncidentScreen", "b")
    assert "Restore" in explains("IncidentScreen", "r")
    assert "report" in explains("HomeScreen", "R")
    assert "Refresh" in explains("HomeScreen", "r")
    assert "Restart" in explains("IncidentScreen", "R")  # the same letter means another thing on each screen
    assert explains("HomeScreen", "b") == ""


def test_a_palette_command_runs_its_binding(make):
    app, engine = make()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "ctrl+p")
            await pilot.press(*"Ack")
            await settle(pilot)
            await press(pilot, "enter")
            return type(app.screen)
    assert asyncio.run(scenario()) is IncidentScreen
    assert engine.state("INC-TEST01").acknowledged_by == "ana"


def test_the_header_flows_again_when_the_terminal_is_resized(make):
    """Its items are flowed to the width it has: resized (still below the wide layout's 110
    columns), it is flowed again to the new width, never wrapped inside an item."""
    app, _ = make()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            header = app.screen.query_one("#incident-header")
            narrow = (header.content.plain, header.content_size.width)
            await pilot.resize_terminal(104, 30)
            await settle(pilot)
            return narrow, (header.content.plain, header.content_size.width)
    (at_80, width_80), (at_104, width_104) = asyncio.run(scenario())
    assert (width_80, width_104) == (78, 102)
    for text, width in ((at_80, width_80), (at_104, width_104)):
        assert all(len(line) <= width for line in text.splitlines()[1:]), text
    assert len(at_104.splitlines()[1]) > width_80  # flowed again: more fits on its first line of items


def test_a_record_with_an_event_it_cannot_read_says_so_and_still_restores(make, tmp_path):
    """D9 in the TUI: an inserted event of an unknown type no longer keeps the incident from
    opening; the screen says the log does not verify, and restore (r) shows the plan saying it
    restores from what verifies, then puts the flag back."""
    import sqlite3

    from runbook.store import event_hash

    app, engine = make()
    engine.degrade("INC-TEST01", "ana", "low-bitrate")
    with sqlite3.connect(tmp_path / "db.sqlite") as conn:
        seq, prev = conn.execute("SELECT seq, hash FROM events WHERE incident = 'INC-TEST01' ORDER BY seq DESC "
                                 "LIMIT 1").fetchone()
        ts = "2026-03-01T09:00:00.000000Z"
        conn.execute("INSERT INTO events (incident, seq, ts, actor, type, data, prev_hash, hash) VALUES "
                     "('INC-TEST01', ?, ?, 'mallory', 'made_up', '{}', ?, ?)",
                     [seq + 1, ts, prev, event_hash("INC-TEST01", seq + 1, ts, "mallory", "made_up", {}, prev)])
    engine._states.clear()
    notes, shown = [], []
    app.notify = lambda message, **kw: notes.append(message)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "r")
            if not isinstance(app.screen, ConfirmDialog):
                await press(pilot, "1")
            assert isinstance(app.screen, ConfirmDialog)
            shown.append(app.screen.detail)
            await press(pilot, "y")
    asyncio.run(scenario())
    assert any("does not verify" in n and "unknown event type 'made_up'" in n and "can still be restored" in n
               for n in notes), notes
    assert "restored from what verifies" in shown[0]
    flag = json.loads((tmp_path / "flags.json").read_text())["flags"]["rtc.video.max-bitrate-kbps"]
    assert flag["defaultVariant"] != "300", flag
