"""Checkpoints (engine/checkpoint.py): a state read from a checkpoint is the state folded from the
first event, at every place a checkpoint can be; the fast path reads only the recent events; a
checkpoint that was altered, moved or outlived by the log is never used and is reported."""

from __future__ import annotations

import dataclasses
import json
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from runbook.catalog import load
from runbook.drills.simulate import simulate_run
from runbook.drills.simulated import SimulatedPlugins
from runbook.engine import Engine, VirtualClock, checkpoint
from runbook.engine.events import apply, fold
from runbook.engine.events.base import Event, decode
from runbook.engine.integrity import folded_summary
from runbook.engine.snapshot import Snapshot
from runbook.engine.state import History
from runbook.errors import RecordError
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import MemoryStore, open_store

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def untampered(state):
    """The state without what its load found wrong with the record (to compare with a plain fold)."""
    return dataclasses.replace(state, tampered="")


# the same state at every cut ----------------------------------------------------------------

def _simulated_logs() -> list[tuple[dict, list]]:
    """Incidents the shipped drills produce through the real engine (escalations, pages, steps,
    degradations, injects, resolve): their snapshots and logs."""
    catalog = load([str(ROOT / "playbooks"), str(ROOT / "drills")])
    kept = []
    for doc in catalog.of_kind("Drill"):
        store = MemoryStore()
        engine = Engine(store, VirtualClock(START), SimulatedPlugins(), catalog)

        def forget(iid, store=store):
            kept.append((store.snapshot(iid), store.events(iid)))

        store.forget = forget
        for n in range(4):
            simulate_run(engine, doc.model, random.Random(f"cp:{doc.id}:{n}"), START + timedelta(days=n))
    return kept


def _restored(incident: str, snapshot: Snapshot, events: list, cut: int, window: int = checkpoint.WINDOW):
    """The state written as a checkpoint after `cut` events, read back, then caught up."""
    before = fold(incident, events[:cut], snapshot)
    pairs = [(e.ts, decode(e.type, e.data, e.seq)) for e in events[:cut]]
    body = checkpoint.body(before, folded_summary(pairs))
    window = [Event.from_stored(e) for e in events[max(0, cut - window):cut]]
    loads = []

    def load_all():
        loads.append(1)
        return [Event.from_stored(e) for e in events]

    state, summary = checkpoint.load(body, incident, snapshot, Event.from_stored(events[0]), window, load_all)
    assert len(state.events) == cut
    assert summary == folded_summary(pairs)
    for event in events[cut:]:
        apply(state, Event.from_stored(event))
    return state, loads


def test_a_state_read_from_a_checkpoint_is_the_fold_from_the_first_event_at_every_cut():
    logs = _simulated_logs()
    assert len(logs) >= 12
    kinds = {e.type for _, events in logs for e in events}
    # the drills must exercise what a checkpoint has to carry, or this test proves little
    assert {"escalated", "notified", "acknowledged", "step_completed", "resolved", "degradation_applied",
            "flag_changed", "approval_granted"} <= kinds, kinds
    cuts = 0
    for stored, events in logs:
        incident = events[0].incident
        snapshot = Snapshot.load(stored)
        full = fold(incident, events, snapshot)
        for cut in range(1, len(events) + 1):
            state, _ = _restored(incident, snapshot, events, cut, window=cut % 3)
            assert state == full, f"{incident}: the state from a checkpoint at event {cut} differs"
            cuts += 1
    assert cuts > 200


def test_the_recent_events_need_no_read_and_the_whole_log_is_read_once_when_walked():
    stored, events = max(_simulated_logs(), key=lambda log: len(log[1]))
    incident, snapshot = events[0].incident, Snapshot.load(stored)
    cut = len(events) - 3
    state, loads = _restored(incident, snapshot, events, cut, window=4)
    assert isinstance(state.events, History) and len(state.events) == len(events)
    assert [e.seq for e in state.events[-5:]] == [e.seq for e in events[-5:]]
    assert state.events[0].type == "opened" and state.events[-1].seq == events[-1].seq
    assert loads == []  # length, the last events and the first: nothing read
    assert [e.seq for e in state.events] == [e.seq for e in events]  # walking it reads the rest
    assert [e.seq for e in reversed(state.events)] == [e.seq for e in reversed(events)]
    assert loads == [1]
    assert [n.data["text"] for n in state.notes] == [e.data["text"] for e in events if e.type == "note_added"]


