"""The follow-up phase after resolve, and roles with holders: through the engine on a virtual
clock, and through the headless CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.drills.report import build as build_report
from runbook.engine import CommandError, Engine, VirtualClock, approvals
from runbook.engine.metrics import export_markdown, metrics
from runbook.engine.texts import text
from runbook.errors import NotFoundError
from runbook.store import Store

HERE = Path(__file__).parent
CATALOG = HERE / "followup_catalog"


@pytest.fixture
def engine(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    clock = VirtualClock()
    yield Engine(store, clock, None, load([str(CATALOG)]))
    store.close()


def types(events):
    return [e.type for e in events]


def opened(engine):
    state = engine.open("calls-followup", "ana")
    return state.id


# follow-up -----------------------------------------------------------------------------------

def test_followup_starts_at_resolve_and_closes_the_incident_when_done(engine):
    iid = opened(engine)
    assert engine.state(iid).current == {"main": "declare", "comms": "post-status", "followup": None}
    with pytest.raises(CommandError, match="'postmortem' is a follow-up step; it becomes current when the incident"):
        engine.complete(iid, "ana", "postmortem")
    engine.clock.advance(minutes=10)
    fired = engine.resolve(iid, "ana")
    assert types(fired) == ["resolved", "step_started"]
    state = engine.state(iid)
    assert (state.status, state.phase, state.current_steps()) == ("resolved", "follow-up", ["postmortem"])
    assert engine.list()[0]["status"] == "follow-up"
    with pytest.raises(CommandError, match="follow-up phase; only follow-up steps"):
        engine.complete(iid, "ana", "declare")
    with pytest.raises(CommandError, match="follow-up phase"):
        engine.mitigate(iid, "ana")
    engine.clock.advance(hours=20)
    engine.complete(iid, "ana")  # the current step is the follow-up's
    assert engine.state(iid).status == "resolved"
    with pytest.raises(CommandError, match=r"step 'customer-followup' not posted: \{liaison\} has no value: nobody "
                                           r"holds the role liaison; assign it with `runbook incident assign"):
        engine.complete(iid, "bo", "customer-followup")  # its message names the liaison
    engine.assign(iid, "ana", "liaison", "liz")
    done = engine.complete(iid, "bo", "customer-followup")
    assert types(done) == ["message_posted", "step_completed", "track_finished", "closed"]
    assert done[0].record.text == "Sorry about Calls are down. Contact liz."
    assert done[0].record.phase == "follow-up"
    state = engine.state(iid)
    assert (state.status, state.phase) == ("closed", "closed")
    assert engine.list()[0]["status"] == "closed"
    assert engine.list(open_only=True) == []
    # time-to-resolve is measured at resolve; the follow-up phase is not part of it
    assert metrics(state).ttr == 600
    with pytest.raises(CommandError, match="is closed; only notes and action items"):
        engine.assign(iid, "ana", "commander", "bo")
    engine.note(iid, "ana", "postmortem reviewed")
    engine.add_action_item(iid, "ana", "page earlier", "bo")


def test_close_by_hand_needs_a_reason_when_followup_steps_are_left(engine):
    iid = opened(engine)
    with pytest.raises(CommandError, match="is not resolved yet; resolve it first"):
        engine.close_incident(iid, "ana")
    engine.resolve(iid, "ana")
    with pytest.raises(CommandError, match="with follow-up step postmortem not done needs a reason"):
        engine.close_incident(iid, "ana")
    closed = engine.close_incident(iid, "ana", "postmortem held in the weekly review")
    assert closed[0].record.describe() == "closed with postmortem not done (postmortem held in the weekly review)"
    assert closed[0].record.open_steps == ["postmortem"]
    with pytest.raises(CommandError, match="was already closed"):
        engine.close_incident(iid, "ana", "again")


def test_playbook_without_followup_resolves_for_good_as_before(engine, tmp_path):
    catalog = tmp_path / "cat"
    shutil.copytree(CATALOG, catalog)
    pb = catalog / "followup-pb.yaml"
    pb.write_text(pb.read_text().split("followup:\n  role")[0])
    engine.catalog = load([str(catalog)])
    iid = engine.open("calls-followup", "ana").id
    assert types(engine.resolve(iid, "ana")) == ["resolved"]
    state = engine.state(iid)
    assert (state.status, state.phase) == ("resolved", "resolved")
    assert engine.list()[0]["status"] == "resolved"
    with pytest.raises(CommandError, match="is resolved; only notes can be added"):
        engine.complete(iid, "ana")
    with pytest.raises(CommandError, match="has no follow-up phase; resolving it was final"):
        engine.close_incident(iid, "ana", "x")


def test_export_shows_the_followup_phase_and_report_keeps_it_out_of_ttr(engine):
    iid = opened(engine)
    engine.clock.advance(minutes=5)
    engine.resolve(iid, "ana")
    engine.clock.advance(hours=2)
    engine.complete(iid, "ana", "postmortem", "doc linked")
    engine.clock.advance(hours=1)
    engine.assign(iid, "ana", "liaison", "liz")
    engine.complete(iid, "ana", "customer-followup")
    md = export_markdown(engine.state(iid))
    assert "- Status: closed" in md
    assert "## Follow-up" in md
    assert "| postmortem | done | 2h | doc linked |" in md
    assert "Follow-up took 3h (not part of time to resolve)" in md
    report = build_report(engine)
    assert report.metrics["TTR"]["max"] == 300
    assert report.metrics["Follow-up"]["max"] == 3 * 3600
    assert "postmortem" not in report.steps


# roles ----------------------------------------------------------------------------------------

def test_assign_and_hand_over_a_role(engine):
    iid = opened(engine)
    first = engine.assign(iid, "ana", "commander", "ana")
    assert first[0].record.previous is None and first[0].record.describe() == "commander assigned to ana"
    handoff = engine.assign(iid, "ana", "commander", "bo")
    assert handoff[0].record.describe() == "commander handed over: ana → bo"
    assert engine.state(iid).holders == {"commander": "bo"}
    with pytest.raises(CommandError, match="bo already holds commander"):
        engine.assign(iid, "ana", "commander", "bo")
    with pytest.raises(NotFoundError, match="no role 'comander'; did you mean 'commander'"):
        engine.assign(iid, "ana", "comander", "bo")


def test_approval_is_checked_against_the_holder_with_a_logged_override(engine):
    iid = opened(engine)
    engine.complete(iid, "ana", "declare")
    engine.assign(iid, "ana", "commander", "bo")
    with pytest.raises(CommandError, match="approved by the commander, held by bo, not ana; ask bo, or approve "
                                           "with --override REASON"):
        engine.approve(iid, "ana", "fallback")
    granted = engine.approve(iid, "ana", "fallback", override="bo unreachable, calls failing")
    content = {"title": "Switch the region to the backup SFU pool", "prompt": "Approve, bo?"}
    assert granted[0].data == {"step": "fallback", "role": "commander", "holder": "bo",
                               "override": "bo unreachable, calls failing", "content": content,
                               "digest": approvals.digest(content)}
    assert "OVERRIDING commander bo" in granted[0].record.describe()
    engine.complete(iid, "ana", "fallback")


def test_holder_approves_and_nobody_holding_lets_anyone_approve_saying_so(engine):
    iid = opened(engine)
    engine.complete(iid, "ana", "declare")
    granted = engine.approve(iid, "cy", "fallback")
    assert granted[0].data["holder"] == "" and "no holder" in granted[0].record.describe()
    other = opened(engine)
    engine.complete(other, "ana", "declare")
    engine.assign(other, "ana", "commander", "bo")
    assert engine.approve(other, "bo", "fallback")[0].data["override"] == ""


def test_holders_fill_templates(engine):
    iid = opened(engine)
    state = engine.state(iid)
    step = state.playbook.step("post-status")
    # nobody holds it yet: ‹commander›, in a playbook without parameters: too (never the raw field)
    assert text(state, step.template, step) == "Investigating. Incident commander: ‹commander›."
    engine.assign(iid, "ana", "commander", "bo")
    assert text(engine.state(iid), step.template, step) == "Investigating. Incident commander: bo."


def test_a_step_waits_for_a_step_in_another_track(engine):
    iid = opened(engine)
    with pytest.raises(CommandError,
                       match=r"step 'post-status' waits for step 'declare' \(track main\) to be done first"):
        engine.complete(iid, "liz", "post-status")
    engine.skip(iid, "liz", "post-status", "posted by support")  # skipping is not completing: allowed
    other = opened(engine)
    engine.complete(other, "ana", "declare")
    engine.assign(other, "ana", "commander", "bo")  # the status names the commander
    assert types(engine.complete(other, "liz", "post-status")) == ["message_posted", "step_completed",
                                                                    "track_finished"]


# CLI --------------------------------------------------------------------------------------------

def test_cli_assign_approve_override_wait_for_and_followup(rb, tmp_path):
    rb.catalogs, rb.env["RUNBOOK_PLUGINS_DIR"] = [CATALOG], str(tmp_path)
    iid = rb("incident", "open", "calls-followup", "--as", "ana").strip()
    assert "commander assigned to bo" in rb("incident", "assign", iid, "commander", "bo", "--as", "ana")
    waiting = rb("incident", "step", iid, "post-status", "--done", "--as", "liz", expect=5)
    assert "waits for step 'declare' (track main)" in waiting
    shown = rb("incident", "show", iid)
    assert "commander: bo" in shown and "waiting for declare" in shown
    rb("incident", "step", iid, "declare", "--done", "--as", "ana")
    refused = rb.run("incident", "approve", iid, "fallback", "--as", "ana", expect=5)
    assert "held by bo, not ana" in refused.stderr
    assert len((refused.stdout + refused.stderr).strip().splitlines()) == 1
    rb("incident", "approve", iid, "fallback", "--as", "ana", "--override", "bo asleep")
    rb("incident", "resolve", iid, "--as", "ana")
    shown = rb("incident", "show", iid)
    assert "follow-up" in shown.lower() and "postmortem" in shown
    listed = rb("incident", "list")
    assert iid in listed and "follow-up" in listed
    rb("incident", "close", iid, "--as", "ana", "--reason", "done elsewhere")
    open_part = rb("incident", "list").split("24 hours")[0]  # closed ones show under "resolved in the last 24 hours"
    assert iid not in open_part
    listed = rb("incident", "list", "--all")
    assert iid in listed and "closed" in listed
    assert json.loads(rb("incident", "show", iid, "--json"))["status"] == "closed"
