"""The responder steers a staged degradation from the incident screen (issue 17): `S` offers what
makes sense now, asks for an optional reason, and the degradations panel follows."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
from datetime import UTC, datetime

import pytest
import yaml
from helpers.flags import video_on
from pilot_helpers import flat, press, screen_text, settle
from rich.console import Console

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store
from runbook.tui.app import build_app
from runbook.tui.dialogs.choice import ChoiceDialog
from runbook.tui.dialogs.prompt import TextPrompt
from runbook.tui.screens.incident import IncidentScreen
from runbook.tui.widgets.panels import SidePanel

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def make(tmp_path, repo_root):
    """The shipped video playbook (audio-only is staged 10 → 50 → 100%) on a flag file holding its flags;
    `also_staged` gives low-bitrate a rollout too."""
    flags = video_on(tmp_path)
    stores = []

    def factory(also_staged=False):
        playbooks = repo_root / "playbooks"
        if also_staged:
            doc = yaml.safe_load((playbooks / "video-call-degraded.yaml").read_text())
            doc["degradations"]["low-bitrate"]["rollout"] = {"stages": [25, 100], "hold": "10m"}
            playbooks = shutil.copytree(playbooks, tmp_path / "playbooks")
            (playbooks / "video-call-degraded.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        store = Store(str(tmp_path / "db.sqlite"))
        stores.append(store)
        host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
        engine = Engine(store, VirtualClock(START), host, load([str(playbooks)]))
        incident = engine.open("video-call-degraded", "ana", incident="INC-TEST01").id
        return build_app(EngineService(engine), engine.catalog, "ana", incident, live=False), engine
    yield factory, flags
    for store in stores:
        store.close()


def panel(app) -> str:
    """The side panel's text (escalation, then degradations), unwrapped."""
    console = Console(width=300, file=io.StringIO(), record=True, color_system=None)
    console.print(app.screen.query_one(SidePanel).content)
    return flat(console.export_text())


def choices(app) -> list[str]:
    assert isinstance(app.screen, ChoiceDialog)
    return app.screen.choices


async def steer(pilot, digit: str, reason: str = "") -> None:
    """S, pick an action by its number, give the (optional) reason, Enter."""
    await press(pilot, "S", digit)
    assert isinstance(pilot.app.screen, TextPrompt)
    if reason:
        await pilot.press(*reason)
    await press(pilot, "enter")


def video_share(flags) -> list:
    return json.loads(flags.read_text())["flags"]["rtc.video.enabled"].get("targeting", {}).get("fractional")


def test_hold_then_advance_then_roll_back_with_the_keys(make):
    factory, flags = make
    app, engine = factory()
    engine.degrade("INC-TEST01", "ana", "audio-only")

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert "audio-only 10% OF USERS" in panel(app)
            await press(pilot, "S")
            assert choices(app) == [
                "hold at stage 1 (10%): no advancing by itself",
                "advance now to stage 2 (50% of users)",
                "restore fully (the next dialog says what it writes)"]
            await press(pilot, "escape")
            assert isinstance(app.screen, IncidentScreen)

            await steer(pilot, "1", "watching support tickets")             # hold
            assert "HELD" in panel(app)
            await press(pilot, "S")
            assert choices(app)[0] == "resume: let stage 1 (10%) advance by itself again"
            await press(pilot, "2")                                           # advance: says what it flips
            prompt = flat(screen_text(app).replace("█", " "))
            assert "Advance audio-only now to stage 2 (50% of users)?" in prompt
            # the engine's plan of the move, the one it then writes
            assert "This flips flags: rtc.video.enabled → false for 50% of users (stage 2 of 3) " \
                   "rtc.screen-share.enabled → false for 50% of users (stage 2 of 3)" in prompt
            await press(pilot, "enter")                                       # no reason: goes on all the same
            assert isinstance(app.screen, IncidentScreen)
            assert "audio-only 50% OF USERS" in panel(app) and "stage 2 of 3 (50%)" in panel(app)
            assert video_share(flags)[1] == ["off", 50]

            await press(pilot, "S")
            assert choices(app)[2] == "roll back to stage 1 (10% of users)"
            await pilot.press("3", *"one region complains")
            await settle(pilot)
            await press(pilot, "enter")
            assert "audio-only 10% OF USERS" in panel(app) and "stage 1 of 3 (10%)" in panel(app)
    asyncio.run(scenario())

    steered = [(e.record.action, e.record.stage, e.record.to, e.record.reason, e.actor)
               for e in engine.state("INC-TEST01").events if e.type == "stage_steered"]
    assert steered == [("hold", 0, None, "watching support tickets", "ana"), ("advance", 0, 1, "", "ana"),
                       ("rollback", 1, 0, "one region complains", "ana")]
    assert video_share(flags)[1] == ["off", 10]


