"""An ask step asks the responder for a parameter's value: the answer is checked like any value,
recorded with the step as its source, and what comes after it (in its track, or waiting for it
in another) uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.catalog.parameters import ParameterError
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


def test_the_answer_is_recorded_with_its_source_and_the_step_done(engine):
    iid = engine.open("volume-filling", "ana").id  # new_size is asked later: not needed at open
    events = engine.complete(iid, "ana", "pick-size", value=" 40Gi ")
    assert [(e.type, e.data) for e in events][:2] == [
        ("parameters_set", {"values": {"new_size": "40Gi"}, "sources": {"new_size": "ask:pick-size"}}),
        ("step_completed", {"step": "pick-size", "track": "main", "outcome": "new_size = 40Gi"})]
    state = engine.state(iid)
    assert state.parameters["new_size"] == "40Gi"
    assert state.parameter_sources["new_size"] == "ask:pick-size"
    assert state.current["main"] == "resized"
    posted = engine.complete(iid, "ana", "resized")
    assert any("Growing data-0 to 40Gi" in str(e.data) for e in posted)


def test_an_ask_step_is_not_done_without_an_answer(engine):
    iid = engine.open("volume-filling", "ana").id
    with pytest.raises(CommandError, match="asks for parameter new_size; answer it with `runbook incident step "
                                           f"{iid} pick-size --done --value VALUE`"):
        engine.complete(iid, "ana", "pick-size")
    assert engine.state(iid).current["main"] == "pick-size"


def test_an_answer_that_does_not_fit_is_refused_in_one_line(engine):
    iid = engine.open("volume-filling", "ana").id
    with pytest.raises(ParameterError, match=r"parameter new_size: '40GB' does not match \^\[0-9\]\+Gi\$ "
                                             r"\(from the answer to an ask step\)"):
        engine.complete(iid, "ana", "pick-size", value="40GB")
    assert "new_size" not in engine.state(iid).parameters


def test_a_value_is_only_for_an_ask_step(engine):
    iid = engine.open("volume-filling", "ana").id
    engine.complete(iid, "ana", "pick-size", value="40Gi")
    with pytest.raises(CommandError, match="step 'resized' is a communicate step; only an ask step takes a value"):
        engine.complete(iid, "ana", "resized", value="x")


def test_a_step_in_another_track_that_needs_the_answer_names_the_ask_step(engine):
    iid = engine.open("volume-filling", "ana").id
    with pytest.raises(CommandError, match="step 'tell' not posted: parameter new_size has no value yet: step "
                                           "'pick-size' asks for it"):
        engine.complete(iid, "ana", "tell")
    engine.complete(iid, "ana", "pick-size", value="40Gi")
    assert any("data-0 is being grown to 40Gi" in str(e.data) for e in engine.complete(iid, "ana", "tell"))


def test_asking_for_an_undeclared_parameter_is_an_error_with_a_suggestion(tmp_path):
    text = (CATALOG / "ask.yaml").read_text().replace("parameter: new_size", "parameter: new_sise")
    (tmp_path / "ask.yaml").write_text(text)
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    problems = load_catalog([str(tmp_path)]).errors
    assert [(p.path, p.message) for p in problems] == [
        ("steps[0].parameter", "step 'pick-size' asks for parameter 'new_sise', which is not declared under "
                               "parameters:; parameters: pvc, new_size; did you mean 'new_size'?")]


def test_cli_answers_with_value_and_shows_the_source(rb):
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "volume-filling").strip()
    refused = rb("incident", "step", iid, "pick-size", "--done", expect=5)
    assert "asks for parameter new_size" in refused
    bad = rb("incident", "step", iid, "pick-size", "--done", "--value", "lots", expect=2)
    assert bad.count("\n") == 1 and "does not match" in bad
    rb("incident", "step", iid, "pick-size", "--done", "--value", "40Gi")
    shown = rb("incident", "show", iid)
    assert "new_size=40Gi (ask:pick-size)" in shown
    assert "40Gi" in rb("incident", "export", iid)


def test_tui_done_on_an_ask_step_shows_the_parameter_form_and_records_the_answer(tmp_path):
    import asyncio

    from pilot_helpers import flat, press, screen_text, settle
    from textual.widgets import Input

    from runbook.store import Store
    from runbook.tui.app import build_app
    from runbook.tui.dialogs.parameters import ParameterForm

    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, load([str(CATALOG)]))
    incident = engine.open("volume-filling", "ana", params={"new_size": "10Gi"}).id
    app = build_app(EngineService(engine), engine.catalog, "ana", incident)

    async def scenario():
        async with app.run_test(size=(130, 44)) as pilot:
            await settle(pilot)
            shown = flat(screen_text(app))
            assert "asks for new_size (the size to grow it to" in shown and "now 10Gi: d answers" in shown
            await press(pilot, "d")
            assert isinstance(app.screen, ParameterForm)
            field = app.screen.query_one("#param-new_size", Input)
            assert field.value == "10Gi"  # its value now is offered
            field.value = "lots"
            await press(pilot, "enter")
            assert "new_size: 'lots' does not match" in flat(screen_text(app))  # the form stays, saying why
            field.value = "40Gi"
            await press(pilot, "enter")
            assert not isinstance(app.screen, ParameterForm)
            state = engine.state(incident)
            assert (state.parameters["new_size"], state.parameter_sources["new_size"]) == ("40Gi", "ask:pick-size")
            assert state.current["main"] == "resized"

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def test_cli_prompts_for_the_answer_on_a_terminal_until_it_fits(rb):
    import shutil
    import subprocess
    import sys

    if shutil.which("script") is None:
        pytest.skip("needs script(1) for a terminal")
    rb.catalogs = [CATALOG]
    iid = rb("incident", "open", "volume-filling", "--param", "new_size=10Gi").strip()
    command = f"{sys.executable} -m runbook --catalog {CATALOG} incident step {iid} --done"
    proc = subprocess.run(["script", "-qec", command, "/dev/null"], input="40GB\n40Gi\n", text=True,
                          capture_output=True, cwd=rb.cwd, env=rb.env, timeout=60)
    assert proc.returncode == 0, proc.stdout
    assert "asks for new_size (the size to grow it to · pattern ^[0-9]+Gi$), now 10Gi" in proc.stdout
    assert "value [10Gi]: Error: '40GB' does not match ^[0-9]+Gi$" in proc.stdout
    assert "parameters: new_size=40Gi (ask:pick-size)" in rb("incident", "show", iid)


def test_simulated_responders_answer_with_the_value_given_else_the_default(tmp_path):
    from runbook.drills.simulate import simulate

    text = (CATALOG / "ask.yaml").read_text().replace('pattern: "^[0-9]+Gi$"}', 'pattern: "^[0-9]+Gi$", default: 20Gi}')
    (tmp_path / "ask.yaml").write_text(text)
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    (tmp_path / "drill.yaml").write_text("""\
apiVersion: runbook/v1
kind: Drill
id: resize-drill
title: Resize a volume
playbook: volume-filling
responders:
  levels: [{answer: 1.0, ack: {distribution: fixed, mean: 1m}}]
  steps: {default: {distribution: fixed, mean: 2m}}
""")
    catalog = load([str(tmp_path)])
    summary = simulate(catalog, catalog.models("Drill")["resize-drill"], runs=3, seed=1)
    # acknowledged after 1m, then pick-size (answered 20Gi), resized and the mitigating step: 2m each
    assert summary["ttm"]["median"] == 60 + 3 * 120
