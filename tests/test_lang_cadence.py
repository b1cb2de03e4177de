"""Posts repeated on a cadence: a communicate step with repeat: {every, until} posts again `every`
after its last post (derived from the log), filled with the values of that moment, until `until`
holds and never after resolve; a post that needs a person is recorded as due and shown, never
skipped."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.engine import CommandError, Engine, VirtualClock, cadence
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import open_store

CATALOG = Path(__file__).parent / "lang_catalog"


@pytest.fixture
def clock():
    return VirtualClock()


@pytest.fixture
def engine(tmp_path, clock):
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, clock, host, load([str(CATALOG)]))
    store.close()


def opened(engine, *posting) -> str:
    """An incident of checkout-outage with the comms lead and two scribes, its steps `posting` done."""
    iid = engine.open("checkout-outage", "ana", params={"impact": "EU"}).id
    for role, person in (("comms", "ana"), ("scribes", "ana"), ("scribes", "ben")):
        engine.assign(iid, "ana", role, person)
    if "status" in posting:
        engine.approve(iid, "ana", "status")
    for step in ("status", "support", "written", "execs"):
        if step in posting:
            engine.complete(iid, "ana", step, message="Checkout is slow." if step == "written" else None)
        else:
            engine.skip(iid, "ana", step, "not in this test")
    return iid


def posts(engine, iid, step) -> list[tuple[int, str]]:
    return [(e.record.repeat, e.record.text) for e in engine.state(iid).messages if e.record.step == step]


def test_the_next_post_is_due_every_after_the_last_and_filled_then(engine, clock):
    iid = opened(engine, "status")
    clock.advance(minutes=29)
    assert not [e for e in engine.tick(iid) if e.type == "message_posted"]
    clock.advance(minutes=1)
    engine.tick(iid)
    clock.advance(minutes=30)
    engine.tick(iid)
    assert posts(engine, iid, "status") == [
        (0, "Checkout is failing (SEV2) for some customers; we are working on it (0s so far)."),
        (1, "Checkout is failing (SEV2) for some customers; we are working on it (30m so far)."),
        (2, "Checkout is failing (SEV2) for some customers; we are working on it (1h so far).")]
    posted = engine.state(iid).messages[-1]
    assert (posted.actor, posted.data["repeat"], posted.data["status"]) == ("runbook", 2, "investigating")


def test_a_late_tick_posts_once_and_counts_from_that_post(engine, clock):
    iid = opened(engine, "status")
    clock.advance(hours=2, minutes=5)
    assert [e.data["repeat"] for e in engine.tick(iid) if e.type == "message_posted"] == [1]
    state = engine.state(iid)
    assert cadence.next_at(state, state.playbook.step("status")) == clock.now() + timedelta(minutes=30)


def test_timers_come_from_the_log_after_a_restart(engine, clock, tmp_path):
    iid = opened(engine, "status")
    clock.advance(minutes=31)
    engine.tick(iid)
    again = Engine(engine.store, clock, engine.plugins, engine.catalog)
    state = again.state(iid)
    assert cadence.next_at(state, state.playbook.step("status")) == clock.now() + timedelta(minutes=30)


def test_it_stops_when_until_holds_and_always_at_resolve(engine, clock):
    iid = opened(engine, "support", "execs")
    engine.complete(iid, "ana")  # roll back: mitigates; support repeats until mitigated
    clock.advance(minutes=20)
    engine.tick(iid)
    assert posts(engine, iid, "support") == [(0, "Checkout incident ongoing for 0s.")]
    assert [n for n, _ in posts(engine, iid, "execs")] == [0, 1]  # until: {param: impact, equals: none}
    engine.set_parameter(iid, "ana", "impact", "none")
    clock.advance(minutes=20)
    assert not engine.tick(iid)
    state = engine.state(iid)
    with pytest.raises(CommandError, match=r"not posted: step 'execs' repeats until parameter impact equals none, "
                                           r"which holds now"):
        engine.post(iid, "ana", "execs")
    engine.resolve(iid, "ana")
    clock.advance(hours=3)
    assert not [e for e in engine.tick(iid) if e.type in ("message_posted", "post_due")]
    assert cadence.status(engine.state(iid), state.playbook.step("execs"), clock.now()) == "repeats stopped at resolve"


def test_a_written_update_is_due_for_a_person_and_posted_by_hand(engine, clock):
    iid = opened(engine, "written")
    clock.advance(hours=1)
    due = [e for e in engine.tick(iid) if e.type == "post_due"]
    assert [(e.data["step"], e.data["repeat"], e.data["reason"]) for e in due] == [
        ("written", 1, "it is written when posted (compose: true)")]
    clock.advance(hours=3)
    assert not [e for e in engine.tick(iid) if e.type == "post_due"]  # due once, shown until posted
    state = engine.state(iid)
    assert cadence.status(state, state.playbook.step("written"), clock.now()) == \
        "UPDATE DUE since 10:00 (repeat 1): it is written when posted (compose: true)"
    with pytest.raises(CommandError, match=r"posts what you write: give the message, e\.g\. `runbook incident post "):
        engine.post(iid, "ana", "written")
    engine.post(iid, "ana", "written", message=" Checkout works again for most. ")
    assert posts(engine, iid, "written")[-1] == (1, "Checkout works again for most.")
    state = engine.state(iid)
    assert not cadence.due(state) and state.messages[-1].data["written"] is True
    assert cadence.next_at(state, state.playbook.step("written")) == clock.now() + timedelta(hours=1)


def test_a_missing_value_makes_the_update_due_saying_which(engine, clock):
    iid = opened(engine, "execs")
    engine.leave(iid, "ana", "scribes")
    engine.leave(iid, "ben", "scribes")
    clock.advance(minutes=20)
    due = [e for e in engine.tick(iid) if e.type == "post_due"]
    assert due[0].data["reason"] == (f"{{scribes}} has no value: nobody holds the role scribes; assign it with "
                                     f"`runbook incident assign {iid} scribes PERSON`")
    engine.assign(iid, "ana", "scribes", "cy")
    engine.post(iid, "ana", "execs")
    assert posts(engine, iid, "execs")[-1] == (1, "Impact so far: EU. Written by cy.")


def test_a_stale_approval_makes_the_update_due_until_approved_again(engine, clock):
    iid = opened(engine, "status")
    engine.severity(iid, "ana", "SEV1", "worse")  # the status update names the severity: its approval is stale
    clock.advance(minutes=30)
    due = [e for e in engine.tick(iid) if e.type == "post_due"]
    assert due[0].data["reason"].startswith("approval was for message \"") and "(SEV1)" in due[0].data["reason"]
    with pytest.raises(CommandError, match=r"approve again \(runbook incident approve .* status\)"):
        engine.post(iid, "ana", "status")
    engine.approve(iid, "ana", "status")  # not the current step: its cadence runs, so it can be approved again
    engine.post(iid, "ana", "status")
    assert posts(engine, iid, "status")[-1][1].startswith("Checkout is failing (SEV1)")


def test_the_numbering_goes_on_through_a_restart_of_the_step(engine, clock):
    """The step's own post after a restart is its next number, and its cadence counts from it."""
    iid = opened(engine, "status")
    clock.advance(minutes=30)
    engine.tick(iid)
    engine.restart(iid, "ana", "status", "the first update named the wrong region")
    clock.advance(minutes=10)
    engine.approve(iid, "ana", "status")  # a new attempt is approved anew
    engine.complete(iid, "ana", "status")
    assert [n for n, _ in posts(engine, iid, "status")] == [0, 1, 2]
    assert "by step status (repeat 2):" in engine.state(iid).messages[-1].record.describe()
    clock.advance(minutes=29)
    assert not [e for e in engine.tick(iid) if e.type == "message_posted"]
    clock.advance(minutes=1)
    assert [e.data["repeat"] for e in engine.tick(iid) if e.type == "message_posted"] == [3]


