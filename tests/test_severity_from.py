"""Severity from the alert and an escalation ladder per severity, on a virtual clock.

A playbook maps an alert label's values to severities (`severity_from`) and may give each
severity its own escalation policy (`escalation: {SEV1: critical, default: standard}`). The
ladder in force is the current severity's; a severity change that brings another ladder starts
it at level 1 from the change, while a change that keeps the same policy keeps its place.
Lowering the severity by hand needs a reason.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from runbook.catalog import load
from runbook.engine import CommandError, Engine, VirtualClock, timers
from runbook.engine.engine import ReasonNeeded
from runbook.engine.snapshot import Snapshot
from runbook.service import EngineService
from runbook.store import Store

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

POLICIES = """\
apiVersion: runbook/v1
kind: SeverityPolicy
id: sev
levels:
  - {id: SEV1, title: Critical, targets: {acknowledge: 5m}}
  - {id: SEV2, title: Major, targets: {acknowledge: 10m}}
  - {id: SEV3, title: Minor, targets: {acknowledge: 30m}}
  - {id: SEV4, title: Low, pages: false, targets: {acknowledge: 4h}}
---
apiVersion: runbook/v1
kind: EscalationPolicy
id: critical
levels:
  - notify: [{rotation: primary}]
    escalate_after: 5m
  - notify: [{person: boss}]
    escalate_after: 5m
---
apiVersion: runbook/v1
kind: EscalationPolicy
id: standard
levels:
  - notify: [{person: cat}]
    escalate_after: 15m
  - notify: [{person: dan}]
    escalate_after: 15m
---
apiVersion: runbook/v1
kind: Roster
id: team
timezone: UTC
people:
  - {id: ana, name: Ana}
  - {id: ben, name: Ben}
  - {id: boss, name: Bo Boss}
  - {id: cat, name: Cat}
  - {id: dan, name: Dan}
rotations:
  - {id: primary, members: [ana, ben], shift: 1d, start: "2026-01-05T00:00"}
"""

PLAYBOOKS = """\
apiVersion: runbook/v1
kind: Playbook
id: calls-down
title: Calls down
service: rtc
severity: SEV3
severity_from: {label: severity, map: {critical: SEV1, page: SEV1, warning: SEV3}}
escalation: {SEV1: critical, default: standard}
steps:
  - Look at the dashboard
  - {title: Fix it, mitigates: true}
---
apiVersion: runbook/v1
kind: Playbook
id: legacy
title: Written for the language before severity_from
service: rtc
severity: SEV2
escalation: standard
steps:
  - {title: Fix it, mitigates: true}
