"""`when:` on steps and options: a step whose condition does not hold for the incident (its
parameters, the alert labels it opened with, its severity, the symptom that fired) is skipped
when reached, saying why; an option whose condition does not hold is not offered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import open_store

CATALOG = Path(__file__).parent / "lang_catalog"


@pytest.fixture
def engine(tmp_path):
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(), host, load([str(CATALOG)]))
    store.close()


def skipped(engine, iid):
    return {e.data["step"]: e.data["reason"] for e in engine.state(iid).events if e.type == "step_skipped"}


def test_steps_follow_the_parameter_and_the_symptom(engine):
    iid = engine.open("haproxy-backend", "ana", labels={"backend": "canary-web"}).id
    assert engine.state(iid).current["main"] == "canary"
    engine.complete(iid, "ana", "canary")
    # main-fleet and flaps are reached and skipped at once, each saying why; page-db too (SEV2)
    assert skipped(engine, iid) == {
        "main-fleet": "when: parameter backend is 'canary-web', not matches ^(?!canary)",
        "flaps": "when: the symptom that fired is backend-down, not backend-flapping",
        "page-db": "when: severity is SEV2, not SEV1"}
    assert engine.state(iid).current["main"] == "recover"


def test_the_first_step_is_skipped_at_open_when_its_condition_does_not_hold(engine):
    iid = engine.open("haproxy-backend", "ana", symptom="backend-flapping",
                      labels={"backend": "web", "severity": "critical", "env": "prod"}).id
    assert skipped(engine, iid) == {"canary": "when: parameter backend is 'web', not matches ^canary"}
    state = engine.state(iid)
    assert (state.current["main"], state.severity, state.labels["env"]) == ("main-fleet", "SEV1", "prod")
    engine.complete(iid, "ana", "main-fleet")
    assert engine.state(iid).current["main"] == "flaps"
    engine.complete(iid, "ana", "flaps")
    assert engine.state(iid).current["main"] == "page-db"  # SEV1 and env=prod


def test_an_option_not_offered_is_refused_naming_why_and_what_is_offered(engine):
    iid = engine.open("haproxy-backend", "ana", labels={"backend": "web", "env": "staging"}).id
    engine.complete(iid, "ana", "main-fleet")
    assert engine.state(iid).current["main"] == "recover"
    with pytest.raises(CommandError, match=r"option 2 \(Fail over to the other site\) of step 'recover' is not "
                                           r"offered: label env is 'staging', not = prod; offered: 1. Drain the "
                                           r"backend"):
        engine.choose(iid, "ana", "2")
    engine.choose(iid, "ana", "1")
    assert engine.state(iid).current["main"] == "recovered"


def test_an_option_is_offered_when_its_condition_holds(engine):
    iid = engine.open("haproxy-backend", "ana", labels={"backend": "web", "env": "prod"}).id
    engine.complete(iid, "ana", "main-fleet")
    engine.choose(iid, "ana", "2")
    assert engine.state(iid).current["main"] == "recovered"


def test_a_label_not_given_does_not_hold(engine):
    iid = engine.open("haproxy-backend", "ana", labels={"backend": "web", "severity": "critical"}).id
    engine.complete(iid, "ana", "main-fleet")
    assert skipped(engine, iid)["page-db"] == "when: label env has no value"


def test_an_answer_in_the_same_append_decides_the_next_step(tmp_path):
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    (tmp_path / "pb.yaml").write_text("""\
apiVersion: runbook/v1
kind: Playbook
id: sized
title: Sized
service: storage
severity: SEV2
escalation: plain
parameters:
  size: {type: integer}
symptoms: [{id: full, summary: Full}]
steps:
  - {id: ask-size, kind: ask, parameter: size, title: How big?}
  - {id: big, title: Ask for a bigger quota, when: {param: size, above: 100}}
  - {title: Grow it, mitigates: true}
""")
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, load([str(tmp_path)]))
    try:
        small = engine.open("sized", "ana").id
        engine.complete(small, "ana", "ask-size", value="50")
        assert skipped(engine, small) == {"big": "when: parameter size is '50', not > 100"}
        large = engine.open("sized", "ana").id
        engine.complete(large, "ana", "ask-size", value="500")
        assert engine.state(large).current["main"] == "big"
    finally:
        store.close()


@pytest.mark.parametrize(("when", "path", "message"), [
    ("{matches: x}", "steps[0].when",
     "a step's when: needs what it tests: param: NAME, label: NAME, severity: LEVELS or symptom: IDS"),
    ("{param: backnd, equals: x}", "steps[0].when.param",
     "parameter 'backnd' does not exist, known parameters (under parameters:, or captured): backend; "
     "did you mean 'backend'?"),
    ("{severity: [SEV1, SEV9]}", "steps[0].when.severity[1]",
     "severity 'SEV9' does not exist, known severities: SEV1, SEV2, SEV4"),
    ("{symptom: backend-dwn}", "steps[0].when.symptom",
     "symptom 'backend-dwn' does not exist, known symptoms: backend-down, backend-flapping; "
     "did you mean 'backend-down'?"),
    ("{severity: SEV1, above: 3}", "steps[0].when",
     "equals:, matches:, above: and below: test a value: say which with param: NAME or label: NAME"),
    ("{param: backend, label: backend}", "steps[0].when",
     "when: reads either a parameter (param:) or an alert label (label:), not both"),
    ("{param: backend, matches: '(('}", "steps[0].when.matches",
     "invalid regular expression: missing ), unterminated subpattern at position 1"),
])
def test_lint_names_what_is_wrong_in_a_condition(tmp_path, when, path, message):
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    text = (CATALOG / "when.yaml").read_text().replace('when: {param: backend, matches: "^canary"}', f"when: {when}")
    (tmp_path / "when.yaml").write_text(text)
    assert [(p.path, p.message) for p in load_catalog([str(tmp_path)]).errors] == [(path, message)]


def test_cli_show_marks_options_not_offered_and_the_timeline_says_why(rb):
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "haproxy-backend", "--label", "backend=web", "--label", "env=staging").strip()
    rb("incident", "step", iid, "main-fleet", "--done")
    shown = rb("incident", "show", iid)
    assert "2. Fail over to the other site (not offered: label env is 'staging', not = prod)" in shown
    # named by its title, as the timeline names steps
    assert ("step “Check the canary fleet behind ‹backend›” skipped: when: parameter backend is 'web', "
            "not matches ^canary") in rb("incident", "export", iid)
    refused = rb("incident", "choose", iid, "2", expect=5)
    assert refused.count("\n") == 1 and "is not offered" in refused
    outline = rb("show", "haproxy-backend")
    assert "#page-db  (only when severity SEV1 and label env = prod)" in outline
    data = json.loads(rb("incident", "show", iid, "--json"))
    assert data["labels"] == {"backend": "web", "env": "staging"}


def test_tui_lists_an_option_not_offered_with_why(tmp_path):
    import asyncio

    from pilot_helpers import flat, screen_text, settle

    from runbook.store import Store
    from runbook.tui.app import build_app

    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, load([str(CATALOG)]))
    incident = engine.open("haproxy-backend", "ana", labels={"backend": "web", "env": "staging"}).id
    engine.complete(incident, "ana", "main-fleet")
    app = build_app(EngineService(engine), engine.catalog, "ana", incident)

    async def scenario():
        async with app.run_test(size=(160, 44)) as pilot:
            await settle(pilot)
            shown = flat(screen_text(app))
            assert "1. Drain the backend" in shown
            assert "2. Fail over to the other site (not offered: label env is 'staging', not = prod)" in shown

    try:
        asyncio.run(scenario())
    finally:
        store.close()