def test_the_window_covers_the_timeline_that_screens_show():
    from runbook.views import TIMELINE_ROWS

    assert checkpoint.WINDOW >= TIMELINE_ROWS


def test_a_log_that_lost_events_before_the_checkpoint_is_an_error_not_a_short_history():
    stored, events = max(_simulated_logs(), key=lambda log: len(log[1]))
    incident, snapshot = events[0].incident, Snapshot.load(stored)
    cut = len(events) - 1
    before = fold(incident, events[:cut], snapshot)
    body = checkpoint.body(before, folded_summary([(e.ts, decode(e.type, e.data, e.seq)) for e in events[:cut]]))
    state, _ = checkpoint.load(body, incident, snapshot, Event.from_stored(events[0]),
                               [Event.from_stored(e) for e in events[cut - 2:cut]],
                               lambda: [Event.from_stored(e) for e in events[:3]])
    with pytest.raises(RecordError, match="lost events before event"):
        list(state.events)


def test_a_body_naming_anything_outside_the_closed_set_is_refused():
    for body in ('{"format": 1, "seq": 1, "state": {"steps": {"a": {"~": "Popen", "v": {}}}}, "summary": {}}',
                 '{"format": 1, "seq": 1, "state": {"no_such_field": 1}, "summary": {}}',
                 '{"format": 1, "seq": 1, "state": {"steps": {"~": "StepState", "v": {"evil": 1}}}, "summary": {}}',
                 '[1, 2]', 'not json'):
        with pytest.raises(checkpoint.CheckpointError):
            checkpoint.load(body, "INC-X", None, None, [], list)


# through the store and the engine --------------------------------------------------------------

@pytest.fixture
def setup(tmp_path, open_test_store, monkeypatch):
    monkeypatch.setenv("RUNBOOK_CHECKPOINT_EVERY", "4")
    catalog = load([str(ROOT / "playbooks")])
    flags = tmp_path / "flags.json"

    def engine(**options):
        host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
        return Engine(open_test_store(**options), VirtualClock(START), host, catalog)

    return engine


def _scripted(engine) -> str:
    """An incident with most kinds of command, a fresh engine checked against the full fold after each."""
    incident = engine.open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
    steps = [lambda: engine.note(incident, "ana", "looking"),
             lambda: engine.acknowledge(incident, "ana"),
             lambda: engine.clock.advance(400) or engine.tick(incident),
             lambda: engine.degrade(incident, "ana", "audio-only"),
             lambda: engine.note(incident, "bo", "<b>not html</b>"),
             lambda: engine.assign(incident, "ana", "commander", "ana"),
             lambda: engine.complete(incident, "liz", "open-channel"),  # a message posted, kept in the state
             lambda: engine.clock.advance(320) or engine.tick(incident),
             lambda: engine.complete(incident, "ana"),
             lambda: engine.severity(incident, "ana", "SEV1", "worse"),
             lambda: engine.add_action_item(incident, "ana", "page sooner", "bo"),
             lambda: engine.stage(incident, "ana", "audio-only", "hold", "watching"),
             lambda: engine.clock.advance(2000) or engine.tick(incident),
             lambda: engine.mitigate(incident, "ana"),
             lambda: engine.note(incident, "cy", "better"),
             lambda: engine.resolve(incident, "ana")]
    return incident, steps