def test_post_by_hand_is_refused_for_steps_that_do_not_repeat_or_have_not_posted(engine):
    iid = opened(engine)
    with pytest.raises(CommandError, match="step 'status' has not posted yet; its repeats start after its first post"):
        engine.post(iid, "ana", "status")
    with pytest.raises(CommandError, match=r"step 'step-5' does not repeat \(no repeat: in the playbook\)"):
        engine.post(iid, "ana", "step-5")


def test_lint_checks_every_until_and_where_repeat_goes(tmp_path):
    policies = (CATALOG / "policies.yaml").read_text()
    (tmp_path / "policies.yaml").write_text(policies)
    (tmp_path / "bad.yaml").write_text("""apiVersion: runbook/v1
kind: Playbook
id: bad-cadence
title: Bad cadence
service: s
severity: SEV2
escalation: plain
parameters: {}
symptoms: [{id: x, summary: x}]
steps:
  - {id: a, kind: communicate, title: A, template: a, repeat: {every: 20s}}
  - {id: b, kind: communicate, title: B, template: b, repeat: {every: 2d}}
  - {id: c, kind: communicate, title: C, template: c, repeat: {every: 5m, until: {param: nope, equals: x}}}
  - {id: d, kind: communicate, title: D, template: d, repeat: {every: 5m, until: {equals: x}}}
  - {id: e, kind: communicate, title: E, template: e, repeat: {every: 5m, until: closed}}
  - {id: f, title: F, repeat: {every: 5m}}
followup:
  steps:
    - {id: g, kind: communicate, title: G, template: g, repeat: {every: 5m}}
""")
    errors = [(p.path, p.message) for p in load_catalog([str(tmp_path)]).errors]
    assert errors == [
        ("steps[0].repeat.every", "posting every 20s floods the channel; repeat at most every 1m (an update every 15m "
                                 "to 1h is usual)"),
        ("steps[1].repeat.every", "every 2d is longer than a day; an incident's updates repeat within hours (at most "
                                 "24h)"),
        ("steps[2].repeat.until.param", "parameter 'nope' does not exist, known parameters (under parameters:, or "
                                       "captured): none are defined"),
        ("steps[3].repeat.until", "repeat: until: needs what it tests: param: NAME, label: NAME, severity: LEVELS or "
                                 "symptom: IDS"),
        ("steps[4].repeat.until", "'closed' is not valid under any of the given schemas, expected mitigated, resolved, "
                                 "or a condition like {param: state, equals: stable}"),
        ("steps[5]", "a step with repeat needs a kind, expected kind: communicate (a step without kind is a check)"),
        ("followup.steps[0].repeat", "a follow-up step cannot repeat: posts on a cadence stop at resolve, before "
                                    "follow-up steps run"),
    ]


