"""Roles held by several people (many: true), and step roles the playbook enforces."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.errors import NotFoundError
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import open_store

CATALOG = Path(__file__).parent / "lang_catalog"


@pytest.fixture
def engine(tmp_path):
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(), host, load([str(CATALOG)]))
    store.close()


def test_a_role_held_by_several_gathers_its_holders(engine):
    iid = engine.open("db-failover", "ana").id
    events = engine.assign(iid, "ana", "sme", "bo") + engine.assign(iid, "ana", "sme", "cy")
    assert [e.record.describe() for e in events if e.type == "role_assigned"] == ["bo joined sme", "cy joined sme"]
    state = engine.state(iid)
    assert (state.members["sme"], state.holders["sme"]) == (["bo", "cy"], "bo, cy")
    with pytest.raises(CommandError, match="cy already holds sme"):
        engine.assign(iid, "ana", "sme", "cy")
    completed = engine.complete(iid, "ana", "gather")
    assert completed[0].data["step"] == "gather"


def test_any_holder_of_a_shared_role_approves_as_themself(engine):
    iid = engine.open("db-failover", "ana").id
    engine.assign(iid, "ana", "sme", "bo")
    engine.assign(iid, "ana", "sme", "cy")
    engine.complete(iid, "ana", "gather")
    granted = [e for e in engine.approve(iid, "cy", "failover") if e.type == "approval_granted"]
    assert granted[0].data["holder"] == "cy" and not granted[0].data.get("override")


def test_an_enforced_role_s_step_is_worked_only_by_its_holder(engine):
    iid = engine.open("db-failover", "ana").id
    engine.assign(iid, "ana", "sme", "bo")
    engine.complete(iid, "ana", "gather")
    engine.approve(iid, "bo", "failover")
    with pytest.raises(CommandError, match=r"step 'failover' is the dba's \(held by nobody yet\), not ana's: the "
                                           r"playbook enforces it; take the role with `runbook incident assign "):
        engine.complete(iid, "ana", "failover")
    with pytest.raises(CommandError, match="not ana's"):
        engine.skip(iid, "ana", "failover", "no time")
    engine.assign(iid, "ana", "dba", "dee")
    with pytest.raises(CommandError, match=r"held by dee\), not ana's"):
        engine.complete(iid, "ana", "failover")
    engine.complete(iid, "dee", "failover")
    assert engine.state(iid).mitigated_at is not None


def test_an_older_role_assigned_event_reads_as_before():
    from runbook.engine.events import decode

    record = decode("role_assigned", {"role": "r", "person": "p"})
    assert record.describe() == "r assigned to p" and "joined" not in record.to_data()


def test_cli_assign_adds_and_show_lists_the_holders(rb):
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "db-failover").strip()
    rb("incident", "assign", iid, "sme", "bo")
    assert "cy joined sme" in rb("incident", "assign", iid, "sme", "cy")
    assert "Bring in the experts: bo, cy" in rb("incident", "show", iid)
    rb("incident", "step", iid, "--done")
    refused = rb("incident", "step", iid, "--done", "--as", "ana", expect=5)
    assert refused.count("\n") == 1 and "the playbook enforces it" in refused


def test_simulated_responders_take_an_enforced_role_to_work_its_steps(tmp_path):
    from runbook.drills.simulate import simulate

    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    (tmp_path / "roles.yaml").write_text((CATALOG / "roles.yaml").read_text())
    (tmp_path / "drill.yaml").write_text("""\
apiVersion: runbook/v1
kind: Drill
id: failover-drill
title: Fail the database over
playbook: db-failover
responders:
  levels: [{answer: 1.0, ack: {distribution: fixed, mean: 1m}}]
  steps: {default: {distribution: fixed, mean: 2m}}