def test_fresh_engines_read_checkpoints_that_match_the_full_fold_after_every_command(setup):
    engine = setup()
    incident, steps = _scripted(engine)
    written = set()
    for step in steps:
        step()
        fresh = setup()
        state = fresh.state(incident)
        stored, events, _ = fresh.store.read_record(incident)
        assert state == fold(incident, events, Snapshot.load(stored))
        assert state.tampered == ""
        assert fresh.integrity(incident, full=False).ok and fresh.integrity(incident).ok
        found = fresh.store.checkpoint(incident)
        if found:
            written.add(found["seq"])
    assert len(written) >= 3, written  # several checkpoints were written and read along the way
    last = setup()
    assert isinstance(last.state(incident).events, History)
    assert [e.record.step for e in last.state(incident).messages] == ["open-channel"]


def test_an_altered_checkpoint_is_not_used_and_is_reported(setup, backend):
    engine = setup()
    incident, steps = _scripted(engine)
    for step in steps[:8]:
        step()
    setup().state(incident)
    store = setup().store
    found = store.checkpoint(incident)
    assert found is not None
    truth = fold(incident, store.events(incident), Snapshot.load(store.snapshot(incident)))

    # the body edited, the digest left: not used, the full fold is shown, and every reader says so
    forged = found["body"].replace('"acknowledged_by":"ana"', '"acknowledged_by":"mallory"')
    assert forged != found["body"]
    store.save_checkpoint(incident, found["seq"], found["chain_hash"], forged, found["digest"], found["mac"])
    fresh = setup()
    state = fresh.state(incident)
    assert untampered(state) == truth and state.acknowledged_by == "ana"
    assert "checkpoint" in state.tampered and "altered" in state.tampered
    assert not fresh.integrity(incident, full=False).ok and not fresh.integrity(incident).ok

    # the digest recomputed too (anyone with write access and no chain key): the full check folds
    # the log and finds the checkpoint is not what it folds to
    digest = checkpoint.digest(incident, found["seq"], found["chain_hash"], forged)
    store.save_checkpoint(incident, found["seq"], found["chain_hash"], forged, digest, "")
    problems = setup().integrity(incident).problems
    assert any("not what the events before it fold to" in p for p in problems), problems

    # moved to another place in the chain: its event's hash differs
    store.save_checkpoint(incident, found["seq"] - 1, found["chain_hash"], found["body"],
                          checkpoint.digest(incident, found["seq"] - 1, found["chain_hash"], found["body"]), "")
    fresh = setup()
    assert untampered(fresh.state(incident)) == truth and "hash differs" in fresh.state(incident).tampered


def test_with_a_chain_key_a_checkpoint_must_carry_its_signature(setup, tmp_path):
    key = b"k" * 32
    engine = setup(key=key)
    incident, steps = _scripted(engine)
    for step in steps[:8]:
        step()
    store = setup(key=key).store
    setup(key=key).state(incident)
    found = store.checkpoint(incident)
    assert found["mac"] and found["mac"] == checkpoint.sign(key, found["digest"])
    truth = fold(incident, store.events(incident), Snapshot.load(store.snapshot(incident)))

    forged = found["body"].replace('"acknowledged_by":"ana"', '"acknowledged_by":"mallory"')
    digest = checkpoint.digest(incident, found["seq"], found["chain_hash"], forged)
    store.save_checkpoint(incident, found["seq"], found["chain_hash"], forged, digest, "0" * 64)
    state = setup(key=key).state(incident)
    assert untampered(state) == truth and "signature" in state.tampered

    # unsigned (written before the key existed): quietly not used, and signed again
    store.save_checkpoint(incident, found["seq"], found["chain_hash"], found["body"], found["digest"], "")
    state = setup(key=key).state(incident)
    assert state == truth and state.tampered == ""


def _noted(tmp_path, monkeypatch):
    """An incident on a SQLite file with 8 notes, a checkpoint every 3 events."""
    monkeypatch.setenv("RUNBOOK_CHECKPOINT_EVERY", "3")
    catalog = load([str(ROOT / "playbooks")])
    db = tmp_path / "db.sqlite"
    engine = Engine(open_store(str(db)), VirtualClock(START), None, catalog)
    incident = engine.open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
    for n in range(8):
        engine.note(incident, "ana", f"note {n}")
    return catalog, db, engine, incident


