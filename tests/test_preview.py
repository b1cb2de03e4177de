"""Titles, prompts and commands read as they will run wherever playbooks and incidents are listed:
`runbook show`, `list`, `match` and the TUI's list fill a playbook's defaults and show ‹name› for
what only an incident knows; an incident's title has its values (catalog/preview.py, the one
renderer of catalog/templates.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook.catalog import load, preview
from runbook.engine import Engine, VirtualClock
from runbook.store import Store

CATALOG = Path(__file__).parent / "preview_catalog"


@pytest.fixture
def catalog():
    loaded = load([str(CATALOG)])
    assert [p.format() for p in loaded.problems] == []
    return loaded


def test_a_playbook_reads_with_its_defaults_and_placeholders_for_incident_values(catalog):
    pb = catalog.models("Playbook")["pvc-filling"]
    assert preview.title(pb) == "PVC media/‹pvc› filling up"
    grow = pb.step("grow")
    assert preview.text(pb, grow.approval.prompt, grow) == "Grow media/‹pvc› to 20Gi?"
    assert preview.text(pb, pb.step("look").title) == "Look at ‹pvc› in media (‹severity›)"
    assert preview.command(pb, grow) == \
        'kubectl -n media patch pvc ‹pvc› -p {"spec":{"resources":{"requests":{"storage":"20Gi"}}}}'


def test_an_incident_title_has_its_values_and_a_placeholder_for_one_not_known(catalog, tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    engine = Engine(store, VirtualClock(), None, catalog)
    known = engine.open("pvc-filling", "ana", params={"pvc": "uploads-0"})
    unknown = engine.open("pvc-filling", "ana")
    assert known.title == "PVC media/uploads-0 filling up"
    assert unknown.title == "PVC media/‹pvc› filling up"  # never the raw {pvc}
    assert {row["title"] for row in engine.list()} == {known.title, unknown.title}
    assert all(row["log_intact"] for row in engine.list())
    store.close()


@pytest.fixture
def rb(rb, tmp_path):
    rb.env["RUNBOOK_CATALOG"], rb.cwd = str(CATALOG), tmp_path
    return rb


def test_show_list_match_and_incident_list_print_what_will_run(rb):
    shown = rb("show", "pvc-filling")
    assert shown.startswith("PVC media/‹pvc› filling up\n")
    assert "   1. [check] Look at ‹pvc› in media (‹severity›)  #look" in shown
    assert ("needs approval by commander: Grow media/‹pvc› to 20Gi?; runs kubectl -n media patch pvc ‹pvc› -p "
            '{"spec":{"resources":{"requests":{"storage":"20Gi"}}}}') in shown
    assert "every 30m: Tell ‹commander› how full ‹pvc› is" in shown
    assert "{" + "pvc}" not in shown and "{" + "namespace}" not in shown
    assert "Playbook          pvc-filling  PVC media/‹pvc› filling up" in rb("list")
    assert "1. pvc-filling  PVC media/‹pvc› filling up" in rb("match", "volume", "full")
    assert json.loads(rb("match", "volume", "full", "--json"))[0]["title"] == "PVC media/‹pvc› filling up"
    assert "pvc-filling  SEV2  PVC media/‹pvc› filling up" in rb()
    rb("incident", "open", "pvc-filling", "--param", "pvc=uploads-0", "--param", "namespace=chat")
    rb("incident", "open", "pvc-filling")
    listed = rb("incident", "list")
    assert "PVC chat/uploads-0 filling up" in listed and "PVC media/‹pvc› filling up" in listed
