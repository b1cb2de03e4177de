"""The TUI's side of learning: the incident's first screen says when it has been seen before (and
when an action item from then is still open); `l` opens the learning screen, where the review
is written and action items added and closed, each into the log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pilot_helpers import press, settle, widget_text

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store
from runbook.tui.app import build_app

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def world(tmp_path, fixture_catalog):
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(START), host, load([str(fixture_catalog / "playbooks")]))
    old = engine.open("video-call-degraded", "ana", params={"region": "eu-west-1"}, incident="INC-OLD001").id
    engine.note(old, "ana", "SFU CPU saturated")
    engine.mitigate(old, "bo")
    engine.resolve(old, "ana")
    engine.add_action_item(old, "ana", "alert on SFU CPU", owner="bo")
    engine.clock.advance(days=41)
    new = engine.open("video-call-degraded", "cy", params={"region": "eu-west-1"}, incident="INC-NEW001").id
    yield engine, new, old
    store.close()


def toasts(app) -> list[tuple[str, str, str]]:
    return [(n.title, n.message, n.severity) for n in app._notifications]


def test_the_first_screen_says_seen_before_and_repeat(world):
    engine, new, old = world
    app = build_app(EngineService(engine), engine.catalog, "cy", new)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            return toasts(app)
    shown = asyncio.run(scenario())
    seen = [t for t in shown if t[0] == "Seen this before"]
    assert seen and old in seen[0][1] and "mitigated:" in seen[0][1] and "l: learn more" in seen[0][1]
    assert ("Repeat", f"repeat: action 'alert on SFU CPU' from {old} open 41 days", "warning") in shown


def test_no_toast_for_an_incident_never_seen_before(world):
    engine, _new, _old = world
    fresh = engine.open("login-outage", "cy").id
    app = build_app(EngineService(engine), engine.catalog, "cy", fresh)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            return toasts(app)
    assert not [t for t in asyncio.run(scenario()) if t[0] in ("Seen this before", "Repeat")]


def test_the_learning_screen_writes_the_review_and_adds_and_closes_action_items(world):
    from runbook.tui.screens.learning import LearningScreen

    engine, new, old = world
    app = build_app(EngineService(engine), engine.catalog, "cy", new)

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await press(pilot, "l")
            assert isinstance(app.screen, LearningScreen)
            body = widget_text(app.screen.query_one("#learning-body"))
            await press(pilot, "w", "3")  # the third section: Trigger
            await pilot.press(*"bad deploy")
            await press(pilot, "enter")
            await press(pilot, "i")
            await pilot.press(*"cap SFU CPU")
            await press(pilot, "enter")
            await press(pilot, "c", "1")
            await pilot.press(*"https://pr/1")
            await press(pilot, "enter")
            return body, widget_text(app.screen.query_one("#learning-body"))
    before, after = asyncio.run(scenario())
    assert f"{old}" in before and "alert on SFU CPU" in before and "Open elsewhere" in before
    assert "Trigger: not written" in before
    state = engine.state(new)
    assert [(e.record.section, e.record.text, e.actor) for e in state.events if e.type == "review_written"] == \
        [("trigger", "bad deploy", "cy")]
    items = [i for i in engine.action_items() if i.incident == new]
    assert [(i.text, i.open, i.evidence) for i in items] == [("cap SFU CPU", False, "https://pr/1")]
    assert "bad deploy" in after and f"{new}#1 cap SFU CPU" in after and "closed (https://pr/1)" in after