def test_a_checkpoint_past_the_end_of_the_log_is_reported(tmp_path, monkeypatch):
    catalog, db, _engine, incident = _noted(tmp_path, monkeypatch)
    Engine(open_store(str(db)), VirtualClock(START), None, catalog).state(incident)
    last = open_store(str(db)).checkpoint(incident)["seq"]
    with sqlite3.connect(db) as conn:  # the last events deleted, the summary made to agree
        conn.execute("DELETE FROM events WHERE incident = ? AND seq >= ?", [incident, last - 1])
        conn.execute("UPDATE incidents SET last_seq = ? WHERE id = ?", [last - 2, incident])
    state = Engine(open_store(str(db)), VirtualClock(START), None, catalog).state(incident)
    assert state.last_seq == last - 2 and "past the log's end" in state.tampered


def test_a_checkpoint_that_cannot_be_kept_costs_nothing_but_time(setup):
    from runbook.store import StoreError

    engine = setup()
    tries = []

    def refused(*args):
        tries.append(args[1])
        raise StoreError("permission denied for table checkpoints")

    engine.store.save_checkpoint = refused
    incident, steps = _scripted(engine)
    for step in steps:
        step()
    state = engine.state(incident)
    stored, events, _ = engine.store.read_record(incident)
    assert state == fold(incident, events, Snapshot.load(stored)) and state.tampered == ""
    assert engine.store.checkpoint(incident) is None
    assert tries and all(b - a >= 4 for a, b in pairwise(tries))  # tried once per EVERY events


# found in review --------------------------------------------------------------------------------

def test_an_event_edited_in_place_is_not_signed_into_a_checkpoint(tmp_path, monkeypatch):
    """The load's quick checks leave the hashes to `verify`; a checkpoint written over an event
    edited in place (hash and signature left) would hide it from every screen, which check from
    the checkpoint on. It is not written, and the state is marked altered (nothing is run for it)."""
    monkeypatch.setenv("RUNBOOK_CHECKPOINT_EVERY", "4")
    catalog, db, key = load([str(ROOT / "playbooks")]), tmp_path / "db.sqlite", b"k" * 32

    def engine():
        return Engine(open_store(str(db), key=key), VirtualClock(START), None, catalog)

    incident = engine().open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
    engine().acknowledge(incident, "ana")
    with sqlite3.connect(db) as conn:  # without the key: the actor changed, the hash and signature kept
        conn.execute("UPDATE events SET actor = 'mallory' WHERE incident = ? AND type = 'acknowledged'", [incident])
    writer = engine()
    for n in range(6):
        writer.note(incident, "bo", f"note {n}")
    fresh = engine()
    assert "acknowledged" in fresh.state(incident).tampered and "altered" in fresh.state(incident).tampered
    assert not fresh.integrity(incident, full=False).ok and not fresh.integrity(incident).ok


@pytest.mark.parametrize("edit", [
    lambda d: d["state"].update(reminders="@NESTED@"),
    lambda d: d["state"].update(steps={k: "x" for k in d["state"]["steps"]}),
    lambda d: d["state"].update(status=5),
    lambda d: d["state"].update(escalation={"count": "many"}),
    lambda d: d["state"].update(last_seq=str(d["seq"])) or d.update(seq=str(d["seq"])),
    lambda d: d["state"].update(steps={k: {"~": "StepState", "v": {"id": k, "track": 5}} for k in d["state"]["steps"]}),
    lambda d: d.update(summary={}),
    lambda d: d["summary"].pop("last_seq"),
], ids=["nested", "steps-text", "status-number", "escalation-map", "seq-text", "track-number", "summary-empty",
        "summary-no-count"])
