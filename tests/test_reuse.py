"""Reuse: a procedure included into playbooks (expanded at load, returning after the include), a
handoff to another playbook (a linked incident, both naming each other), and fewer forced
inventions (severity target defaults, no escalation for a playbook that never pages, a lint
warning silenced per step with a reason). Through the engine and the headless CLI."""

from __future__ import annotations

import json
import shutil
from datetime import UTC
from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.service import EngineService
from runbook.store import Store

CATALOG = Path(__file__).parent / "reuse_catalog"


@pytest.fixture
def catalog_dir(tmp_path):
    target = tmp_path / "catalog"
    shutil.copytree(CATALOG, target)
    return target


@pytest.fixture
def engine(catalog_dir, tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    yield Engine(store, VirtualClock(), None, load([str(catalog_dir)]))
    store.close()


def test_the_shared_catalog_is_valid_without_warnings():
    catalog = load_catalog([str(CATALOG)])
    assert [p.format() for p in catalog.problems] == []


def test_an_include_runs_the_procedure_then_returns_after_it(engine):
    state = engine.open("calls-dropping", "ana")
    pb = state.playbook
    assert [s.id for s in pb.steps][:5] == ["step-1", "connectivity-checks.ping", "connectivity-checks.reachable",
                                             "connectivity-checks.traceroute", "suspicious"]
    engine.complete(state.id, "ana")
    assert engine.state(state.id).current["main"] == "connectivity-checks.ping"
    engine.complete(state.id, "ana")
    engine.choose(state.id, "ana", "Yes")  # next: end in the procedure: back to the playbook
    assert engine.state(state.id).current["main"] == "suspicious"
    engine.choose(state.id, "ana", "No")
    engine.complete(state.id, "ana")  # fix
    assert engine.state(state.id).current["main"] == "recheck.ping"  # the same procedure again, prefixed
    engine.complete(state.id, "ana")
    engine.choose(state.id, "ana", "No")
    engine.complete(state.id, "ana")  # the procedure's last step returns: here, to the end of the playbook
    assert engine.state(state.id).current["main"] is None


def test_the_last_step_of_a_procedure_returns_to_the_step_after_the_include(engine):
    iid = engine.open("calls-dropping", "ana").id
    engine.complete(iid, "ana")
    engine.complete(iid, "ana")
    engine.choose(iid, "ana", "No")
    engine.complete(iid, "ana", "connectivity-checks.traceroute")
    assert engine.state(iid).current["main"] == "suspicious"


def test_a_running_incident_keeps_the_procedure_it_opened_with(catalog_dir, tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    first = Engine(store, VirtualClock(), None, load([str(catalog_dir)]))
    iid = first.open("calls-dropping", "ana").id
    procedures = catalog_dir / "procedures.yaml"
    procedures.write_text(procedures.read_text().replace("id: ping", "id: ping-twice"))
    later = Engine(store, VirtualClock(), None, load([str(catalog_dir)]))
    assert "connectivity-checks.ping" in [s.id for s in later.state(iid).playbook.steps]
    assert "connectivity-checks.ping-twice" in [s.id for s in later.open("calls-dropping", "ana").playbook.steps]
    assert later.integrity(iid).ok
    store.close()


def test_a_handoff_opens_a_linked_incident_and_both_name_each_other(engine):
    iid = engine.open("calls-dropping", "ana", params={"region": "us-east-1"}).id
    engine.complete(iid, "ana")
    engine.complete(iid, "ana")
    engine.choose(iid, "ana", "Yes")
    engine.choose(iid, "ana", "Yes")  # looks like an attack
    events = engine.complete(iid, "ana")
    handed = next(e for e in events if e.type == "handed_off")
    new = handed.data["incident"]
    assert handed.data == {"step": "to-security", "playbook": "security-incident", "incident": new}
    first, second = engine.state(iid), engine.state(new)
    assert first.handoffs == [("to-security", "security-incident", new)]
    assert first.steps["to-security"].status == "done" and first.current["main"] is None
    assert first.resolved_by_handoff == new
    assert second.from_incident == iid and second.playbook.id == "security-incident"
    assert second.parameters == {"region": "us-east-1"}  # the parameters the other playbook declares
    opened = second.events[0]
    assert opened.type == "opened" and opened.data["from_incident"] == iid


def to_handoff(engine, **open_args) -> str:
    iid = engine.open("calls-dropping", "ana", **open_args).id
    engine.complete(iid, "ana")
    engine.complete(iid, "ana")
    engine.choose(iid, "ana", "Yes")
    engine.choose(iid, "ana", "Yes")  # looks like an attack: the handoff step is current
    return iid


@pytest.fixture
def flagged(catalog_dir, tmp_path):
    """An engine with the flag file backend, so a handoff restores what its incident degraded."""
    from runbook.plugins import PluginHost
    from runbook.settings import Settings

    store = Store(str(tmp_path / "flagged.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(), host, load([str(catalog_dir)]))
    store.close()


def test_a_handoff_resolves_its_incident_there_and_pages_the_new_one_at_once(flagged, tmp_path):
    engine = flagged
    iid = to_handoff(engine)
    engine.degrade(iid, "ana", "shed-load")
    assert "rtc.edge.shed-suspicious" in (tmp_path / "flags.json").read_text()
    engine.clock.advance(minutes=12)
    events = engine.complete(iid, "ana")
    assert [e.type for e in events] == ["handed_off", "step_completed", "track_finished", "degradation_started",
                                        "flag_changed", "degradation_restored", "resolved"]
    new = events[0].data["incident"]
    assert events[-1].data == {"kept_degradations": [], "handed_off_to": new}
    assert events[-1].record.describe() == f"resolved by handoff to {new}"
    first = engine.state(iid)
    assert first.resolved and first.resolved_by_handoff == new and first.status == "resolved"
    assert not first.degradations["shed-load"].touched  # restored, as a resolve would
    assert "rtc.edge.shed-suspicious" not in (tmp_path / "flags.json").read_text()  # back to how it was: unset
    from runbook.engine.metrics import metrics

    assert metrics(first).ttr == 12 * 60  # its time to resolve ends at the handoff
    second = engine.state(new)
    assert second.escalation.paged == 1 and not second.resolved  # paged now, not at its first tick
    assert [e.type for e in second.events][-2:] == ["escalated", "notified"]


def test_a_handoff_that_cannot_restore_says_it_handed_off_and_what_is_left(flagged, tmp_path):
    engine = flagged
    iid = to_handoff(engine)
    engine.degrade(iid, "ana", "shed-load")
    (tmp_path / "flags.json").unlink()
    (tmp_path / "flags.json").mkdir()  # the flag file cannot be written: the restore fails
    with pytest.raises(Exception, match=r"^handed off to INC-\w+, but INC-\w+ is not resolved: could not restore "
                                        "shed-load"):
        engine.complete(iid, "ana")
    first = engine.state(iid)
    assert first.handoffs and not first.resolved and first.current["main"] is None


def test_a_handoff_to_a_playbook_no_longer_in_the_catalog_records_nothing(engine, catalog_dir):
    iid = engine.open("calls-dropping", "ana").id
    for _ in range(2):
        engine.complete(iid, "ana")
    engine.choose(iid, "ana", "Yes")
    engine.choose(iid, "ana", "Yes")
    engine.catalog.documents = [d for d in engine.catalog.documents if d.id != "security-incident"]
    with pytest.raises(Exception, match="no playbook 'security-incident'"):
        engine.complete(iid, "ana")
    assert engine.state(iid).current["main"] == "to-security"
    assert engine.list() and len(engine.list()) == 1


def test_severity_defaults_fill_targets_and_a_quiet_playbook_needs_no_escalation(engine):
    catalog = engine.catalog
    assert catalog.severity_level("SEV4").targets == {"acknowledge": 3600, "resolve": 3 * 86400}
    assert catalog.severity_level("MAINT").targets == {"resolve": 4 * 3600}
    state = engine.open("planned-maintenance", "ana")
    assert state.playbook.escalation is None
    assert engine.tick(state.id) == []  # nothing pages, nothing fails
    with pytest.raises(CommandError, match="no escalation policy"):
        engine.escalate_now(state.id, "ana")


@pytest.fixture
def rb(rb, catalog_dir, tmp_path):
    rb.env["RUNBOOK_CATALOG"], rb.cwd = str(catalog_dir), tmp_path
    return rb


def test_include_and_handoff_with_the_cli_alone(rb):
    shown = rb("show", "calls-dropping")
    assert "#connectivity-checks.ping  (from procedure connectivity-checks)" in shown
    assert "(hands off to playbook security-incident)" in shown
    assert "Connectivity checks  (Procedure connectivity-checks)" in rb("show", "connectivity-checks")
    iid = rb("incident", "open", "calls-dropping").strip()
    rb("incident", "step", iid, "--done")
    rb("incident", "step", iid, "connectivity-checks.ping", "--done")
    rb("incident", "choose", iid, "Yes")
    rb("incident", "choose", iid, "Yes")
    out = rb("incident", "step", iid, "--done")
    assert "handed off to INC-" in out
    shown = json.loads(rb("incident", "show", iid, "--json"))
    new = shown["handed_off_to"][0]["incident"]
    assert f"resolved by handoff to {new}" in out
    assert shown["status"] == "resolved" and shown["resolved_by_handoff"] == new
    assert shown["metrics"]["ttr"] is not None
    text = rb("incident", "show", iid)
    assert f"handed off to {new} (playbook security-incident, step to-security); resolved by it at " in text
    assert "Every step it came to was done" in text
    assert f"(by handoff to {new})" in rb("incident", "export", iid, "--format", "md")
    assert f"handed off from {iid}" in rb("incident", "show", new)
    assert "escalation level 1" in rb("incident", "show", new)  # paged at once, as `incident open` pages
    assert json.loads(rb("incident", "show", new, "--json"))["from_incident"] == iid
    assert "planned-maintenance" in rb("list")
    assert "none: no severity this playbook runs at pages" in rb("show", "planned-maintenance")
    assert rb("validate", "--strict").startswith("valid")


def test_the_tui_offers_to_open_the_incident_a_handoff_opened(catalog_dir, tmp_path):
    import asyncio
    from datetime import datetime

    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.tui.app import build_app
    from runbook.tui.dialogs.confirm import ConfirmDialog
    from runbook.tui.screens.incident import IncidentScreen

    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)), host,
                    load([str(catalog_dir)]))
    iid = engine.open("calls-dropping", "ana", incident="INC-HAND01").id
    for _ in range(2):
        engine.complete(iid, "ana")
    engine.choose(iid, "ana", "Yes")
    engine.choose(iid, "ana", "Yes")  # the handoff step is current
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def settle(pilot):
        for _ in range(5):
            await pilot.pause()
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("d")
            await settle(pilot)
            assert isinstance(app.screen, ConfirmDialog)  # hand off? opens a linked incident, resolves this one
            said = " ".join(str(w.render()) for w in app.screen.query("Static, Label"))
            assert "pages it now, and resolves this one" in said and "No degradation is applied" in said
            await pilot.press("y")
            await settle(pilot)
            assert isinstance(app.screen, ConfirmDialog)  # open the new one now?
            await pilot.press("y")
            await settle(pilot)
            assert isinstance(app.screen, IncidentScreen) and app.screen.incident != iid
            return app.screen.incident
    opened = asyncio.run(scenario())
    assert engine.state(iid).handoffs == [("to-security", "security-incident", opened)]
    assert engine.state(iid).resolved_by_handoff == opened
    assert engine.state(opened).from_incident == iid
    store.close()


def test_procedure_steps_are_the_playbook_steps():
    from runbook.catalog import kinds

    assert kinds.schema("Procedure")["$defs"] == kinds.schema("Playbook")["$defs"]


def test_playbooks_written_before_keep_their_model(fixture_catalog):
    catalog = load_catalog([str(fixture_catalog / "playbooks")])
    assert catalog.errors == []
    for doc in catalog.of_kind("Playbook"):
        assert doc.authored is None and doc.expanded is None


def test_a_handoffs_approval_covers_the_values_it_carries(catalog_dir, tmp_path):
    """A gated handoff carries the incident's parameters to the new incident: a value changed
    after the approval makes it stale, like a command's."""
    text = (catalog_dir / "playbooks.yaml").read_text()
    text = text.replace("symptoms:\n  - {id: drops,", "roles:\n  lead: {title: Lead}\nsymptoms:\n  - {id: drops,", 1)
    text = text.replace("    playbook: security-incident\n    next: end\n",
                        "    playbook: security-incident\n    approval: {by: lead}\n    next: end\n", 1)
    (catalog_dir / "playbooks.yaml").write_text(text)
    store = Store(str(tmp_path / "gated.sqlite"))
    engine = Engine(store, VirtualClock(), None, load([str(catalog_dir)]))
    try:
        iid = engine.open("calls-dropping", "ana", params={"region": "us-east-1"}).id
        engine.complete(iid, "ana")
        engine.complete(iid, "ana")
        engine.choose(iid, "ana", "Yes")
        engine.choose(iid, "ana", "Yes")
        [granted] = engine.approve(iid, "ana", "to-security")
        assert granted.data["content"]["carries"] == {"region": "us-east-1"}
        engine.set_parameter(iid, "mallory", "region", "ap-south-1")
        with pytest.raises(CommandError, match=r"approval was for carries .*us-east-1.*ap-south-1"):
            engine.complete(iid, "ana")
        assert not engine.state(iid).handoffs
    finally:
        store.close()