def test_cli_ticks_posts_and_shows_each_repeat_as_posted(rb, tmp_path):
    rb.catalogs = [CATALOG]
    # the incident began 40 minutes ago (the engine on a clock set then, on the CLI's database)
    store = open_store(str(rb.db))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(datetime.now(UTC) - timedelta(minutes=40)), host, load([str(CATALOG)]))
    iid = opened(engine, "status", "written")
    store.close()
    out = rb("incident", "tick", iid)
    # filled as it is posted: 40 minutes and the seconds the commands took since
    assert re.search(r"\(repeat 1\): Checkout is failing \(SEV2\) for some customers; we are working on it "
                     r"\(40m(\d+s)? so far\)\.", out), out
    shown = rb("incident", "show", iid)
    assert "posted to status-page · customers (step status, response, repeat 1):" in shown
    assert "updates on a cadence:" in shown and "status: next update at" in shown
    out = rb("incident", "post", iid, "written", "--message", "Fixed for most customers.")
    assert "message posted to twitter · customers by step written (repeat 1): Fixed for most customers." in out
    data = json.loads(rb("incident", "show", iid, "--json"))
    assert [(m["step"], m["repeat"]) for m in data["messages"] if m["posted"]] == [
        ("status", 0), ("written", 0), ("status", 1), ("written", 1)]
    assert {c["step"]: c["due"] for c in data["cadence"]} == {"status": None, "written": None}
    assert "(response, announced as investigating, repeat 1):" in rb("incident", "export", iid)
    err = rb("incident", "post", iid, "support", expect=5)
    assert err.strip().endswith("not posted: step 'support' has not posted yet; its repeats start after its first "
                                "post")