"""


@pytest.fixture
def world(tmp_path):
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "policies.yaml").write_text(POLICIES)
    (tmp_path / "catalog" / "playbooks.yaml").write_text(PLAYBOOKS)
    catalog = load([str(tmp_path / "catalog")])
    assert catalog.problems == []
    store = Store(str(tmp_path / "db.sqlite"))
    engine = Engine(store, VirtualClock(START), None, catalog)
    yield engine
    store.close()


def pages(events):
    """(minutes after 09:00, level, who) for every page among `events`."""
    return [(int((datetime.fromisoformat(e.data["due_at"]) - START).total_seconds() // 60), e.data["level"],
             ", ".join(r["name"] for r in e.data["recipients"])) for e in events if e.type == "escalated"]


# severity from the alert ---------------------------------------------------------------------

def test_a_label_maps_to_the_severity_and_the_opened_event_says_so(world):
    state = world.open("calls-down", "ana", labels={"severity": "critical", "region": "eu"})
    assert state.severity == "SEV1"
    assert state.severity_source == "from label severity=critical"
    assert state.events[0].data["severity_source"] == "from label severity=critical"


def test_an_explicit_severity_wins_over_the_label(world):
    state = world.open("calls-down", "ana", severity="SEV2", labels={"severity": "critical"})
    assert state.severity == "SEV2" and state.severity_source == "given at open"


def test_an_unknown_label_value_or_no_label_falls_back_to_the_playbook_severity(world):
    unknown = world.open("calls-down", "ana", labels={"severity": "info"})
    assert unknown.severity == "SEV3"
    assert unknown.severity_source == "playbook default; label severity=info is not mapped"
    absent = world.open("calls-down", "ana", labels={"alertname": "CallsDown"})
    assert absent.severity == "SEV3" and absent.severity_source == "playbook default; no severity label"
    plain = world.open("calls-down", "ana")
    assert plain.severity == "SEV3" and plain.severity_source is None


def test_labels_on_a_playbook_without_severity_from_change_nothing(world):
    state = world.open("legacy", "ana", labels={"severity": "critical"})
    assert state.severity == "SEV2" and state.severity_source is None


# an escalation ladder per severity -------------------------------------------------------------

def test_the_snapshot_carries_every_mapped_policy_and_old_snapshots_load(world):
    state = world.open("calls-down", "ana")
    stored = world.store.snapshot(state.id)
    assert [d["data"]["id"] for d in stored["documents"] if d["kind"] == "EscalationPolicy"] == [
        "standard", "critical"]
    loaded = Snapshot.load(stored)
    assert loaded.escalation("SEV1").id == "critical" and loaded.escalation("SEV3").id == "standard"
    legacy = world.store.snapshot(world.open("legacy", "ana").id)
    assert [d["data"]["id"] for d in legacy["documents"] if d["kind"] == "EscalationPolicy"] == ["standard"]
    assert Snapshot.load(legacy).escalation("SEV1").id == "standard"


def test_a_critical_alert_pages_the_critical_ladder_on_time(world):
    iid = world.open("calls-down", "ana", labels={"severity": "page"}).id
    fired = world.tick(iid)
    world.clock.advance(minutes=4)
    fired += world.tick(iid)
    world.clock.advance(minutes=1)
    fired += world.tick(iid)
    assert pages(fired) == [(0, 1, "Ana"), (5, 2, "Bo Boss")]
    assert [e.data["policy"] for e in fired if e.type == "escalated"] == ["critical", "critical"]
    assert timers.next_escalation(world.state(iid)) is None


def test_an_unmapped_alert_pages_the_default_ladder_on_time(world):
    iid = world.open("calls-down", "ana", labels={"severity": "info"}).id
    fired = world.tick(iid)
    world.clock.advance(minutes=14)
    fired += world.tick(iid)
    assert pages(fired) == [(0, 1, "Cat")]
    world.clock.advance(minutes=1)
    assert pages(world.tick(iid)) == [(15, 2, "Dan")]


def test_raising_to_a_severity_with_another_ladder_starts_it_at_level_one_from_the_change(world):
    iid = world.open("calls-down", "ana").id
    assert pages(world.tick(iid)) == [(0, 1, "Cat")]           # SEV3: the standard ladder
    world.clock.advance(minutes=10)
    world.severity(iid, "ana", "SEV1")                          # raising needs no reason
    assert pages(world.tick(iid)) == [(10, 1, "Ana")]           # the critical ladder, level 1, now
    nxt = timers.next_escalation(world.state(iid))
    assert (nxt.data["level"], nxt.at) == (2, START.replace(minute=15))  # not standard's level 2 at 09:15 (Dan)
    world.clock.advance(minutes=10)
    assert pages(world.tick(iid)) == [(15, 2, "Bo Boss")]
    state = world.state(iid)
    assert state.escalation.highest == 2 and state.escalation.count == 3


def test_a_change_that_keeps_the_policy_keeps_the_ladder_where_it_was(world):
    iid = world.open("calls-down", "ana").id
    world.tick(iid)                                             # Cat at 09:00
    world.clock.advance(minutes=5)
    world.severity(iid, "ana", "SEV2")                          # SEV2 also has the default ladder
    assert pages(world.tick(iid)) == []
    world.clock.advance(minutes=10)
    assert pages(world.tick(iid)) == [(15, 2, "Dan")]


def test_lowering_back_to_the_default_ladder_starts_it_again(world):
    iid = world.open("calls-down", "ana", labels={"severity": "critical"}).id
    world.tick(iid)                                             # Ana at 09:00
    world.clock.advance(minutes=2)
    world.severity(iid, "ana", "SEV3", reason="one customer only")
    assert pages(world.tick(iid)) == [(2, 1, "Cat")]
    state = world.state(iid)
    assert timers.ladder(state).id == "standard" and state.escalation.reached == 1


def test_a_rise_to_a_severity_with_another_ladder_pages_it_from_when_the_rise_fell_due(world, tmp_path):
    text = PLAYBOOKS.replace("steps:\n  - Look", "symptoms:\n  - {id: down, summary: Calls down, "
                                                 "severity_rises: [{after: 20m, to: SEV1}]}\nsteps:\n  - Look", 1)
    (tmp_path / "catalog" / "playbooks.yaml").write_text(text)
    world.catalog = load([str(tmp_path / "catalog")])
    iid = world.open("calls-down", "ana").id
    world.tick(iid)
    world.clock.advance(minutes=40)                            # a late tick: Dan at 15, the rise at 20, then SEV1
    fired = world.tick(iid)
    assert [e.type for e in fired if e.type in ("escalated", "severity_changed")] == [
        "escalated", "severity_changed", "escalated", "escalated"]
    assert pages(fired) == [(15, 2, "Dan"), (20, 1, "Ana"), (25, 2, "Bo Boss")]


def test_escalate_now_pages_the_next_level_of_the_ladder_in_force(world):
    iid = world.open("calls-down", "ana").id
    world.tick(iid)
    world.severity(iid, "ana", "SEV1")
    assert pages(world.escalate_now(iid, "ana")) == [(0, 1, "Ana")]
    assert pages(world.escalate_now(iid, "ana")) == [(0, 2, "Bo Boss")]


def test_a_playbook_with_one_policy_pages_and_records_as_before(world):
    iid = world.open("legacy", "ana").id
    fired = world.tick(iid)
    assert pages(fired) == [(0, 1, "Cat")]
    assert fired[0].data["policy"] is None                      # only named when a playbook has several
    world.clock.advance(minutes=5)
    world.severity(iid, "ana", "SEV1")
    world.clock.advance(minutes=10)
    assert pages(world.tick(iid)) == [(15, 2, "Dan")]           # one ladder: severity changes keep its place


# lowering by hand needs a reason -----------------------------------------------------------------

def test_lowering_without_a_reason_is_refused_and_with_one_recorded(world):
    iid = world.open("calls-down", "ana", labels={"severity": "critical"}).id
    with pytest.raises(ReasonNeeded, match=r"lowering the severity of .* from SEV1 to SEV3 needs a reason"):
        world.severity(iid, "ana", "SEV3")
    with pytest.raises(CommandError, match="needs a reason"):
        world.severity(iid, "ana", "SEV3", reason="   ")
    assert world.state(iid).severity == "SEV1"
    event = world.severity(iid, "ana", "SEV3", reason="only one customer")[0]
    assert (event.type, event.data["from"], event.data["to"], event.data["reason"]) == (
        "severity_changed", "SEV1", "SEV3", "only one customer")
    assert world.severity(iid, "ana", "SEV2")[0].data["reason"] == ""  # raising: no reason needed


# the CLI -------------------------------------------------------------------------------------------



def test_cli_opens_from_labels_shows_the_source_and_wants_a_reason_to_lower(rb):
    iid = rb("incident", "open", "video-call-degraded", "--label", "severity=critical",
             "--label", "region=eu-west-1").strip()
    shown = rb("incident", "show", iid)
    assert "SEV1 (from label severity=critical) · open" in shown
    assert "escalation level 1: " in shown and ", " in shown.split("escalation level 1: ")[1].splitlines()[0]
    refused = rb("incident", "severity", iid, "SEV3", expect=2)
    assert refused.strip().splitlines() == [
        f"runbook: error: lowering the severity of {iid} from SEV1 to SEV3 needs a reason: add --reason TEXT"]
    assert "severity SEV1 → SEV3 (fewer users than thought)" in rb(
        "incident", "severity", iid, "SEV3", "--reason", "fewer users than thought")
    assert "severity SEV3 → SEV2" in rb("incident", "severity", iid, "SEV2")


def test_cli_explicit_severity_wins_and_a_bad_label_is_a_usage_error(rb):
    iid = rb("incident", "open", "video-call-degraded", "--severity", "SEV3", "--label",
             "severity=critical").strip()
    assert "SEV3 (given at open)" in rb("incident", "show", iid)
    bad = rb("incident", "open", "video-call-degraded", "--label", "critical", expect=2)
    assert "--label 'critical' is not KEY=VALUE" in bad


# the TUI ---------------------------------------------------------------------------------------------

def test_tui_asks_why_when_lowering_and_not_when_raising(tmp_path, fixture_catalog):
    from runbook.tui.app import build_app
    from runbook.tui.dialogs.choice import ChoiceDialog
    from runbook.tui.dialogs.prompt import TextPrompt
    from runbook.tui.screens.incident import IncidentScreen

    store = Store(str(tmp_path / "db.sqlite"))
    engine = Engine(store, VirtualClock(START), None, load([str(fixture_catalog / "playbooks")]))
    iid = engine.open("video-call-degraded", "ana", incident="INC-TEST01").id
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def settle(pilot):
        for _ in range(5):
            await pilot.pause()
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    async def scenario():
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, IncidentScreen)
            await pilot.press("v")                              # SEV2 → choose among SEV1, SEV3, SEV4
            await settle(pilot)
            assert isinstance(app.screen, ChoiceDialog)
            await pilot.press("2")                              # SEV3: lowering asks why
            await settle(pilot)
            assert isinstance(app.screen, TextPrompt)
            await pilot.press("escape")                         # cancelled: nothing changes
            await settle(pilot)
            assert engine.state(iid).severity == "SEV2"
            await pilot.press("v", "2")
            await settle(pilot)
            await pilot.press(*"one region only", "enter")
            await settle(pilot)
            assert isinstance(app.screen, IncidentScreen)
            await pilot.press("v", "1")                         # now SEV3 → SEV1: raising asks nothing
            await settle(pilot)
            assert isinstance(app.screen, IncidentScreen)
    try:
        asyncio.run(scenario())
        changes = [(e.data["from"], e.data["to"], e.data["reason"]) for e in engine.state(iid).events
                   if e.type == "severity_changed"]
        assert changes == [("SEV2", "SEV3", "one region only"), ("SEV3", "SEV1", "")]
    finally:
        store.close()
