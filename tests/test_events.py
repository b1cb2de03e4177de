"""The event vocabulary: every stored type has a record with a fold step and a description, a
misspelt type or field fails loudly, and logs written by release 0.1.0 still load and verify."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from runbook.engine import Engine, VirtualClock
from runbook.engine.events import RECORDS, EventFormatError, EventRecord, NoteAdded, StepCompleted, decode, record
from runbook.engine.metrics import describe, export_json, export_markdown, metrics, verify
from runbook.engine.transition import Done, Failed, Skipped, finish
from runbook.store import Store

# Written by runbook 0.1.0 (commit 2259778) driving the engine through every event type it had:
# an incident with a wait that timed out, a retried step, a decision, an approval, a degradation
# applied, restored, failed and resolved; an automated action; intents settled by reconcile; a
# drill with injects.
LEGACY = Path(__file__).parent / "fixtures" / "legacy-0.1.0.db"
LEGACY_INCIDENTS = ("INC-LEGACY1", "DRL-LEGACY2", "INC-LEGACY3", "INC-LEGACY4")


@pytest.fixture
def legacy(tmp_path):
    path = tmp_path / "legacy.db"
    shutil.copy(LEGACY, path)
    store = Store(str(path))
    yield Engine(store, VirtualClock())
    store.close()


def test_every_type_in_a_legacy_log_has_a_record_and_every_record_a_fold_and_description(legacy):
    stored = {e.type for iid in LEGACY_INCIDENTS for e in legacy.store.events(iid)}
    assert len(stored) == 28
    assert stored <= set(RECORDS), f"stored types without a record: {sorted(stored - set(RECORDS))}"
    for name, cls in RECORDS.items():
        assert cls.type == name
        assert "fold" in cls.__dict__ and "describe" in cls.__dict__, name
        assert cls.loud in (None, "warning", "error"), name


def test_legacy_logs_load_verify_and_read_the_same(legacy):
    for iid in LEGACY_INCIDENTS:
        ok, message = verify(legacy.store.events(iid))
        assert ok, f"{iid}: {message}"
        state = legacy.state(iid)
        assert len(state.events) == legacy.store.last_seq(iid)
        assert all(describe(e) for e in state.events)
        for event in state.events:  # what a record writes back holds every stored field unchanged
            written = event.record.to_data()
            assert {k: written[k] for k in event.data} == event.data
        export_markdown(state)
        export_json(state)
    one = legacy.state("INC-LEGACY1")
    assert one.status == "resolved" and one.severity == "SEV1"
    assert [n.data["text"] for n in one.notes] == ["looking | at dashboards"]
    assert not one.degradations["audio-only"].applied and one.degradations["audio-only"].pending is None
    assert metrics(one).highest_level == 2 and metrics(one).tta is not None
    assert legacy.state("DRL-LEGACY2").injects == 2
    assert legacy.state("INC-LEGACY3").current == {"main": None}


def test_a_misspelt_type_or_field_fails_with_a_clear_message():
    with pytest.raises(EventFormatError, match="event 7: unknown event type 'step_complete'"):
        decode("step_complete", {"step": "a", "track": "main"}, 7)
    with pytest.raises(EventFormatError, match="unknown field 'stepp'"):
        decode("step_completed", {"stepp": "a", "track": "main"})
    with pytest.raises(EventFormatError, match="lacks 'track'"):
        decode("step_completed", {"step": "a"})
    assert decode("step_completed", {"step": "a", "track": "main"}) == StepCompleted("a", "main")


def test_a_record_without_a_fold_step_or_description_is_refused_at_definition():
    with pytest.raises(TypeError, match="must define fold"):
        @record("half_done")
        class HalfDone(EventRecord):
            def describe(self):
                return "half"
    assert "half_done" not in RECORDS


def test_records_are_frozen_and_the_engine_refuses_bare_tuples(legacy):
    note = NoteAdded("hello")
    with pytest.raises(dataclasses.FrozenInstanceError):
        note.text = "changed"
    assert note.to_data() == {"text": "hello"}
    with pytest.raises(TypeError, match="appends event records"):
        legacy.command("INC-LEGACY3", "ana", lambda state: [("note_added", {"text": "x"})])
    assert legacy.note("INC-LEGACY3", "ana", "a new note on an old log")[0].type == "note_added"
    ok, message = verify(legacy.store.events("INC-LEGACY3"))
    assert ok, message


def test_the_step_transition_is_pure(legacy):
    state = legacy.state("DRL-LEGACY2")
    step = state.playbook.step("fix")
    before = (dict(state.current), state.last_seq, state.mitigated_at)
    done = finish(state, step, Done("fixed"))
    assert [r.type for r in done] == ["step_completed", "track_finished"]  # already mitigated: no second one
    assert [r.type for r in finish(state, step, Skipped("later"))] == ["step_skipped", "track_finished"]
    assert [r.type for r in finish(state, step, Failed("broke"))] == ["step_failed"]  # no on_fail: it stays
    assert (dict(state.current), state.last_seq, state.mitigated_at) == before
