"""The incident screen's flip dialogs state the engine's plan (issue 25): the restore dialog names
the restore values, the staged dialogs (apply, the gated step's approval, S) name the share, the
header says why a stage holds and what to do, and asking the engine for a plan never freezes the
screen. On the shipped video playbook: low-bitrate (300, restored to 1500) and audio-only
(staged 10 → 50 → 100%)."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime

import pytest
from helpers.flags import video_on
from pilot_helpers import flat, press, settle, widget_text

from runbook import flagd
from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store
from runbook.tui.app import build_app
from runbook.tui.dialogs.choice import ChoiceDialog
from runbook.tui.dialogs.confirm import ConfirmDialog
from runbook.tui.dialogs.prompt import TextPrompt
from runbook.tui.widgets.panels import IncidentHeader

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
INCIDENT = "INC-TEST01"


@pytest.fixture
def make(tmp_path, repo_root, monkeypatch):
    monkeypatch.delenv("RUNBOOK_PROMETHEUS_URL", raising=False)
    flags = video_on(tmp_path)
    stores = []

    def factory():
        store = Store(str(tmp_path / "db.sqlite"))
        stores.append(store)
        host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
        engine = Engine(store, VirtualClock(START), host, load([str(repo_root / "playbooks")]))
        engine.open("video-call-degraded", "ana", incident=INCIDENT)
        return build_app(EngineService(engine), engine.catalog, "ana", INCIDENT, live=False), engine
    yield factory, flags
    for store in stores:
        store.close()


def dialog(app) -> tuple[str, str]:
    """The open dialog's question and detail, as shown."""
    screen = app.screen
    assert isinstance(screen, (ConfirmDialog, TextPrompt)), screen
    question = screen.question if isinstance(screen, ConfirmDialog) else screen.title_text
    return question, str(screen.query_one(".dialog-detail").render())


def to_audio_only(engine) -> None:
    for _ in range(3):
        engine.complete(INCIDENT, "ana")
    engine.choose(INCIDENT, "ana", "2")
    engine.complete(INCIDENT, "ana")  # cap-bitrate: low-bitrate applied
    engine.fail(INCIDENT, "ana", None, "still frozen")  # verify-bitrate failed: audio-only, gated


def test_the_restore_dialog_names_the_restore_values_and_writes_them(make):
    factory, flags = make
    app, engine = factory()
    engine.degrade(INCIDENT, "ana", "low-bitrate")

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "r", "1")
            shown = dialog(app)
            await press(pilot, "y")
            return shown
    question, detail = asyncio.run(scenario())
    assert question == "Restore “low-bitrate”? This flips flags back."
    assert detail == "rtc.video.max-bitrate-kbps → 1500 (restored)"  # it said "Now: … → 300"
    assert flagd.state(flagd.read(str(flags)), "rtc.video.max-bitrate-kbps").value == 1500
    [started] = [e for e in engine.state(INCIDENT).events
                 if e.type == "degradation_started" and e.data["op"] == "restore"]
    assert started.record.said == [detail]  # what was shown is what the log says was done


def test_the_resolve_dialog_names_what_each_restore_writes(make):
    factory, flags = make
    app, engine = factory()
    engine.degrade(INCIDENT, "ana", "low-bitrate")
    engine.degrade(INCIDENT, "ana", "audio-only")

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "x")
            shown = dialog(app)
            await press(pilot, "y")
            await settle(pilot)
            return shown
    question, detail = asyncio.run(scenario())
    assert question == "Resolve the incident?"
    assert detail.splitlines()[:5] == ["Restores low-bitrate:", "  rtc.video.max-bitrate-kbps → 1500 (restored)",
                                       "Restores audio-only:", "  rtc.video.enabled → true (restored)",
                                       "  rtc.screen-share.enabled → true (restored)"]
    assert engine.state(INCIDENT).resolved
    assert flagd.state(flagd.read(str(flags)), "rtc.video.max-bitrate-kbps").value == 1500
    assert flagd.state(flagd.read(str(flags)), "rtc.video.enabled").value is True


def test_applying_a_staged_degradation_names_its_first_share(make):
    factory, flags = make
    app, _ = factory()

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "g")
            assert isinstance(app.screen, ChoiceDialog)
            await press(pilot, "2")  # audio-only
            shown = dialog(app)
            await press(pilot, "y")
            return shown
    question, detail = asyncio.run(scenario())
    assert question == "Apply “audio-only” at stage 1 of 3 (10% of users)? This flips flags."
    assert detail.splitlines() == ["rtc.video.enabled → false for 10% of users (stage 1 of 3)",
                                   "rtc.screen-share.enabled → false for 10% of users (stage 1 of 3)"]
    assert json.loads(flags.read_text())["flags"]["rtc.video.enabled"]["targeting"]["fractional"][1] == ["off", 10]


