"""Incident ids as responders type them, through the real `runbook` command: whole or shortened, in
any case, with or without INC-; an empty id is refused, never read as a prefix of every id."""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest

from runbook.catalog.loader import load
from runbook.engine import Engine
from runbook.store import MemoryStore, Store

IDS = ("INC-854ABC", "INC-7K2Q0D", "DRL-7K9F00")


class Said(NamedTuple):
    exit_code: int
    output: str  # what it printed, output then errors


@pytest.fixture
def runbook(rb, fixture_catalog):
    """`runbook ARGS` (the shared `rb` fixture: a child process) on a database holding IDS."""
    with Store(str(rb.db)) as store:
        engine = Engine(store, catalog=load([str(fixture_catalog / "playbooks")]))
        for incident in IDS:
            engine.open("gifts-feature-failing", "ana", incident=incident, drill=incident.startswith("DRL-"))

    def invoke(*args):
        proc = rb.run(*args, expect=None)
        return Said(proc.returncode, proc.stdout + proc.stderr)

    return invoke


def status(runbook, incident: str) -> str:
    return json.loads(runbook("incident", "show", incident, "--json").output)["status"]


def test_the_full_id(runbook):
    result = runbook("incident", "ack", "INC-854ABC")
    assert result.exit_code == 0, result.output
    assert "acknowledged" in result.output
    assert status(runbook, "INC-854ABC") == "acknowledged"


def test_without_inc_as_responders_type_it(runbook):
    result = runbook("incident", "ack", "854")
    assert result.exit_code == 0, result.output
    assert status(runbook, "INC-854ABC") == "acknowledged"
    assert status(runbook, "INC-7K2Q0D") == "open"


@pytest.mark.parametrize("typed", ["INC-85", "inc-85", "inc-854abc", "854abc", "854A"])
def test_a_unique_start_in_any_case(runbook, typed):
    result = runbook("incident", "note", typed, "looking at the gift service")
    assert result.exit_code == 0, result.output
    events = json.loads(runbook("incident", "show", "INC-854ABC", "--json").output)["events"]
    assert any("looking at the gift service" in json.dumps(e) for e in events)


def test_a_drill_id_without_drl(runbook):
    assert json.loads(runbook("incident", "show", "7k9", "--json").output)["incident"] == "DRL-7K9F00"
    assert json.loads(runbook("incident", "show", "drl-7", "--json").output)["incident"] == "DRL-7K9F00"


def test_an_ambiguous_start_lists_the_candidates(runbook):
    result = runbook("incident", "ack", "7k")
    assert result.exit_code == 5
    assert result.output == ("runbook: error: '7k' matches 2 incidents: DRL-7K9F00, INC-7K2Q0D; "
                             "give more of the id\n")
    assert status(runbook, "INC-7K2Q0D") == status(runbook, "DRL-7K9F00") == "open"


@pytest.mark.parametrize("typed", ["", "   "])
def test_an_empty_id_is_refused_not_taken_for_every_incident(runbook, typed):
    for command in (["incident", "ack", typed], ["incident", "show", typed], ["incident", "resolve", typed]):
        result = runbook(*command)
        assert result.exit_code == 2, result.output
        assert result.output.startswith("runbook: error: the incident id is empty; give an id such as")
        assert result.output.count("\n") == 1
    assert {status(runbook, incident) for incident in IDS} == {"open"}


def test_an_unknown_id_suggests_the_close_one(runbook):
    result = runbook("incident", "ack", "inc-854abd")
    assert result.exit_code == 3
    assert result.output == ("runbook: error: no incident 'inc-854abd'; did you mean 'INC-854ABC'? "
                             "(see `runbook incident list --all`)\n")
    far = runbook("incident", "ack", "ZZZ")
    assert far.exit_code == 3 and "did you mean" not in far.output


@pytest.mark.parametrize("make", [lambda tmp_path: Store(str(tmp_path / "db.sqlite")), lambda tmp_path: MemoryStore()],
                         ids=["sqlite", "memory"])
def test_stores_take_the_typed_start_literally(tmp_path, make):
    store = make(tmp_path)
    row = {"playbook": "p", "title": "t", "service": "s", "severity": "SEV1", "drill": 0}
    for incident in ("INC-A_B1", "INC-AXB2", "INC-A%B3"):
        store.create_incident(incident, {"playbook": "p", "hash": "h", "text": "", "documents": {}}, row,
                              [{"ts": "2026-11-30T09:00:00.000000Z", "actor": "ana", "type": "opened", "data": {}}])
    assert store.ids_starting_with("a_", ("INC-",)) == ["INC-A_B1"]
    assert store.ids_starting_with("inc-a%", ("INC-",)) == ["INC-A%B3"]
    assert store.ids_starting_with("a", ("INC-",)) == ["INC-A%B3", "INC-AXB2", "INC-A_B1"]
    assert store.ids_starting_with("a", ()) == []
    store.close()
