"""The incident engine on a virtual clock: flow through steps, decisions, loops, approvals, waits,
degradations through the real flag file, escalation timers, deadlines and restart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from helpers.tamper import tamper

from runbook.catalog import load
from runbook.engine import CommandError, Engine, VirtualClock, timers
from runbook.engine.events import DegradationStarted
from runbook.engine.metrics import export_json, export_markdown, metrics, verify
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store, open_store

HERE = Path(__file__).parent


@pytest.fixture
def world(tmp_path, backend, request):
    text = (HERE / "engine_catalog" / "drill-pb.yaml").read_text()
    health = tmp_path / "health"
    health.write_text("down")
    catalog_dir = tmp_path / "catalog"
    catalog_dir.mkdir()
    (catalog_dir / "policies.yaml").write_text((HERE / "engine_catalog" / "policies.yaml").read_text())
    (catalog_dir / "pb.yaml").write_text(text.replace("PYTHON", sys.executable).replace("HEALTH", str(health)))

    class World:
        clock = VirtualClock()
        flags = tmp_path / "flags.json"
        # "memory" (a simulation's store, for the tests that ask for it): world.engine() has no database
        db = None if backend == "memory" else request.getfixturevalue("store_location")
        catalog = load([str(catalog_dir)])
        health_file = health
        stores = []

        def engine(self):
            store = open_store(self.db)
            self.stores.append(store)
            host = PluginHost(Settings(flags_file=str(self.flags), plugins_dir=None), entry_points=False)
            return Engine(store, self.clock, host, self.catalog)

    w = World()
    yield w
    for store in w.stores:
        store.close()


def types(events):
    return [e.type for e in events]


def test_open_starts_every_track_and_pages_level_one(world):
    engine = world.engine()
    state = engine.open("calls-down", "ana")
    assert state.current == {"main": "look", "comms": "comms-1"}
    fired = engine.tick(state.id)
    assert types(fired) == ["escalated", "notified"]
    assert fired[0].data["recipients"] == [{"id": "ana", "name": "Ana", "via": "rotation primary"}]
    assert fired[1].data["results"][0]["channel"] == "terminal"


def test_escalation_ladder_repeats_then_stops_and_late_tick_fires_in_order(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.tick(iid)
    world.clock.advance(minutes=60)  # one late tick: level 2, then round 2 levels 1 and 2, in order
    fired = [e for e in engine.tick(iid) if e.type == "escalated"]
    assert [(e.data["level"], e.data["round"], e.data["due_at"][11:16]) for e in fired] == [
        (2, 0, "09:05"), (1, 1, "09:15"), (2, 1, "09:20")]
    assert timers.next_escalation(engine.state(iid)) is None
    assert engine.state(iid).escalation.highest == 2


def test_acknowledgement_stops_escalation(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.tick(iid)
    world.clock.advance(minutes=3)
    engine.acknowledge(iid, "ana")
    world.clock.advance(minutes=30)
    assert "escalated" not in types(engine.tick(iid))
    with pytest.raises(CommandError, match="already acknowledged by ana"):
        engine.acknowledge(iid, "ben")


def test_timers_survive_a_restart_exactly(world):
    first = world.engine()
    iid = first.open("calls-down", "ana").id
    first.tick(iid)
    before = [(t.at, t.kind, t.data.get("level")) for t in timers.pending(first.state(iid))]
    world.clock.advance(minutes=2)
    restarted = world.engine()  # a new process: nothing in memory
    after = [(t.at, t.kind, t.data.get("level")) for t in timers.pending(restarted.state(iid))]
    assert after == before
    world.clock.advance(minutes=4)
    assert [e.data["level"] for e in restarted.tick(iid) if e.type == "escalated"] == [2]


def test_paging_starts_when_severity_rises_to_a_level_that_pages(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana", severity="SEV4").id
    world.clock.advance(minutes=15)
    assert "escalated" not in types(engine.tick(iid))
    world.clock.advance(minutes=10)  # the symptom persisted 20m: SEV1, which pages
    fired = engine.tick(iid)
    assert [(e.type, e.data.get("to") or e.data.get("target")) for e in fired][:3] == [
        ("severity_changed", "SEV1"), ("target_breached", "acknowledge"), ("escalated", None)]
    assert fired[2].data["due_at"].startswith("2026-01-05T09:20")


def test_deadlines_reminders_and_severity_rise_fire_on_time(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.tick(iid)
    engine.acknowledge(iid, "ana")
    world.clock.advance(minutes=21)
    fired = engine.tick(iid)
    assert [(e.type, e.data.get("to") or e.data.get("n")) for e in fired if e.type != "notified"] == [
        ("reminder_fired", 1), ("severity_changed", "SEV1")]
    state = engine.state(iid)
    assert state.severity == "SEV1"
    # SEV1 targets now apply: mitigate within 30m of opening
    world.clock.advance(minutes=10)
    fired = engine.tick(iid)
    assert ("target_breached", "mitigate") in [(e.type, e.data.get("target")) for e in fired]
    assert ("reminder_fired", 2) in [(e.type, e.data.get("n")) for e in fired]


def test_walk_with_wait_poll_timeout_loop_approval_degrade_and_resolve(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.acknowledge(iid, "ana")
    engine.complete(iid, "ana")  # look
    assert engine.state(iid).current["main"] == "healthy"
    world.clock.advance(seconds=30)
    polled = engine.tick(iid)
    assert [e.data["ok"] for e in polled if e.type == "check_polled"] == [False]
    world.clock.advance(minutes=2)  # the rest of the polls fail, then the wait times out
    fired = engine.tick(iid)
    assert types(fired)[-2:] == ["step_failed", "step_started"]
    assert engine.state(iid).current["main"] == "decide"
    engine.choose(iid, "ana", "check again")  # going back: a new attempt of an earlier step
    state = engine.state(iid)
    assert (state.current["main"], state.steps["look"].attempt) == ("look", 2)
    engine.complete(iid, "ana")
    world.health_file.write_text("ok")
    world.clock.advance(seconds=30)
    assert types(engine.tick(iid))[-3:] == ["check_polled", "step_completed", "step_started"]
    engine.choose(iid, "ana", "1")
    with pytest.raises(CommandError, match="needs approval by commander first"):
        engine.complete(iid, "ana")
    engine.approve(iid, "chief", "drain")
    engine.complete(iid, "ana")
    state = engine.state(iid)
    assert state.degradations["audio-only"].applied and state.mitigated_at is not None
    flags = json.loads(world.flags.read_text())
    assert flags["flags"]["rtc.video.enabled"]["defaultVariant"] == "off"
    engine.complete(iid, "ana")  # fix
    engine.complete(iid, "ana")  # back: restore
    assert not engine.state(iid).degradations["audio-only"].applied
    assert "rtc.video.enabled" not in json.loads(world.flags.read_text())["flags"]
    engine.complete(iid, "comms", "comms-1")
    engine.complete(iid, "comms", "comms-2")
    state = engine.state(iid)
    assert state.current == {"main": None, "comms": None}
    engine.resolve(iid, "ana")
    assert engine.state(iid).status == "resolved"
    with pytest.raises(CommandError, match="is resolved"):
        engine.acknowledge(iid, "ana")
    ok, _ = verify(engine.store.events(iid))
    assert ok


def test_resolve_restores_what_is_still_applied_unless_kept(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.degrade(iid, "ana", "audio-only")
    assert json.loads(world.flags.read_text())["flags"]["rtc.video.enabled"]["defaultVariant"] == "off"
    engine.resolve(iid, "ana")
    assert json.loads(world.flags.read_text())["flags"] == {}
    other = engine.open("calls-down", "ana").id
    engine.degrade(other, "ana", "audio-only")
    engine.resolve(other, "ana", keep_degradations=True)
    assert engine.state(other).events[-1].data == {"kept_degradations": ["audio-only"]}
    assert "rtc.video.enabled" in json.loads(world.flags.read_text())["flags"]


def test_drill_flags_go_to_the_sandbox(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana", drill=True).id
    assert iid.startswith("DRL-")
    engine.degrade(iid, "ana", "audio-only")
    assert not world.flags.exists()
    assert json.loads(world.flags.with_name("flags.sandbox.json").read_text())["flags"]["rtc.video.enabled"]


def test_commands_that_do_not_fit_say_why(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    with pytest.raises(CommandError, match="step 'fix' is not current; the current step of that track is 'look'"):
        engine.complete(iid, "ana", "fix")
    with pytest.raises(CommandError, match="is a check step, not a decision"):
        engine.choose(iid, "ana", "1")
    with pytest.raises(CommandError, match="has no degradation 'audio'; did you mean 'audio-only'"):
        engine.degrade(iid, "ana", "audio")
    with pytest.raises(CommandError, match="skipping a step needs a reason"):
        engine.skip(iid, "ana", None, " ")
    with pytest.raises(CommandError, match="unknown severity 'SEV9'"):
        engine.severity(iid, "ana", "SEV9")


def test_playbook_is_snapshotted_at_open(world, tmp_path):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    world.catalog = load([str(HERE / "engine_catalog")])  # the YAML changes under a running incident
    assert engine.state(iid).playbook.step("look").title == "Look at the dashboards"
    assert world.engine().state(iid).snapshot.hash == engine.state(iid).snapshot.hash


def test_metrics_and_postmortem_match_the_events(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.tick(iid)
    world.clock.advance(minutes=7)
    engine.tick(iid)
    engine.acknowledge(iid, "ben")
    world.clock.advance(minutes=3)
    engine.note(iid, "ben", "SFU pool in eu-west is saturated")
    engine.complete(iid, "ben")
    world.clock.advance(minutes=20)
    engine.mitigate(iid, "ben")
    world.clock.advance(minutes=30)
    engine.resolve(iid, "ben")
    m = metrics(engine.state(iid))
    assert (m.tta, m.ttm, m.ttr, m.highest_level) == (420, 1800, 3600, 2)
    assert m.targets["acknowledge"] == {"target": 600, "actual": 420, "breached": False}
    assert m.steps[0] == {"step": "look", "track": "main", "attempt": 1, "seconds": 600, "outcome": "done"}
    md = export_markdown(engine.state(iid))
    assert "| Time to acknowledge (TTA) | 7m | 10m | met |" in md
    assert "| Highest escalation level | 2 | | |" in md
    assert "- 09:10:00 ben: SFU pool in eu-west is saturated" in md
    assert "| 2026-01-05 09:07:00 | +7m | ben | acknowledged |" in md
    assert "## Root cause" in md and "## Action items" in md
    data = export_json(engine.state(iid))
    assert [e["seq"] for e in data["events"]] == list(range(1, len(data["events"]) + 1))


def test_verify_names_the_first_broken_link(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.note(iid, "ana", "first")
    engine.note(iid, "ana", "second")
    tamper(engine.store, "UPDATE events SET data = ? WHERE incident = ? AND seq = 4",
           [json.dumps({"text": "edited"}), iid])
    ok, message = verify(engine.store.events(iid))
    assert not ok
    assert message.startswith("event 4 (note_added at ") and "was altered" in message


def test_reconcile_settles_an_interrupted_flag_change(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    state = engine.state(iid)
    # a crash right after the intent was recorded and the flag was set, before the result:
    engine.command(iid, "ana", lambda s: [DegradationStarted(
        "audio-only", "apply", {"rtc.video.enabled": {"old": {"exists": False, "value": None, "variant": None,
                                                              "enabled": True}, "new": False}})])
    engine.plugins.set_flag("rtc.video.enabled", False)
    with pytest.raises(CommandError, match="is being applied by ana"):
        engine.degrade(iid, "ben", "audio-only")
    assert engine.reconcile(iid) == []  # not stale yet: another process may still be working on it
    world.clock.advance(minutes=2)
    settled = world.engine().reconcile(iid)
    assert types(settled) == ["flag_changed", "degradation_applied"]
    assert settled[0].data["reconciled"] is True
    assert engine.state(iid).degradations["audio-only"].applied
    assert state.id == iid


def test_late_tick_says_each_reminder_once_and_polls_once(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.acknowledge(iid, "ana")
    engine.complete(iid, "ana")  # look -> healthy (a wait polled every 30s for 2m)
    world.clock.advance(minutes=1, seconds=45)  # three polls and no reminder fell due meanwhile
    fired = engine.tick(iid)
    assert [(e.type, e.data.get("poll")) for e in fired if e.type == "check_polled"] == [("check_polled", 3)]
    engine.skip(iid, "ana", None, "checked by hand")
    world.clock.advance(minutes=50)  # reminders every 15m: three missed
    reminders = [e for e in engine.tick(iid) if e.type == "reminder_fired"]
    assert [(e.data["n"], e.data["missed"]) for e in reminders] == [(3, 2)]


def test_running_a_wait_by_hand_is_one_more_poll(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.complete(iid, "ana")
    events = engine.run(iid, "ana")
    assert [e.type for e in events] == ["check_polled"]
    assert engine.state(iid).steps["healthy"].status == "active"
    world.health_file.write_text("ok")
    assert [e.type for e in engine.run(iid, "ana")][:2] == ["check_polled", "step_completed"]


def test_a_poll_that_returns_after_resolve_changes_nothing(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.complete(iid, "ana")
    world.health_file.write_text("ok")
    state = engine.state(iid)
    world.engine().resolve(iid, "bob")  # resolved by someone else while the check runs
    events = engine.effects.poll(state, "healthy")
    assert [e.type for e in events] == ["check_polled"]
    assert engine.state(iid).resolved_at is not None and engine.state(iid).mitigated_at is None


def test_reminders_stop_at_resolve_even_without_a_tick(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.acknowledge(iid, "ana")
    world.clock.advance(minutes=12)
    engine.resolve(iid, "ana")
    world.clock.advance(minutes=40)
    assert "reminder_fired" not in types(engine.tick(iid))


def test_applying_by_hand_what_a_current_gated_step_applies_needs_its_approval(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    for _ in range(2):
        engine.complete(iid, "ana")
    world.clock.advance(minutes=3)
    engine.tick(iid)
    engine.choose(iid, "ana", "One region")
    with pytest.raises(CommandError, match="needs approval by"):
        engine.degrade(iid, "ana", "audio-only")
    assert not engine.state(iid).degradations["audio-only"].applied
    engine.approve(iid, "chief")
    engine.degrade(iid, "ana", "audio-only")
    assert engine.state(iid).degradations["audio-only"].applied


def test_degrade_steps_always_flip_and_complete_when_already_in_that_state(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    for _ in range(2):
        engine.complete(iid, "ana")
    world.clock.advance(minutes=3)
    engine.tick(iid)  # the wait times out -> decide
    engine.choose(iid, "ana", "One region")
    engine.approve(iid, "chief")
    engine.degrade(iid, "ana", "audio-only")  # applied outside the step, e.g. with g in the TUI
    events = engine.complete(iid, "ana", outcome="ignored for flips")
    assert [e.type for e in events][:2] == ["step_completed", "mitigated"]
    assert events[0].data["outcome"] == "ignored for flips"
    engine.complete(iid, "ana")  # fix
    engine.restore(iid, "ana", "audio-only")
    done = engine.complete(iid, "ana")  # back: nothing left to restore
    assert done[0].data["outcome"] == "audio-only was not applied; nothing to restore"


def test_approval_is_given_when_the_flow_reaches_the_gate(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    with pytest.raises(CommandError, match="is not current yet"):
        engine.approve(iid, "chief", "drain")


def test_retrying_a_failed_step_is_a_new_attempt(world):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.fail(iid, "ana", None, "dashboards down")
    world.clock.advance(minutes=2)
    engine.complete(iid, "ana", outcome="found it on the backup dashboards")
    runs = [(r["attempt"], r["outcome"]) for r in metrics(engine.state(iid)).steps if r["step"] == "look"]
    assert runs == [(1, "failed"), (2, "done")]


def test_every_connection_is_durable_and_the_database_is_owner_only(tmp_path):
    import os

    path = tmp_path / "db.sqlite"
    with Store(str(path)) as first, Store(str(path)) as second:
        for store in (first, second):
            assert store.pragmas() == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 30000}
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"


def tick_together(engines, iid) -> list:
    """Every engine ticks `iid` at the same moment, each on its own thread; what they raised."""
    import threading

    start, failures = threading.Barrier(len(engines)), []

    def tick(engine):
        start.wait()
        try:
            engine.tick(iid)
        except Exception as exc:  # returned to the test
            failures.append(exc)
    threads = [threading.Thread(target=tick, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_timers_fire_once_with_several_processes_ticking(world):
    """Four responders' engines, each on its own connection, tick the same late incident at once:
    every escalation and its page is in the log once (the sequence check, and on PostgreSQL the
    incident's row lock, let one of them fire each timer; the others re-read and find it done)."""

    engines = [world.engine() for _ in range(4)]
    iid = engines[0].open("calls-down", "ana").id
    for engine in engines:
        engine.state(iid)
    world.clock.advance(minutes=60)
    assert tick_together(engines, iid) == []
    log = world.engine().state(iid).events
    escalations = [(e.data["level"], e.data["round"]) for e in log if e.type == "escalated"]
    assert escalations == [(1, 0), (2, 0), (1, 1), (2, 1)]
    assert len([e for e in log if e.type == "notified"]) == 4


def test_reminders_fire_once_with_several_processes_ticking(world):
    """The same for a reminder due every 15 minutes: four engines ticking at each quarter hour
    (and all at once, late) say each reminder once."""
    engines = [world.engine() for _ in range(4)]
    iid = engines[0].open("calls-down", "ana").id
    for engine in engines:
        engine.state(iid)
    for _ in range(4):
        world.clock.advance(minutes=15)
        assert tick_together(engines, iid) == []
    fired = [e.data["n"] for e in world.engine().state(iid).events if e.type == "reminder_fired"]
    assert fired == [1, 2, 3, 4]


# Two engines on one incident, each holding its state: on one memory store (a simulation's,
# which cannot tell whether anyone else wrote, so each checks its commands against the state it
# holds without reading first), or on two connections to a real store (which can tell: SQLite's
# data_version, PostgreSQL's read under the writer lock), where each reads what the other wrote.
WITH_MEMORY = pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])


