"""Time built-ins ({now}, {opened_at}, {duration}) and {elapsed}, which stops at resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import open_store

CATALOG = Path(__file__).parent / "lang_catalog"


@pytest.fixture
def world(tmp_path):
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    clock = VirtualClock()
    yield Engine(store, clock, host, load([str(CATALOG)])), clock
    store.close()


def posted(events):
    return [e.data["text"] for e in events if e.type == "message_posted"]


def test_a_message_says_when_it_started_and_how_long_so_far(world):
    engine, clock = world
    iid = engine.open("status-times", "ana").id
    clock.advance(minutes=12, seconds=30)
    assert posted(engine.complete(iid, "ana", "update")) == [
        "Investigating since 2026-01-05 09:00 UTC (12m30s so far), as of 2026-01-05 09:12 UTC"]


def test_elapsed_and_duration_stop_at_resolve(world):
    engine, clock = world
    iid = engine.open("status-times", "ana").id
    engine.complete(iid, "ana", "update")
    clock.advance(hours=1, minutes=5)
    engine.resolve(iid, "ana")
    clock.advance(days=2)  # the all-clear goes out two days later: it still says how long it lasted
    assert posted(engine.complete(iid, "ana", "all-clear")) == ["Resolved: calls failed for 1h5m (elapsed 1h5m)"]


def test_an_approval_is_not_made_stale_by_time_alone():
    from runbook.catalog.templates import BUILTINS
    from runbook.engine import texts

    assert {"now", "duration", "elapsed"} <= set(texts.TIMED) and set(texts.TIMED) <= set(BUILTINS)


def test_show_fills_the_time_built_ins(rb):
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "status-times").strip()
    shown = rb("incident", "show", iid)  # a real clock: a second may pass between open and show
    assert re.search(r"Investigating since \d{4}-\d\d-\d\d \d\d:\d\d UTC \(\d+s so far\), as of \d{4}-", shown)
