"""The step panel at 80x24 says what a command's output must say (expect:) and, after a run,
what was found; and what a wait on the incident's own alert waits for (the alert, where it is
now) and what "no data" means to a Prometheus wait. Snapshots (pytest-textual-snapshot)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pilot_helpers import settle

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import open_store
from runbook.tui.app import build_app
from runbook.views import build_view

CATALOG = Path(__file__).parent / "lang_catalog"


@pytest.fixture
def engine(tmp_path):
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, load([str(CATALOG)]))
    yield engine
    engine.close()
    store.close()


async def _ready(pilot):
    await settle(pilot)


def current(engine, iid):
    return build_view(engine.state(iid), engine.clock.now()).current[0]


def test_expect_before_the_run_and_what_was_found_after(engine, snap_compare):
    iid = engine.open("sidecar-check", "ana", incident="INC-EXPECT").id
    step = current(engine, iid)
    assert (step.expects, step.found) == ("output matches ^Up ", "")
    engine.run(iid, "ana", "sidecar-up")
    step = current(engine, iid)
    assert step.found == "expected output matches ^Up , got 'Exited (1) 2 minutes ago'"
    engine.tick(iid)  # the first page goes out now, not while the screen is taken
    assert snap_compare(build_app(EngineService(engine), engine.catalog, "ana", iid), terminal_size=(80, 24),
                        run_before=_ready)


def test_a_finding_is_said_with_what_is_expected(engine):
    iid = engine.open("sidecar-check", "ana").id
    engine.skip(iid, "ana", "sidecar-up", "later")
    assert current(engine, iid).expects == "output matches broken link; exit 1 is a finding"


def test_an_alert_wait_says_what_it_waits_for(engine, snap_compare):
    iid = engine.open("turn-drain", "ana", incident="INC-ALERTW", labels={"alertname": "TurnOverloaded"}).id
    engine.complete(iid, "ana")
    assert current(engine, iid).waits_for == "alert TurnOverloaded to be resolved (now firing)"
    engine.tick(iid)  # the first page goes out now, not while the screen is taken
    assert snap_compare(build_app(EngineService(engine), engine.catalog, "ana", iid), terminal_size=(80, 24),
                        run_before=_ready)


def test_a_prometheus_wait_says_what_no_data_means(engine):
    iid = engine.open("turn-drain", "ana").id
    engine.complete(iid, "ana")
    engine.skip(iid, "ana", "cleared", "looked by hand")
    assert current(engine, iid).waits_for == "no data counts as holds"
