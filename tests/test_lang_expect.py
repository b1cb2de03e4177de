"""`expect:` on a command's output: a step passes (a wait holds) by what the command printed — a
pattern, a JSON path's value, a number — and exit statuses listed as findings are answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import open_store

CATALOG = Path(__file__).parent / "lang_catalog"


def catalog_in(folder: Path, state: Path, replace: tuple = ()) -> Path:
    folder.mkdir()
    (folder / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    text = (CATALOG / "expect.yaml").read_text().replace("PYTHON", sys.executable).replace("STATE", str(state))
    for old, new in replace:
        text = text.replace(old, new)
    (folder / "expect.yaml").write_text(text)
    return folder


@pytest.fixture
def world(tmp_path):
    state = tmp_path / "allocations.json"
    state.write_text(json.dumps({"allocations": 2}))
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    clock = VirtualClock()
    engine = Engine(store, clock, host, load([str(catalog_in(tmp_path / "catalog", state))]))
    yield engine, clock, state
    store.close()


def finished(events, step):
    return [(e.type, e.data.get("outcome") or e.data.get("reason")) for e in events
            if e.type in ("step_completed", "step_failed") and e.data["step"] == step]


def test_a_pattern_in_the_output_passes_the_step(world):
    engine, _, _ = world
    iid = engine.open("container-checks", "ana").id
    assert finished(engine.run(iid, "ana", "up"), "up") == [("step_completed", "output matches ^Up : 'Up 3 minutes'")]


def test_an_exit_status_that_is_a_finding_completes_the_step_and_keeps_what_it_found(world):
    engine, _, _ = world
    iid = engine.open("container-checks", "ana").id
    engine.run(iid, "ana", "up")
    events = engine.run(iid, "ana", "fsck")
    assert finished(events, "fsck") == [("step_completed", "finding: exit status 1")]
    state = engine.state(iid)
    assert state.steps["fsck"].exit_code == 1  # the run is recorded as it was
    assert state.parameters["bad_ref"] == "99aa"
    assert state.current["main"] == "drained"


def test_a_wait_holds_when_the_json_value_says_so(world):
    engine, clock, state_file = world
    iid = engine.open("container-checks", "ana").id
    engine.run(iid, "ana", "up")
    engine.run(iid, "ana", "fsck")
    clock.advance(seconds=30)
    polled = [e for e in engine.tick(iid) if e.type == "check_polled"]
    assert [(e.data["ok"], e.data["outcome"]) for e in polled] == [(False, "not-yet")]
    state_file.write_text(json.dumps({"allocations": 0}))
    clock.advance(seconds=30)
    events = engine.tick(iid)
    assert finished(events, "drained")[0][0] == "step_completed"
    assert engine.state(iid).current["main"] == "exited"


def test_exit_status_zero_with_the_wrong_output_fails_saying_what_was_expected(world):
    engine = world[0]
    iid = engine.open("container-checks", "ana").id
    engine.skip(iid, "ana", "up", "seen")
    engine.skip(iid, "ana", "fsck", "seen")
    engine.skip(iid, "ana", "drained", "seen")
    events = engine.run(iid, "ana", "exited")
    assert finished(events, "exited") == [
        ("step_failed", "expected output matches ^Up , got 'Exited (1) 2 minutes ago'")]
    assert engine.state(iid).mitigated_at is None


def test_a_missing_json_path_says_where_it_stopped(tmp_path):
    state = tmp_path / "allocations.json"
    state.write_text(json.dumps({"jobs": {}}))
    folder = catalog_in(tmp_path / "catalog", state, (("expect: {json: allocations, equals: 0}",
                                                       "expect: {json: jobs.web.allocations, below: 1}"),))
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, load([str(folder)]))
    try:
        iid = engine.open("container-checks", "ana").id
        engine.skip(iid, "ana", "up", "seen")
        engine.skip(iid, "ana", "fsck", "seen")
        from runbook.engine.expectations import judge
        step = engine.state(iid).playbook.step("drained")
        assert judge(step, True, 0, state.read_text(), "") == (
            False, "expected jobs.web.allocations < 1: jobs.web.allocations: no 'web' under jobs", True)
    finally:
        store.close()


@pytest.mark.parametrize(("old", "new", "path", "message"), [
    ('    title: Make sure the container is Up\n    run: ["{python}", "-c", "print(\'Up 3 minutes\')"]\n'
     '    with: {python: PYTHON}\n', "    title: Make sure the container is Up\n", "steps[0].expect",
     "expect: tests what run: or uses: printed, but this step has neither"),
    ('expect: {matches: "^Up "}\n  - id: fsck', 'expect: {matches: "(("}\n  - id: fsck', "steps[0].expect.matches",
     "invalid regular expression: missing ), unterminated subpattern at position 1"),
    ("    every: 30s\n", "    every: 30s\n    not_yet: [1]\n", "steps[2].expect.findings",
     "exit status 1 is a finding and also listed under not_yet:; give it one meaning"),
])
def test_lint_names_what_is_wrong_with_an_expectation(tmp_path, old, new, path, message):
    text = (CATALOG / "expect.yaml").read_text()
    assert old in text
    if "not_yet" in new:  # a finding on the wait, to collide with its not_yet
        text = text.replace("expect: {json: allocations, equals: 0}", "expect: {json: allocations, equals: 0, "
                                                                      "findings: [1]}")
    (tmp_path / "expect.yaml").write_text(text.replace(old, new))
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    assert [(p.path, p.message) for p in load_catalog([str(tmp_path)]).errors] == [(path, message)]


def test_cli_show_says_what_each_step_expects_and_the_run_records_the_finding(rb, tmp_path):
    state = tmp_path / "allocations.json"
    state.write_text(json.dumps({"allocations": 0}))
    rb.catalogs = [catalog_in(tmp_path / "catalog", state)]
    outline = rb("show", "container-checks")
    assert "(runs " in outline and "expects output matches ^Up )" in outline
    assert "exit status 1 is a finding" in outline and "expects allocations = 0" in outline
    iid = rb("incident", "open", "container-checks").strip()
    rb("incident", "step", iid, "up", "--run")
    out = rb("incident", "step", iid, "fsck", "--run")
    assert "step fsck done: finding: exit status 1" in out
    assert "step drained done" in rb("incident", "step", iid, "drained", "--run")
    assert "step exited failed: expected output matches ^Up , got 'Exited (1) 2 minutes ago'" in rb(
        "incident", "step", iid, "exited", "--run", expect=4, stream="stdout")
