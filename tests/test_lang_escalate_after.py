"""`escalate_after` may be left out: a level then waits the policy's `defaults: escalate_after`, else 5m,
and the incident's snapshot records the delay it runs on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import open_store

CATALOG = Path(__file__).parent / "lang_catalog"


@pytest.fixture
def engines(tmp_path):
    """engines() -> an engine on one store and clock, as a new process would build it."""
    stores, clock = [], VirtualClock()

    def make():
        stores.append(open_store(str(tmp_path / "db.sqlite")))
        host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
        return Engine(stores[-1], clock, host, load([str(CATALOG)]))

    make.clock = clock
    yield make
    for store in stores:
        store.close()


@pytest.fixture
def engine(engines):
    return engines(), engines.clock


def escalations(engine, iid):
    return [(e.data["level"], e.data["round"], e.data["due_at"][11:16])
            for e in engine.tick(iid) if e.type == "escalated"]


def test_a_level_without_a_delay_waits_the_built_in_five_minutes(engine):
    engine, clock = engine
    iid = engine.open("ack-timeouts", "ana").id
    assert escalations(engine, iid) == [(1, 0, "09:00")]
    clock.advance(minutes=4)
    assert escalations(engine, iid) == []
    clock.advance(minutes=1)
    assert escalations(engine, iid) == [(2, 0, "09:05")]


def test_the_policy_default_applies_where_a_level_does_not_say(engine):
    engine, clock = engine
    iid = engine.open("ack-timeouts", "ana", severity="SEV1").id
    engine.tick(iid)
    clock.advance(minutes=2)
    assert escalations(engine, iid) == [(2, 0, "09:02")]


def test_the_snapshot_records_the_default_it_runs_on(engines, monkeypatch):
    iid = engines().open("ack-timeouts", "ana").id
    # a later release with another built-in default does not move this incident's timers
    monkeypatch.setattr("runbook.catalog.models.DEFAULT_ESCALATE_AFTER", "1h")
    later = engines()
    assert [lv.escalate_after for lv in later.state(iid).snapshot.escalations["plain"].levels] == [300, 300]
    later.tick(iid)
    engines.clock.advance(minutes=5)
    assert escalations(later, iid) == [(2, 0, "09:05")]


def test_a_zero_default_is_an_error_naming_where(tmp_path):
    (tmp_path / "p.yaml").write_text((CATALOG / "policies.yaml").read_text().replace(
        "defaults: {escalate_after: 2m}", "defaults: {escalate_after: 0s}"))
    problems = load_catalog([str(tmp_path)]).errors
    assert [(p.path, p.message) for p in problems] == [
        ("defaults.escalate_after", "escalation delay must be longer than 0s, expected a duration like 5m")]


def test_show_says_which_delays_are_defaults(rb):
    rb.catalogs = [CATALOG]
    out = rb("show", "quick")
    assert "next level after 2m (default) without an ack" in out
    assert "next level after 10m without an ack" in out
    assert "next level after 5m (default) without an ack" in rb("show", "plain")


def test_the_published_schema_no_longer_requires_it(rb):
    rb.catalogs = [CATALOG]
    schema = json.loads(rb("schema", "EscalationPolicy"))
    assert schema["$defs"]["level"]["required"] == ["notify"]
    assert rb("validate").startswith("valid: 0 errors, 0 warnings")