def test_restore_fully_and_esc_on_the_reason_changes_nothing(make):
    factory, flags = make
    app, engine = factory()
    engine.degrade("INC-TEST01", "ana", "audio-only")

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "S", "3", "escape")                          # asked, then cancelled
            assert isinstance(app.screen, IncidentScreen)
            assert "stage_steered" not in [e.type for e in engine.state("INC-TEST01").events]
            await steer(pilot, "3", "not helping")                          # restore fully
            return panel(app)
    shown = asyncio.run(scenario())
    assert "○ audio-only off" in shown
    assert not engine.state("INC-TEST01").degradations["audio-only"].applied
    assert "targeting" not in json.loads(flags.read_text())["flags"]["rtc.video.enabled"]


def test_at_the_last_stage_there_is_no_advancing_or_holding(make):
    factory, _ = make
    app, engine = factory()
    engine.degrade("INC-TEST01", "ana", "audio-only")
    engine.stage("INC-TEST01", "ana", "audio-only", "advance")
    engine.stage("INC-TEST01", "ana", "audio-only", "advance")

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "S")
            return choices(app)
    assert asyncio.run(scenario()) == ["roll back to stage 2 (50% of users)",
                                       "restore in stages: one stage down after each hold",
                                       "restore fully (the next dialog says what it writes)"]


def test_with_no_staged_degradation_applied_it_says_so_and_how_to_start_one(make):
    factory, _ = make
    app, _engine = factory()

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            footer_before = "S Stage" in flat(screen_text(app))
            await press(pilot, "S")
            return footer_before, type(app.screen), [n.message for n in app._notifications]
    footer, screen, toasts = asyncio.run(scenario())
    assert screen is IncidentScreen and not footer  # the footer offers only keys that work now
    assert toasts == ["No staged degradation is applied: g (or `runbook incident degrade`) starts one "
                      "at its first stage."]


def test_with_several_staged_degradations_it_asks_which_first(make):
    factory, _ = make
    app, engine = factory(also_staged=True)
    engine.degrade("INC-TEST01", "ana", "audio-only")
    engine.degrade("INC-TEST01", "ana", "low-bitrate")

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "S")
            which = [label.split(":")[0] for label in choices(app)]
            await press(pilot, "1")
            offered = choices(app)
            await press(pilot, "1", "enter")                                # hold low-bitrate
            return which, offered
    which, offered = asyncio.run(scenario())
    assert which == ["low-bitrate", "audio-only"]
    assert offered[:2] == ["hold at stage 1 (25%): no advancing by itself",
                           "advance now to stage 2 (100% of users)"]
    state = engine.state("INC-TEST01")
    assert state.degradations["low-bitrate"].held and not state.degradations["audio-only"].held


def test_an_error_from_the_engine_is_a_notification(make):
    factory, _ = make
    app, engine = factory()
    engine.degrade("INC-TEST01", "ana", "audio-only")

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "S", "1")                                    # hold, but someone else is faster
            engine.stage("INC-TEST01", "bo", "audio-only", "hold")
            await press(pilot, "enter")
            return type(app.screen), [n.message for n in app._notifications]
    screen, toasts = asyncio.run(scenario())
    assert screen is IncidentScreen
    assert "audio-only is already held at stage 1" in toasts
