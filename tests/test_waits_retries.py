"""Waits that tell "not yet" from "the check broke", with backoff; plain timed waits that come due;
severity rises that count only the time the alert fired; retry: rules and restarting from a step.
All on the engine with a virtual clock."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.catalog.models import build_playbook
from runbook.engine import CommandError, Engine, VirtualClock, timers, waits
from runbook.engine.engine import ReasonNeeded
from runbook.engine.events import CheckPolled, decode
from runbook.errors import NotFoundError
from runbook.pluginapi import ActionResult
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

HERE = Path(__file__).parent


@pytest.fixture
def world(tmp_path):
    check, deploy = tmp_path / "check", tmp_path / "deploy"
    check.write_text("1")
    deploy.write_text("0")
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    (catalog_dir / "policies.yaml").write_text((HERE / "waits_catalog" / "policies.yaml").read_text())
    text = (HERE / "waits_catalog" / "waits-pb.yaml").read_text()
    (catalog_dir / "pb.yaml").write_text(text.replace("PYTHON", sys.executable).replace("CHECK", str(check))
                                         .replace("DEPLOY", str(deploy)))

    class World:
        clock = VirtualClock()
        catalog = load([str(catalog_dir)])
        check_file, deploy_file = check, deploy
        stores = []

        def engine(self):
            store = Store(str(tmp_path / "db.sqlite"))
            self.stores.append(store)
            host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
            return Engine(store, self.clock, host, self.catalog)

    assert not [p for p in World.catalog.errors], World.catalog.errors
    w = World()
    yield w
    for store in w.stores:
        store.close()


def types(events):
    return [e.type for e in events]


def polls(events):
    return [(e.data["poll"], e.data["outcome"]) for e in events if e.type == "check_polled"]


def at_wait(world):
    engine = world.engine()
    iid = engine.open("media-stuck", "ana").id
    engine.acknowledge(iid, "ana")
    engine.complete(iid, "ana", "look")
    return engine, iid


# waits ---------------------------------------------------------------------------------------

def test_backoff_grows_the_interval_up_to_its_cap():
    step = build_playbook({"id": "p", "title": "t", "service": "s", "severity": "S", "escalation": "e", "steps": [
        {"kind": "wait", "title": "w", "run": ["true"], "every": "10s", "backoff": 2, "max_every": "40s",
         "timeout": "1h"}]}).steps[0]
    assert [waits.interval(step, n) for n in range(1, 6)] == [10, 20, 40, 40, 40]
    assert [waits.offset(step, n) for n in range(0, 6)] == [0, 10, 30, 70, 110, 150]
    assert [waits.polls_within(step, s) for s in (9, 10, 29, 30, 70, 149, 150, 1000)] == [0, 1, 1, 2, 3, 4, 5, 26]
    assert waits.poll_timeout(step) == 10  # without poll_timeout: the interval, at most a minute


def test_not_yet_polls_on_with_backoff_and_a_late_tick_polls_once(world):
    engine, iid = at_wait(world)
    world.clock.advance(seconds=10)
    assert polls(engine.tick(iid)) == [(1, "not-yet")]
    world.clock.advance(seconds=19)
    assert polls(engine.tick(iid)) == []  # the second poll is 20 s after the first
    world.clock.advance(seconds=1)
    assert polls(engine.tick(iid)) == [(2, "not-yet")]
    world.clock.advance(seconds=200)  # polls 3 (70 s), 4 (110 s), 5 (150 s), 6 (190 s), 7 (230 s) fell due
    assert polls(engine.tick(iid)) == [(7, "not-yet")]
    next_poll = next(t for t in timers.pending(engine.state(iid)) if t.kind == "poll")
    assert (next_poll.at - engine.state(iid).steps["drained"].started_at).total_seconds() == 270


def test_a_broken_check_goes_to_on_broken_and_says_so(world):
    engine, iid = at_wait(world)
    world.check_file.write_text("255")  # ssh could not reach the host: the check itself broke
    world.clock.advance(seconds=10)
    fired = engine.tick(iid)
    assert polls(fired) == [(1, "broken")]
    assert "check broken" in fired[0].record.describe()
    failed = next(e for e in fired if e.type == "step_failed")
    assert failed.data["reason"].startswith("the check broke: failed with exit status 255")
    assert engine.state(iid).current["main"] == "check-the-checker"


@pytest.mark.parametrize("code, outcome", [("1", "not-yet"), ("3", "broken"), ("255", "broken"), ("0", "holds")])
def test_exit_statuses_classify_by_the_steps_lists(world, code, outcome):
    step = world.catalog.find("media-stuck", "Playbook").model.step("drained")  # not_yet: [1], broken: [255]
    assert waits.classify(step, ActionResult(code == "0", "", int(code), handler="shell")) == outcome


def test_default_classes_without_lists():
    step = build_playbook({"id": "p", "title": "t", "service": "s", "severity": "S", "escalation": "e", "steps": [
        {"kind": "wait", "title": "w", "run": ["true"], "timeout": "1m"}]}).steps[0]
    assert step.on_broken == "keep-polling"  # today's playbooks keep polling whatever happens, as before
    codes = (1, 2, 125, 126, 127, 255)
    shell = [waits.classify(step, ActionResult(False, "", code, handler="shell")) for code in codes]
    assert shell == ["not-yet"] * 3 + ["broken"] * 3
    assert waits.classify(step, ActionResult(False, "timed out after 30s", None, handler="shell")) == "broken"
    assert waits.classify(step, ActionResult(False, "no plugin provides action 'x'")) == "broken"
    action = step._replace(run=None, uses="http-check")
    assert waits.classify(action, ActionResult(False, "503", 503, handler="http-check")) == "not-yet"


def test_a_poll_may_run_longer_than_a_minute(world):
    engine, iid = at_wait(world)
    state = engine.state(iid)
    assert engine.effects.request(state, state.playbook.step("drained")).timeout == 120


def test_old_check_polled_records_still_load():
    old = decode("check_polled", {"step": "s", "ok": False, "summary": "exit 1", "poll": 2})
    assert old.kind == "not-yet" and "not yet" in old.describe()
    assert decode("check_polled", {"step": "s", "ok": True, "summary": "", "poll": 1}).kind == "holds"
    assert isinstance(old, CheckPolled)


# timed waits ---------------------------------------------------------------------------------

def to_timed_wait(world):
    engine, iid = at_wait(world)
    world.check_file.write_text("0")
    world.clock.advance(seconds=10)
    assert "step_completed" in types(engine.tick(iid))
    assert engine.state(iid).current["main"] == "later"
    return engine, iid


def test_a_timed_wait_comes_due_and_the_responder_completes_it(world):
    engine, iid = to_timed_wait(world)
    world.clock.advance(minutes=9, seconds=59)
    assert "wait_due" not in types(engine.tick(iid))
    world.clock.advance(seconds=1)
    fired = engine.tick(iid)
    due = next(e for e in fired if e.type == "wait_due")
    assert due.record.loud == "warning" and "is due" in due.record.describe()
    state = engine.state(iid)
    assert state.current["main"] == "later" and state.steps["later"].due_at is not None
    world.clock.advance(minutes=30)
    assert "wait_due" not in types(engine.tick(iid))  # said once
    engine.complete(iid, "ana", "later")
    assert engine.state(iid).current["main"] == "deploy"


def test_a_timed_wait_survives_a_restart_of_the_program(world):
    _engine, iid = to_timed_wait(world)
    world.clock.advance(minutes=4)
    restarted = world.engine()
    world.clock.advance(minutes=6)
    assert "wait_due" in types(restarted.tick(iid))


# severity rises and the alert ----------------------------------------------------------------

def test_a_resolved_alert_stops_the_rise_and_a_refire_counts_on(world):
    engine = world.engine()
    iid = engine.open("media-stuck", "ana").id
    world.clock.advance(minutes=5)
    assert types(engine.alert_resolved(iid, "alertmanager", "MediaUploadsStuck")) == ["alert_state_changed"]
    assert engine.alert_resolved(iid, "alertmanager") == []  # a repeat records nothing
    world.clock.advance(minutes=40)
    assert "severity_changed" not in types(engine.tick(iid))
    assert not [t for t in timers.pending(engine.state(iid)) if t.kind == "rise"]
    engine.alert_firing(iid, "alertmanager")
    world.clock.advance(minutes=14, seconds=59)  # 5 + 14:59 minutes of firing: not yet 20
    assert "severity_changed" not in types(engine.tick(iid))
    world.clock.advance(seconds=1)
    rise = next(e for e in engine.tick(iid) if e.type == "severity_changed")
    assert rise.data["to"] == "SEV1"


def test_a_late_tick_still_fires_a_rise_that_fell_due_while_the_alert_fired(world):
    engine = world.engine()
    iid = engine.open("media-stuck", "ana").id
    engine.acknowledge(iid, "ana")
    world.clock.advance(minutes=25)
    engine.alert_resolved(iid, "alertmanager")  # recorded before any tick: the rise was due at 20 m
    rise = next(e for e in engine.tick(iid) if e.type == "severity_changed")
    assert rise.data["due_at"].startswith("2026-01-05T09:20:00")


def test_an_alert_state_is_firing_or_resolved():
    with pytest.raises(CommandError, match="did you mean 'resolved'"):
        Engine(Store(":memory:"), VirtualClock()).alert_state("INC-1", "ana", "resolve")


# retries and restarts ------------------------------------------------------------------------

def to_deploy(world):
    engine, iid = to_timed_wait(world)
    engine.complete(iid, "ana", "later")
    return engine, iid


def test_a_failed_action_is_retried_after_its_delay_then_goes_to_on_fail(world):
    engine, iid = to_deploy(world)
    world.deploy_file.write_text("1")
    first = engine.run(iid, "ana")
    failed = next(e for e in first if e.type == "step_failed")
    assert failed.data["retry_in"] == 60 and "trying again in 1m" in failed.record.describe()
    state = engine.state(iid)
    assert (state.current["main"], state.steps["deploy"].status) == ("deploy", "failed")
    world.clock.advance(seconds=59)
    assert engine.tick(iid) == []
    world.clock.advance(seconds=1)
    second = engine.tick(iid)
    started = second[0]
    assert (started.type, started.data["attempt"], started.data["auto"]) == ("step_started", 2, True)
    assert "action_started" in types(second) and engine.state(iid).steps["deploy"].retries == 1
    world.clock.advance(minutes=1)
    third = engine.tick(iid)
    assert next(e.data["attempt"] for e in third if e.type == "step_started") == 3
    final = next(e for e in third if e.type == "step_failed")
    assert final.data.get("retry_in") is None  # the tries are used up: on_fail
    assert engine.state(iid).current["main"] == "page"
    runs = [r for r in engine.state(iid).runs if r.step == "deploy"]
    assert [r.attempt for r in runs] == [1, 2, 3]


def test_a_retry_that_succeeds_moves_on(world):
    engine, iid = to_deploy(world)
    world.deploy_file.write_text("1")
    engine.run(iid, "ana")
    world.deploy_file.write_text("0")
    world.clock.advance(minutes=1)
    fired = engine.tick(iid)
    assert "step_completed" in types(fired) and engine.state(iid).current["main"] == "confirm"


def test_failing_a_step_by_hand_does_not_retry(world):
    engine, iid = to_deploy(world)
    engine.fail(iid, "ana", "deploy", "the rollout is wedged")
    assert engine.state(iid).current["main"] == "page"


def test_restart_from_an_earlier_step_makes_later_steps_pending_again(world):
    engine, iid = to_deploy(world)
    engine.complete(iid, "ana", "deploy")
    assert engine.state(iid).current["main"] == "confirm"
    with pytest.raises(ReasonNeeded):
        engine.restart(iid, "ana", "drained", "  ")
    with pytest.raises(NotFoundError, match="did you mean 'drained'"):
        engine.restart(iid, "ana", "draned", "queue filled again")
    with pytest.raises(CommandError, match="never reached"):
        engine.restart(iid, "ana", "page", "why not")
    events = engine.restart(iid, "ana", "drained", "queue filled again")
    assert types(events) == ["step_restarted", "step_started"]
    assert events[0].data["reset"] == ["drained", "later", "deploy", "confirm", "check-the-checker", "page"]
    assert "queue filled again" in events[0].record.describe()
    state = engine.state(iid)
    assert state.current["main"] == "drained" and state.steps["drained"].attempt == 2
    assert [state.steps[s].status for s in ("look", "later", "deploy", "confirm")] == ["done"] + ["pending"] * 3
    left = [r for r in state.runs if r.step == "confirm"][-1]
    assert left.outcome == "left by a restart from drained"
    world.clock.advance(seconds=10)
    assert polls(engine.tick(iid)) == [(1, "holds")]  # the wait polls again, from its new start


def test_restart_is_refused_after_resolve(world):
    engine, iid = at_wait(world)
    engine.resolve(iid, "ana")
    with pytest.raises(CommandError, match="is resolved"):
        engine.restart(iid, "ana", "look", "again")


def test_the_new_records_round_trip():
    for type_name, data in [("wait_due", {"step": "s", "track": "main", "due_at": "2026-01-05T09:00:00.000000Z"}),
                            ("step_restarted", {"step": "s", "track": "main", "reason": "r", "reset": ["s"],
                                                "left": "t"}),
                            ("alert_state_changed", {"state": "resolved", "alert": "A"})]:
        record = decode(type_name, data)
        assert record.to_data() == data and record.describe()


# what a poll saw -----------------------------------------------------------------------------

@pytest.fixture
def drain(tmp_path):
    """A wait whose command prints what it sees ("2 allocations left") and captures the number."""
    allocations = tmp_path / "allocations"
    allocations.write_text("3")
    catalog_dir = tmp_path / "drain-catalog"
    catalog_dir.mkdir()
    (catalog_dir / "policies.yaml").write_text((HERE / "waits_catalog" / "policies.yaml").read_text())
    (catalog_dir / "pb.yaml").write_text((HERE / "waits_catalog" / "drain-pb.yaml").read_text()
                                         .replace("PYTHON", sys.executable).replace("ALLOCATIONS", str(allocations)))
    catalog = load([str(catalog_dir)])
    assert not catalog.errors, catalog.errors
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, catalog)
    yield engine, allocations, catalog_dir
    store.close()


def test_each_poll_records_the_value_it_saw_and_the_timeline_says_it(drain):
    engine, allocations, _ = drain
    iid = engine.open("drain-node", "ana").id
    allocations.write_text("2")
    engine.clock.advance(seconds=30)
    (poll,) = [e for e in engine.tick(iid) if e.type == "check_polled"]
    assert (poll.data["captured"], poll.data["exit_code"], poll.data["outcome"]) == ({"allocations": "2"}, 1,
                                                                                     "not-yet")
    assert poll.record.describe() == "poll 1 of drain: allocations=2; exit status 1, not yet"
    state = engine.state(iid)
    assert state.steps["drain"].last_poll == "allocations=2; exit status 1, not yet"  # the TUI's "last check:"
    assert "allocations" not in state.parameters  # only the poll that held sets the parameter
    allocations.write_text("0")
    engine.clock.advance(seconds=30)
    fired = engine.tick(iid)
    held = next(e for e in fired if e.type == "check_polled")
    assert held.record.describe() == "poll 2 of drain: allocations=0; exit status 0, holds"
    assert engine.state(iid).parameters["allocations"] == "0"


def test_a_poll_without_captures_says_its_exit_status_and_an_action_its_own_words():
    step = build_playbook({"id": "p", "title": "t", "service": "s", "severity": "S", "escalation": "e", "steps": [
        {"kind": "wait", "title": "w", "run": ["true"], "timeout": "1m"}]}).steps[0]
    assert waits.seen(step, "failed with exit status 1: true", 1, {}) == "exit status 1"
    action = step._replace(run=None, uses="http-check")
    assert waits.seen(action, "GET https://x → 503 in 4 ms", 503, {}) == "GET https://x → 503 in 4 ms"
    assert waits.seen(action, "GET https://x → 503 in 4 ms", 503, {"state": "draining"}) == \
        "state=draining; GET https://x → 503 in 4 ms"


def test_a_poll_recorded_before_waits_said_what_they_saw_reads_as_it_did():
    old = decode("check_polled", {"step": "drain", "ok": False, "summary": "failed with exit status 1: x",
                                  "poll": 3, "exit_code": 1, "outcome": "not-yet"})
    assert old.describe() == "poll 3 of drain: not yet — failed with exit status 1: x"
    assert "seen" not in old.to_data() and "captured" not in old.to_data() and "value" not in old.to_data()


def test_the_cli_shows_what_each_poll_saw(drain, rb, tmp_path):
    _, allocations, catalog_dir = drain
    allocations.write_text("2")
    rb.env.update(RUNBOOK_DB=str(tmp_path / "cli.sqlite"), RUNBOOK_CATALOG=str(catalog_dir))
    rb.cwd = tmp_path

    iid = rb("incident", "open", "drain-node").strip()
    assert "poll 1 of drain: allocations=2; exit status 1, not yet" in rb("incident", "step", iid, "--run", expect=4,
                                                                           stream="stdout")
    shown = rb("incident", "show", iid)
    assert "poll 1 of drain: allocations=2; exit status 1, not yet" in shown
    events = json.loads(rb("incident", "show", iid, "--json"))["events"]
    poll = next(e for e in events if e["type"] == "check_polled")
    assert poll["data"]["captured"] == {"allocations": "2"} and poll["data"]["seen"] == "allocations=2; exit status 1"