def test_the_gated_steps_approval_and_its_done_name_the_share(make):
    factory, _ = make
    app, engine = factory()
    to_audio_only(engine)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "p")
            approval = dialog(app)
            await press(pilot, "y", "d")
            done = dialog(app)
            await press(pilot, "y")
            return approval, done
    (question, detail), (done_question, done_detail) = asyncio.run(scenario())
    assert question == "Approve “Fallback - switch calls to audio only” as commander?"
    # what it writes first, then what the approval records (engine/approvals.py)
    assert detail.splitlines()[:3] == ["Approved, it writes at stage 1 of 3 (10% of users):",
                                       "rtc.video.enabled → false for 10% of users (stage 1 of 3)",
                                       "rtc.screen-share.enabled → false for 10% of users (stage 1 of 3)"]
    assert "prompt: Turn off video, starting with 10% of users" in detail
    assert done_question == "Apply degradation “audio-only” at stage 1 of 3 (10% of users)? This flips flags."
    assert "rtc.video.enabled → false for 10% of users (stage 1 of 3)" in done_detail
    state = engine.state(INCIDENT)
    assert state.degradations["audio-only"].share == 10 and state.mitigated_at is None


def test_the_stage_dialog_names_the_share_of_each_move(make):
    factory, _ = make
    app, engine = factory()
    engine.degrade(INCIDENT, "ana", "audio-only")

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "S", "2")  # advance
            advance = dialog(app)
            await press(pilot, "escape", "S", "3")  # restore fully
            restore = dialog(app)
            await press(pilot, "escape")
            return advance, restore
    (question, detail), (full, restored) = asyncio.run(scenario())
    assert question == "Advance audio-only now to stage 2 (50% of users)?"
    assert detail.splitlines() == ["This flips flags:", "rtc.video.enabled → false for 50% of users (stage 2 of 3)",
                                   "rtc.screen-share.enabled → false for 50% of users (stage 2 of 3)"]
    assert full == "Restore audio-only fully?"
    assert restored.splitlines()[1:] == ["rtc.video.enabled → true (restored)",
                                         "rtc.screen-share.enabled → true (restored)"]
    assert engine.state(INCIDENT).degradations["audio-only"].share == 10  # both cancelled


def test_the_header_says_why_a_stage_holds_and_what_to_do(make):
    factory, _ = make
    app, engine = factory()
    engine.degrade(INCIDENT, "ana", "audio-only")
    engine.clock.advance(minutes=6)  # the hold is over; with no Prometheus address the check cannot be read
    engine.tick(INCIDENT)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            header = flat(widget_text(app.screen.query_one(IncidentHeader)))
            await press(pilot, "S")
            title = app.screen.title_text
            return header, title
    header, title = asyncio.run(scenario())
    assert "degraded: audio-only for about 10% of users, stage 1 of 3" in header
    assert ("HELD: check call-drops cannot be evaluated: no Prometheus address (set RUNBOOK_PROMETHEUS_URL, e.g. "
            "http://prometheus:9090); S advances by hand") in header
    assert "in 0s" not in header
    assert title.startswith("audio-only: stage 1 of 3 (10%), HELD: check call-drops cannot be evaluated: no Prometheus")


def test_a_slow_flag_backend_never_freezes_the_screen_while_the_plan_is_read(make):
    factory, _ = make
    app, engine = factory()
    reading, release = threading.Event(), threading.Event()
    read = engine.plugins.get_flag

    def slow_get_flag(*args, **kwargs):  # the backend answers only when the test lets it
        reading.set()
        release.wait(30)
        return read(*args, **kwargs)
    engine.plugins.get_flag = slow_get_flag

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "g")
            await pilot.press("1")  # low-bitrate: its plan reads the flag's value now
            await asyncio.get_running_loop().run_in_executor(None, reading.wait, 30)
            await pilot.press("n")  # the screen still takes keys: a note, while the plan is read
            await pilot.pause()
            noting = isinstance(app.screen, TextPrompt)
            await pilot.press("escape")
            await pilot.pause()
            release.set()
            await settle(pilot)
            return noting, dialog(app)
    noting, (question, detail) = asyncio.run(scenario())
    assert noting
    assert question == "Apply “low-bitrate”? This flips flags." and detail == "rtc.video.max-bitrate-kbps → 300"