def engine_pair(world, backend):
    if backend != "memory":
        return world.engine(), world.engine()
    from runbook.store import MemoryStore

    store = MemoryStore()
    host = lambda: PluginHost(Settings(flags_file=str(world.flags), plugins_dir=None), entry_points=False)  # noqa: E731
    return Engine(store, world.clock, host(), world.catalog), Engine(store, world.clock, host(), world.catalog)


@WITH_MEMORY
def test_a_command_on_a_held_state_the_log_has_overtaken_is_checked_again_on_the_log(world, backend, monkeypatch):
    """Where the store cannot tell whether someone else wrote, an engine checks a command
    against the state it holds; what another writer appended meanwhile makes the append fail
    its sequence check, and the command is checked again at once on the caught-up state,
    without the pause a lost race gets. A refusal decided on the held state is never the answer
    when the log says otherwise; where the store can tell, the engine reads first, to the same
    answers."""
    from runbook.engine import engine as engine_module

    pauses = []
    monkeypatch.setattr(engine_module, "_pause_after_conflict", pauses.append)
    mine, theirs = engine_pair(world, backend)
    iid = mine.open("calls-down", "ana").id
    assert mine.state(iid).current["main"] == "look"
    theirs.complete(iid, "bo", "look")  # the log moves on: the wait step 'healthy' is current
    # refused on the held state ('look' current), done on the log's
    done = mine.complete(iid, "ana", "healthy")
    assert "step_completed" in types(done) and mine.state(iid).current["main"] == "decide"
    theirs.acknowledge(iid, "bo")
    # accepted on the held state (not acknowledged), refused once the append's check says it is stale
    with pytest.raises(CommandError, match="already acknowledged by bo"):
        mine.acknowledge(iid, "ana")
    theirs.choose(iid, "bo", "1")  # 'One region': the gated degrade step 'drain' is current
    # refused on the held state ('decide' current), done on the log's
    approved = mine.approve(iid, "ana", "drain")
    assert types(approved) == ["approval_granted"] and mine.state(iid).steps["drain"].approved
    # a genuine refusal still says why, on the log's state
    with pytest.raises(CommandError, match="step 'fix' is not current"):
        mine.complete(iid, "ana", "fix")
    assert pauses == []  # news, not lost races
    events = theirs.state(iid).events
    assert types(events).count("acknowledged") == 1
    assert [e.actor for e in events if e.type == "step_completed"] == ["bo", "ana"]