def test_tui_shows_the_next_post_and_an_update_due_and_posts_it(engine, clock):
    from pilot_helpers import flat, press, screen_text, settle, widget_text
    from textual.widgets import Input

    from runbook.service import EngineService
    from runbook.tui.app import build_app
    from runbook.tui.dialogs.prompt import TextPrompt

    iid = opened(engine, "status", "written")
    clock.advance(hours=1)
    engine.tick(iid)
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            before = flat(screen_text(app))
            panel = flat(widget_text(app.screen.query_one("#current-title")))
            await press(pilot, "P")  # the update due: written when posted, the last post offered
            assert isinstance(app.screen, TextPrompt)
            field = app.screen.query_one("#prompt-input", Input)
            assert field.value == "Checkout is slow."
            field.value = "Checkout is back for most customers."
            await press(pilot, "enter")
            await settle(pilot)
            return before, panel, flat(screen_text(app))

    before, panel, after = asyncio.run(scenario())
    assert "UPDATE DUE: written (P posts)" in before  # the header
    assert "written: UPDATE DUE since 10:00 (repeat 1): it is written when posted (compose: true) — P posts it" \
        in panel  # the step panel
    assert "status: next update at 10:30 (every 30m)" in panel
    assert posts(engine, iid, "written")[-1] == (1, "Checkout is back for most customers.")
    assert "UPDATE DUE" not in after and "update written at 11:00" in after


def test_tui_offers_the_last_post_as_the_field_holds_it_and_posts_that(engine, clock):
    """A last post holding control and bidi characters (written through the CLI) is offered with them
    removed, not escaped (an escape would be posted as a backslash and letters); what is posted is
    what the field held."""
    from pilot_helpers import press, settle
    from textual.widgets import Input

    from runbook.service import EngineService
    from runbook.tui.app import build_app
    from runbook.tui.dialogs.prompt import TextPrompt

    iid = engine.open("checkout-outage", "ana", params={"impact": "EU"}).id
    for role, person in (("comms", "ana"), ("scribes", "ana")):
        engine.assign(iid, "ana", role, person)
    engine.approve(iid, "ana", "status")
    for step in ("status", "support", "written", "execs"):
        if step == "written":
            engine.complete(iid, "ana", step, message="Checkout\x1b[2J is\tslow\x07.\u202e\nMore soon.")
        else:
            engine.skip(iid, "ana", step, "not in this test")
    clock.advance(hours=1)
    engine.tick(iid)
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "P")
            assert isinstance(app.screen, TextPrompt)
            held = app.screen.query_one("#prompt-input", Input).value
            await press(pilot, "enter")  # posted unchanged
            await settle(pilot)
            return held

    held = asyncio.run(scenario())
    assert held == "Checkout[2J is slow. More soon."
    assert posts(engine, iid, "written")[-1] == (1, held)


def test_tui_approves_a_stale_update_again_then_posts_it(engine, clock):
    from pilot_helpers import press, settle

    from runbook.service import EngineService
    from runbook.tui.app import build_app
    from runbook.tui.dialogs.confirm import ConfirmDialog

    iid = opened(engine, "status")
    engine.severity(iid, "ana", "SEV1", "worse")
    clock.advance(minutes=30)
    engine.tick(iid)
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "P")
            assert isinstance(app.screen, ConfirmDialog)
            await press(pilot, "y")
            await settle(pilot)

    asyncio.run(scenario())
    state = engine.state(iid)
    assert posts(engine, iid, "status")[-1][0] == 1 and "(SEV1)" in posts(engine, iid, "status")[-1][1]
    assert [e.type for e in state.events[-2:]] == ["approval_granted", "message_posted"]


