"""The TUI with roles and a follow-up phase: assigning a role from the incident screen (o), an
approval by someone who does not hold the role asking for an override, a step waiting for
another track, and a resolved incident showing its follow-up phase."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pilot_helpers import flat, press, screen_text, settle

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

CATALOG = Path(__file__).parent / "followup_catalog"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def world(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(START), host, load([str(CATALOG)]))
    incident = engine.open("calls-followup", "ana", incident="INC-FOLLOW").id
    yield engine, incident, build_app(EngineService(engine), engine.catalog, "ana", incident)
    store.close()


def test_assign_a_role_approve_with_override_and_see_the_followup_phase(world):
    engine, incident, app = world

    async def scenario():
        async with app.run_test(size=(130, 44)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, IncidentScreen)
            await press(pilot, "o")  # assign a role: which one, then who
            assert isinstance(app.screen, ChoiceDialog)
            await press(pilot, "1")
            assert isinstance(app.screen, TextPrompt)
            await pilot.press(*"bo")
            await press(pilot, "enter")
            assert engine.state(incident).holders == {"commander": "bo"}
            assert "commander: bo" in flat(screen_text(app))
            await press(pilot, "tab")  # the liaison's track: its step waits for the commander's
            assert "WAITING for declare" in flat(screen_text(app))
            await press(pilot, "d")
            assert engine.state(incident).steps["post-status"].status == "active"
            await press(pilot, "tab")
            await press(pilot, "d")  # declare (main track)
            await press(pilot, "p")  # the gate is the commander's, held by bo: an override, said why
            assert isinstance(app.screen, TextPrompt)
            await pilot.press(*"bo unreachable")
            await press(pilot, "enter")
            approval = [e for e in engine.state(incident).events if e.type == "approval_granted"][-1]
            assert approval.data["override"] == "bo unreachable" and approval.data["holder"] == "bo"
            engine.resolve(incident, "ana")
            app.screen.refresh_view()
            await settle(pilot)
            text = flat(screen_text(app))
            assert "RESOLVED after" in text and "· FOLLOW-UP" in text
            assert "Follow-up (commander) —" in text  # the track heading, wrapped rather than cut
            assert "Write the postmortem" in text
            await press(pilot, "d")  # the current step is now the follow-up's
            assert engine.state(incident).steps["postmortem"].status == "done"

    asyncio.run(scenario())