def test_a_body_of_the_wrong_shape_with_a_recomputed_digest_is_not_used_and_crashes_nothing(tmp_path, monkeypatch,
                                                                                            edit):
    """Without a chain key anyone who can write the database can recompute a digest: a body that is
    JSON of the closed set but of the wrong shape (or nested past Python's recursion limit) is not
    used; show, the timeline and verify work and verify reports it."""
    from runbook.views import build_view

    monkeypatch.setenv("RUNBOOK_CHECKPOINT_EVERY", "4")
    catalog, db = load([str(ROOT / "playbooks")]), tmp_path / "db.sqlite"

    def engine():
        return Engine(open_store(str(db), key=None), VirtualClock(START), None, catalog)

    incident = engine().open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
    for n in range(6):
        engine().note(incident, "ana", f"note {n}")
    truth = engine().state(incident)
    with sqlite3.connect(db) as conn:
        seq, chain_hash, body = conn.execute("SELECT seq, chain_hash, body FROM checkpoints").fetchone()
        data = json.loads(body)
        edit(data)
        body = json.dumps(data).replace('"@NESTED@"', "[" * 100_000 + "]" * 100_000)
        conn.execute("UPDATE checkpoints SET body = ?, digest = ?",
                     [body, checkpoint.digest(incident, seq, chain_hash, body)])
    assert any("checkpoint" in p for p in engine().integrity(incident).problems)
    fresh = engine()
    state = fresh.state(incident)  # folded from the first event (and a good checkpoint written again)
    assert untampered(state) == untampered(truth)
    build_view(state, START, fresh.integrity(incident, full=False).summary)


def test_a_role_granted_before_the_checkpoints_table_still_reads_incidents(pg_cluster, tmp_path):
    """`GRANT SELECT ON ALL TABLES` covers the tables there were: after an upgrade, before `db
    migrate --grant` is run again, responders cannot read checkpoints; incidents still open."""
    url = pg_cluster.new_schema()
    owner = open_store(url, key=None)
    schema = owner.conn.execute("SELECT current_schema()").fetchone()[0]
    role = f"responder_{schema}"
    owner.conn.execute(f"CREATE ROLE {role} LOGIN")
    owner.grant(role)
    owner.conn.execute(f"REVOKE ALL ON checkpoints FROM {role}")
    catalog = load([str(ROOT / "playbooks")])
    stores = []

    def engine():
        stores.append(open_store(pg_cluster.url_for_schema(schema, user=role), key=None))
        return Engine(stores[-1], VirtualClock(START), None, catalog)

    try:
        incident = engine().open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
        fresh = engine()
        assert fresh.state(incident).tampered == "" and fresh.integrity(incident).ok
        assert fresh.integrity(incident, full=False).ok
    finally:
        for store in stores + [owner]:
            store.close()


def test_listing_reads_followup_as_the_fold_does():
    from runbook.store.common import log_facts_from

    for value, expected in (("true", "follow-up"), ('"0"', "follow-up"), ("[]", "resolved"), ("{}", "resolved"),
                            ("0", "resolved"), ("false", "resolved"), ("null", "resolved"), ("{", "resolved")):
        data = f'{{"followup": {value}}}'
        assert log_facts_from([("I", 2, 2)], [("I", "resolved", data)], [])["I"][2]["status"] == expected, value
        if value != "{":
            assert decode("resolved", json.loads(data)).project("t")["status"] == expected


def test_a_reader_does_not_wait_on_a_busy_database_to_keep_a_checkpoint(tmp_path, monkeypatch):
    catalog, db, engine, incident = _noted(tmp_path, monkeypatch)
    with sqlite3.connect(db, isolation_level=None) as other:
        other.execute("DELETE FROM checkpoints")
        other.execute("BEGIN IMMEDIATE")  # another process is writing
        reader = Engine(open_store(str(db)), VirtualClock(START), None, catalog)
        waits = reader.store.conn.execute("PRAGMA busy_timeout").fetchone()[0]
        state = reader.state(incident)
        other.execute("ROLLBACK")
    assert state.last_seq == engine.state(incident).last_seq and state.tampered == ""
    assert reader.store.checkpoint(incident) is None  # skipped, not waited for
    assert reader.store.conn.execute("PRAGMA busy_timeout").fetchone()[0] == waits
