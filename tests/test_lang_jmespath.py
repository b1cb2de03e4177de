"""JSON selection in captures with JMESPath: one item out of a list by a field, recorded like any
capture; a selection that finds nothing or several values is a miss saying so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.catalog.captures import extract
from runbook.catalog.models import Capture
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import open_store

CATALOG = Path(__file__).parent / "lang_catalog"
PVS = {"items": [
    {"metadata": {"name": "pv-a"}, "spec": {"claimRef": {"name": "logs"}, "capacity": {"storage": "5Gi"}}},
    {"metadata": {"name": "pv-b"}, "spec": {"claimRef": {"name": "data-0"}, "capacity": {"storage": "20Gi"}}},
]}


def test_a_filter_selects_the_one_item_and_the_step_records_it(tmp_path):
    pvs = tmp_path / "pvs.json"
    pvs.write_text(json.dumps(PVS))
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    (tmp_path / "c" / "pb.yaml").write_text((CATALOG / "jmespath.yaml").read_text()
                                            .replace("PYTHON", sys.executable).replace("PVS", str(pvs)))
    store = open_store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, VirtualClock(), host, load([str(tmp_path / "c")]))
    try:
        iid = engine.open("pv-of-claim", "ana").id
        engine.run(iid, "ana", "find-pv")
        state = engine.state(iid)
        assert {n: state.parameters[n] for n in ("pv", "size")} == {"pv": "pv-b", "size": "20Gi"}
        assert state.parameter_sources["pv"] == "capture:find-pv"
    finally:
        store.close()


@pytest.mark.parametrize(("expression", "value", "why"), [
    ("items[?spec.claimRef.name=='nope'].metadata.name", None,
     "items[?spec.claimRef.name=='nope'].metadata.name selects nothing"),
    ("items[].metadata.name", None, "items[].metadata.name selects 2 values, expected one (add | [0] for the first)"),
    ("items[].metadata.name | [0]", "pv-a", ""),
    ("items[1].spec", None, "items[1].spec is an object, not a text or a number"),
    ("length(items)", "2", ""),
])
def test_what_a_selection_takes_or_why_not(expression, value, why):
    assert extract(Capture("x", jmespath=expression), json.dumps(PVS)) == (("x", value, why))


def test_output_that_is_not_json_is_a_miss():
    got = extract(Capture("x", jmespath="a"), "not json")
    assert got.value is None and got.why.startswith("the output is not JSON")


def test_lint_reports_an_invalid_expression_and_two_selectors(tmp_path):
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    text = (CATALOG / "jmespath.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text.replace("items[?spec.claimRef.name=='data-0'].metadata.name",
                                                  "items[?spec.claimRef.name=="))
    problems = load_catalog([str(tmp_path)]).errors
    assert [(p.path, p.message) for p in problems] == [
        ("steps[0].capture.pv.jmespath", "invalid JMESPath expression: Incomplete expression at character 27")]
    (tmp_path / "a.yaml").write_text(text.replace('pv: {jmespath:', 'pv: {json: items.0, jmespath:'))
    problems = load_catalog([str(tmp_path)]).errors
    assert problems[0].path == "steps[0].capture.pv" and "expected exactly one of {regex: PATTERN}" in \
        problems[0].message
