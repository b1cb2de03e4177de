"""Many machines: on PostgreSQL the TUI learns of another responder's append through LISTEN/NOTIFY,
not only from its refresh timer. Here the timer is off (the app is not live), so a note written
by another connection can only reach the open incident screen through the notification."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from pilot_helpers import settle

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.service import EngineService
from runbook.store import open_store
from runbook.tui.app import build_app

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def shows(app) -> bool:
    """Whether the incident screen's view (what it renders) holds the note."""
    return any("written on another machine" in line.text for line in app.screen.view.timeline)


def test_another_machines_note_reaches_the_open_screen_through_notify(pg_cluster, fixture_catalog):
    url = pg_cluster.new_schema()
    catalog = load([str(fixture_catalog / "playbooks")])
    mine, theirs = open_store(url), open_store(url)
    try:
        engine = Engine(mine, VirtualClock(START), None, catalog)
        incident = engine.open("video-call-degraded", "ana", incident="INC-PGLIVE").id
        elsewhere = Engine(theirs, VirtualClock(START), None, catalog)
        app = build_app(EngineService(engine), catalog, "ana", incident, live=False)

        async def scenario():
            async with app.run_test(size=(120, 40)) as pilot:
                await settle(pilot)
                assert app.gateway.service.broadcaster.subscribers() == 1  # the screen subscribed
                assert app.gateway.service.broadcaster.listening.wait(10)
                assert not shows(app)
                elsewhere.note(incident, "bo", "written on another machine")
                end = time.monotonic() + 10  # a generous bound for a real server; the benchmark times it
                while not shows(app):
                    assert time.monotonic() < end, "the note never reached the screen"
                    await pilot.pause(0.05)
        asyncio.run(scenario())
    finally:
        mine.close()
        theirs.close()
