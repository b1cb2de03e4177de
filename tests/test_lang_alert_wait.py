"""A wait on the incident's own alert (alert: resolved), and "no data" as a Prometheus wait's own
outcome (on_no_data:), instead of "check broken" after the alert's series went away."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.metric_checks import Series
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import open_store

CATALOG = Path(__file__).parent / "lang_catalog"


class Prometheus:
    """A stand-in query source: the series it answers with (none: no data)."""

    def __init__(self):
        self.series = [Series({}, 3.0)]

    def query(self, promql, at=None, timeout=None):
        return list(self.series)


@pytest.fixture
def world(tmp_path):
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    clock = VirtualClock()
    engine = Engine(store, clock, host, load([str(CATALOG)]))
    engine.metrics_source = Prometheus()
    yield engine, clock
    store.close()


def done(events):
    return [(e.data["step"], e.data["outcome"]) for e in events if e.type == "step_completed"]


def test_the_wait_holds_when_the_alert_resolves(world):
    engine, clock = world
    iid = engine.open("turn-drain", "ana").id
    engine.complete(iid, "ana", "step-1")
    assert engine.state(iid).current["main"] == "cleared"
    clock.advance(minutes=5)
    assert engine.tick(iid) == [] or "step_completed" not in [e.type for e in engine.tick(iid)]
    events = engine.alert_resolved(iid, "alertmanager", "TurnOverloaded")
    assert [e.type for e in events][:2] == ["alert_state_changed", "step_completed"]
    assert done(events) == [("cleared", "the alert resolved at its source")]
    assert engine.state(iid).current["main"] == "gone"


def test_an_alert_already_resolved_completes_the_wait_when_it_starts(world):
    engine, _ = world
    iid = engine.open("turn-drain", "ana").id
    engine.alert_resolved(iid, "alertmanager")
    assert done(engine.complete(iid, "ana", "step-1")) == [("step-1", ""),
                                                           ("cleared", "the alert had already resolved")]


def test_the_alert_wait_times_out_to_its_on_timeout_step(world):
    engine, clock = world
    iid = engine.open("turn-drain", "ana").id
    engine.complete(iid, "ana", "step-1")
    clock.advance(minutes=15)
    failed = [e for e in engine.tick(iid) if e.type == "step_failed"]
    assert [(e.data["step"], e.data.get("timeout")) for e in failed] == [("cleared", True)]
    assert engine.state(iid).current["main"] == "escalate"


def test_no_data_is_its_own_outcome_and_means_what_the_wait_says(world):
    engine, clock = world
    iid = engine.open("turn-drain", "ana").id
    engine.complete(iid, "ana", "step-1")
    engine.alert_resolved(iid, "alertmanager")
    clock.advance(seconds=30)
    polls = [e for e in engine.tick(iid) if e.type == "check_polled"]
    assert [(e.data["outcome"], e.data["ok"]) for e in polls] == [("not-yet", False)]
    engine.metrics_source.series = []  # the alert resolved: its series is gone
    clock.advance(seconds=30)
    events = engine.tick(iid)
    polls = [e for e in events if e.type == "check_polled"]
    assert [(e.data["outcome"], e.data["ok"]) for e in polls] == [("no-data", True)]
    assert polls[0].record.describe() == "poll 2 of gone: no data, holds — no data for the query"
    assert engine.state(iid).current["main"] == "step-4"


def test_without_on_no_data_no_data_is_a_broken_check_as_before(tmp_path, world):
    engine, clock = world
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    (tmp_path / "c" / "alert-wait.yaml").write_text((CATALOG / "alert-wait.yaml").read_text().replace(
        "    on_no_data: holds\n", ""))
    engine.catalog = load([str(tmp_path / "c")])
    iid = engine.open("turn-drain", "ana").id
    engine.complete(iid, "ana", "step-1")
    engine.alert_resolved(iid, "alertmanager")
    engine.metrics_source.series = []
    clock.advance(seconds=30)
    polls = [e for e in engine.tick(iid) if e.type == "check_polled"]
    assert [(e.data["outcome"], e.data["ok"]) for e in polls] == [("broken", False)]


@pytest.mark.parametrize(("old", "new", "path", "message"), [
    ("    alert: resolved\n", "    alert: resolved\n    run: [\"true\"]\n", "steps[1].run",
     "alert: waits on the incident's own alert, but this wait also has run:; a wait waits on one thing"),
    ("    alert: resolved\n", "    alert: resolved\n    every: 1m\n", "steps[1].every",
     "every: applies to a wait that polls; alert: resolved polls nothing (only timeout: and on_timeout: apply)"),
    ("    alert: resolved\n", "    alert: resolved\n    on_no_data: holds\n", "steps[1].on_no_data",
     "on_no_data: says what a prometheus: query with no series means, but this wait has no prometheus:"),
])
def test_lint_names_what_is_wrong(tmp_path, old, new, path, message):
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    (tmp_path / "alert-wait.yaml").write_text((CATALOG / "alert-wait.yaml").read_text().replace(old, new))
    assert [(p.path, p.message) for p in load_catalog([str(tmp_path)]).errors] == [(path, message)]


def test_cli_the_alert_command_ends_the_wait_and_show_says_what_it_waits_for(rb):
    rb.catalogs = [CATALOG]
    assert "waits until the incident's alert resolves" in rb("show", "turn-drain")
    iid = rb("incident", "open", "turn-drain").strip()
    rb("incident", "step", iid, "--done")
    out = rb("incident", "alert", iid, "resolved")
    assert "step cleared done: the alert resolved at its source" in out
