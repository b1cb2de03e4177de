"""The TUI with waits and restarts: a timed wait coming due is announced, and R restarts a track
from a step already reached (asking why). Pilot on the engine's virtual clock."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from pilot_helpers import press, settle

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store
from runbook.tui.app import build_app
from runbook.tui.dialogs.choice import ChoiceDialog
from runbook.tui.dialogs.prompt import TextPrompt

HERE = Path(__file__).parent


@pytest.fixture
def make(tmp_path):
    check, deploy = tmp_path / "check", tmp_path / "deploy"
    check.write_text("0")
    deploy.write_text("0")
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    (catalog_dir / "policies.yaml").write_text((HERE / "waits_catalog" / "policies.yaml").read_text())
    text = (HERE / "waits_catalog" / "waits-pb.yaml").read_text()
    (catalog_dir / "pb.yaml").write_text(text.replace("PYTHON", sys.executable).replace("CHECK", str(check))
                                         .replace("DEPLOY", str(deploy)))
    stores = []
    clock = VirtualClock()

    def factory():
        store = Store(str(tmp_path / "db.sqlite"))
        stores.append(store)
        host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
        engine = Engine(store, clock, host, load([str(catalog_dir)]))
        iid = engine.open("media-stuck", "ana", incident="INC-WAIT01").id
        engine.acknowledge(iid, "ana")
        engine.complete(iid, "ana", "look")
        clock.advance(seconds=10)
        engine.tick(iid)  # the queue check holds: on to the timed wait
        assert engine.state(iid).current["main"] == "later"
        return build_app(EngineService(engine), engine.catalog, "ana", iid), engine, iid
    factory.clock = clock
    yield factory
    for store in stores:
        store.close()


def test_a_timed_wait_coming_due_is_announced(make):
    app, engine, iid = make()

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            make.clock.advance(minutes=10)
            app.screen.tick()  # what the live screen does every second
            await settle(pilot)
            app.screen.refresh_view()
            await settle(pilot)
            messages = [n.message for n in app._notifications]
            await press(pilot, "d")  # the responder looked again: done
            return messages
    messages = asyncio.run(scenario())
    assert "step “Look again in 10 minutes” is due: the wait is over, look again" in messages
    assert engine.state(iid).current["main"] == "deploy"


def test_R_restarts_the_track_from_a_step_already_reached(make):
    app, engine, iid = make()

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "R")
            assert isinstance(app.screen, ChoiceDialog)
            await press(pilot, "2")  # look, drained, later: the queue check
            assert isinstance(app.screen, TextPrompt)
            await pilot.press(*"queue filled again")
            await press(pilot, "enter")
            return app.screen.view.current[0].id
    current = asyncio.run(scenario())
    state = engine.state(iid)
    assert current == "drained" and state.current["main"] == "drained" and state.steps["drained"].attempt == 2
    restarted = [e for e in state.events if e.type == "step_restarted"]
    assert [(e.actor, e.data["reason"]) for e in restarted] == [("ana", "queue filled again")]