def test_tui_p_refuses_to_approve_what_changed_while_its_dialog_was_open(engine, clock, tmp_path):
    """P re-approves a stale update with what its dialog showed: a parameter set from another
    terminal meanwhile is refused, old → new, and nothing is approved or posted."""
    from pilot_helpers import press, settle

    from runbook.service import EngineService
    from runbook.tui.app import build_app
    from runbook.tui.dialogs.confirm import ConfirmDialog

    iid = opened(engine, "status")
    engine.severity(iid, "ana", "SEV1", "worse")
    clock.advance(minutes=30)
    engine.tick(iid)
    other_store = open_store(str(tmp_path / "db.sqlite"))
    other = Engine(other_store, clock, engine.plugins, engine.catalog)  # another terminal
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "P")
            assert isinstance(app.screen, ConfirmDialog)
            other.set_parameter(iid, "mallory", "impact", "EU and US")
            await press(pilot, "y")
            await settle(pilot)
            return [n.message for n in app._notifications]

    try:
        said = asyncio.run(scenario())
    finally:
        other_store.close()
    assert any("not approved: what step 'status' covers changed since it was shown: prompt \"Post it for EU?\" → "
               "\"Post it for EU and US?\"; look again" in n for n in said), said
    state = engine.state(iid)
    after = [e.type for e in state.events if e.seq > state.messages[-1].seq]
    assert "approval_granted" not in after and "message_posted" not in after  # nothing approved, nothing posted
    assert [n for n, _ in posts(engine, iid, "status")] == [0]


def test_a_post_due_is_carried_by_checkpoints(tmp_path, monkeypatch, clock):
    from runbook.engine.events import fold
    from runbook.engine.snapshot import Snapshot

    monkeypatch.setenv("RUNBOOK_CHECKPOINT_EVERY", "3")
    catalog = load([str(CATALOG)])

    def fresh():
        host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
        return Engine(open_store(str(tmp_path / "db.sqlite")), clock, host, catalog)

    engine = fresh()
    iid = opened(engine, "status", "written")
    clock.advance(hours=1)
    engine.tick(iid)
    engine.note(iid, "ana", "writing the update")
    reader = fresh()
    state = reader.state(iid)
    stored, events, _ = reader.store.read_record(iid)
    assert reader.store.checkpoint(iid) is not None
    assert state == fold(iid, events, Snapshot.load(stored))
    assert [(step, n) for step, n, _why, _at in cadence.due(state)] == [("written", 1)]
    for each in (engine, reader):
        each.store.close()


def test_a_post_by_hand_made_after_another_post_it_did_not_see_is_refused(engine, clock):
    """P's dialog says which update it posts; the timer pass (runbook serve's, another TUI's) or
    another responder posting meanwhile refuses it, so one update never goes out twice."""
    iid = opened(engine, "status")
    with pytest.raises(CommandError, match=r"^not posted: step 'status' posted meanwhile \(09:00:00 UTC by ana\); look "
                                           r"again$"):
        engine.post(iid, "ana", "status", posted_before=0)
    clock.advance(minutes=30)
    engine.tick(iid)  # the timer pass posts repeat 1
    with pytest.raises(CommandError, match=r"posted meanwhile \(09:30:00 UTC by runbook, repeat 1\); look again$"):
        engine.post(iid, "ana", "status", posted_before=1)
    assert [e.data["repeat"] for e in engine.post(iid, "ana", "status", posted_before=2)
            if e.type == "message_posted"] == [2]


def test_tui_p_does_not_post_again_what_the_timer_posted_while_its_dialog_was_open(engine, clock, tmp_path):
    from pilot_helpers import press, settle

    from runbook.service import EngineService
    from runbook.tui.app import build_app
    from runbook.tui.dialogs.confirm import ConfirmDialog

    iid = opened(engine, "status")
    other_store = open_store(str(tmp_path / "db.sqlite"))
    other = Engine(other_store, clock, engine.plugins, engine.catalog)  # runbook serve's timer pass
    app = build_app(EngineService(engine), engine.catalog, "ana", iid)

    async def scenario():
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            await press(pilot, "P")  # post the next update early
            assert isinstance(app.screen, ConfirmDialog)
            clock.advance(minutes=30)
            other.tick(iid)
            await press(pilot, "y")
            await settle(pilot)
            return [n.message for n in app._notifications]

    try:
        said = asyncio.run(scenario())
    finally:
        other_store.close()
    assert any("not posted: step 'status' posted meanwhile (09:30:00 UTC by runbook, repeat 1); look again" in n
               for n in said), said
    assert [n for n, _ in posts(engine, iid, "status")] == [0, 1]