""")
    catalog = load([str(tmp_path)])
    summary = simulate(catalog, catalog.models("Drill")["failover-drill"], runs=2, seed=1)
    assert summary["ttm"]["median"] == 60 + 2 * 120  # gather, then the DBA's failover


def test_a_holder_leaves_a_role_held_by_several_and_the_others_hold_it_on(engine):
    iid = engine.open("db-failover", "ana").id
    engine.assign(iid, "ana", "sme", "bo")
    engine.assign(iid, "ana", "sme", "cy")
    [left] = engine.leave(iid, "bo", "sme")  # the actor leaves
    assert (left.type, left.data, left.record.describe()) == ("role_left", {"role": "sme", "person": "bo"},
                                                              "bo left sme")
    state = engine.state(iid)
    assert (state.members["sme"], state.holders["sme"]) == (["cy"], "cy")
    with pytest.raises(CommandError, match=r"bo does not hold sme \(held by cy\)"):
        engine.leave(iid, "bo", "sme")
    engine.complete(iid, "ana", "gather")
    with pytest.raises(CommandError, match="held by cy, not bo"):  # approving is a holder's again
        engine.approve(iid, "bo", "failover")
    engine.leave(iid, "ana", "sme", "cy")  # someone leaves on another's behalf: named
    state = engine.state(iid)
    assert "sme" not in state.holders and state.members["sme"] == []
    engine.assign(iid, "ana", "sme", "bo")  # and may join again
    assert engine.state(iid).holders["sme"] == "bo"


def test_a_single_holder_role_is_handed_over_not_left(engine):
    iid = engine.open("db-failover", "ana").id
    engine.assign(iid, "ana", "commander", "ana")
    with pytest.raises(CommandError, match=r"commander has one holder: hand it over instead "
                                           r"\(`runbook incident assign INC-\w+ commander PERSON`\)"):
        engine.leave(iid, "ana", "commander")
    with pytest.raises(NotFoundError, match="has no role 'smee'; did you mean 'sme'"):
        engine.leave(iid, "ana", "smee")
    assert engine.state(iid).holders == {"commander": "ana"}


def test_cli_leave_a_shared_role(rb):
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "db-failover").strip()
    rb("incident", "assign", iid, "sme", "ana")
    rb("incident", "assign", iid, "sme", "bo")
    assert "ana left sme" in rb("incident", "leave", iid, "sme")  # the actor (ana) by default
    assert "bo left sme" in rb("incident", "leave", iid, "sme", "bo")
    assert "sme: (nobody)" in rb("incident", "show", iid)
    err = rb("incident", "leave", iid, "commander", expect=5)
    assert "commander has one holder: hand it over instead" in err


def test_cli_an_unknown_role_is_not_found_in_every_role_command(rb):
    """Exit 3 like an unknown step, with the playbook's roles and a did-you-mean."""
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "db-failover").strip()
    for command in (("assign", iid, "smee", "bo"), ("leave", iid, "smee")):
        err = rb("incident", *command, expect=3)
        assert "has no role 'smee'; did you mean 'sme'" in err and "roles: " in err


def test_tui_leave_a_shared_role_from_the_assign_key(engine):
    import asyncio

    from pilot_helpers import press, settle

    from runbook.service import EngineService
    from runbook.tui.app import build_app
    from runbook.tui.dialogs.choice import ChoiceDialog

    iid = engine.open("db-failover", "ana").id
    engine.assign(iid, "ana", "sme", "ana")
    engine.assign(iid, "ana", "sme", "bo")
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            await press(pilot, "o")
            await press(pilot, "2")  # Subject-matter experts (sme): ana, bo
            assert isinstance(app.screen, ChoiceDialog)
            await press(pilot, "2")  # leave it
            await settle(pilot)

    asyncio.run(scenario())
    state = engine.state(iid)
    assert state.members["sme"] == ["bo"]
    assert [(e.actor, e.data) for e in state.events if e.type == "role_left"] == [
        ("ana", {"role": "sme", "person": "ana"})]