@WITH_MEMORY
def test_nothing_to_do_on_a_held_state_is_confirmed_on_the_log(world, backend):
    """A command that finds nothing to do on the state the engine holds looks at the log before
    it says so: what another writer appended meanwhile may give it something to do. Where the
    store can tell someone else wrote (SQLite), the engine reads the log first."""
    from runbook.engine.events import NoteAdded

    mine, theirs = engine_pair(world, backend)
    iid = mine.open("calls-down", "ana").id
    held = mine.state(iid).last_seq
    theirs.note(iid, "bo", "the news")
    seen = []

    def build(state):  # something to do only once the other responder's note is there
        seen.append(state.last_seq)
        return [NoteAdded("answering the news")] if any(e.type == "note_added" for e in state.events) else []
    appended = mine.command(iid, "ana", build)
    assert types(appended) == ["note_added"] and appended[0].record.text == "answering the news"
    # first on the held state, then on the log's (the memory store; PostgreSQL, whose one-call
    # append checks the log's end itself); or on the log's at once (SQLite counts others' commits)
    assert seen == ([held, held + 1] if backend in ("memory", "postgres") else [held + 1])
    assert mine.command(iid, "ana", lambda state: []) == []  # nothing to do, and the log agrees


def spy_on_reads_and_appends(monkeypatch, engine) -> tuple[list, list, list]:
    """(reads, appends, both in order as "read"/"append") of the engine's store from now on."""
    reads, appends, order = [], [], []
    store = type(engine.store)
    events, append = store.events, store.append

    def read(self, *a, **k):
        reads.append(a)
        order.append("read")
        return events(self, *a, **k)

    def write(self, *a, **k):
        appends.append(a)
        order.append("append")
        return append(self, *a, **k)
    monkeypatch.setattr(store, "events", read)
    monkeypatch.setattr(store, "append", write)
    return reads, appends, order


def test_a_command_on_a_state_nobody_else_has_written_to_reads_nothing_before_its_append(world, monkeypatch):
    """Nobody else wrote since the engine caught up, so the held state is used as it is: on
    SQLite because its data_version says so, on PostgreSQL because the append names the event
    the state ends at and the store's one round trip checks it there."""
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.state(iid)
    reads, appends, _ = spy_on_reads_and_appends(monkeypatch, engine)
    engine.note(iid, "ana", "one")
    engine.note(iid, "ana", "two")
    assert len(reads) == 0 and len(appends) == 2
    assert [e.record.text for e in engine.state(iid).events if e.type == "note_added"] == ["one", "two"]


def test_a_command_after_another_connection_wrote_reads_first_instead_of_failing_its_append(world, monkeypatch):
    """The TUI's ticker and another responder write on connections of their own: when one has
    committed, a store that counts other connections' commits (SQLite) lets the engine read what
    is new before the command (one read), rather than find out through an append that fails its
    check (a write lock taken and a rollback, then the read). PostgreSQL cannot tell without
    asking the server, so the append that names a stale end is refused (one round trip, nothing
    written), and the command reads and appends once more."""
    mine, theirs = world.engine(), world.engine()
    iid = mine.open("calls-down", "ana").id
    mine.state(iid)
    theirs.note(iid, "bo", "the news")
    _, appends, order = spy_on_reads_and_appends(monkeypatch, mine)
    mine.acknowledge(iid, "ana")
    if mine.store.features.counts_commits:
        assert order[:2] == ["read", "append"] and len(appends) == 1  # read first, appended once: no failed append
    else:
        assert order[:3] == ["append", "read", "append"] and len(appends) == 2
    assert [e.type for e in mine.state(iid).events][-2:] == ["note_added", "acknowledged"]
    assert [e.type for e in mine.store.events(iid)].count("acknowledged") == 1
