"""Parameters, roles and texts shared between playbooks: a `Shared` document, taken with
{from: ID}; expanded when the catalog is read, so an incident's snapshot holds them as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runbook.catalog import load, load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

CATALOG = Path(__file__).parent / "lang_catalog"
HOWTO = "Edit the claim's spec.resources.requests.storage to the new size"


@pytest.fixture
def engine(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    yield Engine(store, VirtualClock(), host, load([str(CATALOG)]))
    store.close()


def test_the_playbook_takes_the_shared_definitions(engine):
    pb = engine.catalog.find("claim-full", "Playbook").model
    claim = pb.parameters["claim"]
    assert (claim.summary, claim.label, claim.pattern) == ("The persistent volume claim", "persistentvolumeclaim",
                                                           "^[a-z0-9-]+$")
    assert pb.parameters["namespace"].default == "kube-system"  # given beside from:, it wins
    assert pb.parameters["namespace"].summary == "The claim's namespace"
    assert (pb.roles["storage-sme"].title, pb.roles["storage-sme"].many) == ("Storage experts", True)
    assert pb.description.startswith(HOWTO) and pb.step("resize").instructions.startswith(HOWTO)


def test_an_incident_runs_on_them_as_they_were_at_open(engine, tmp_path):
    iid = engine.open("claim-full", "ana", labels={"persistentvolumeclaim": "data-0"}).id
    engine.assign(iid, "ana", "storage-sme", "bo")
    engine.assign(iid, "ana", "storage-sme", "cy")
    state = engine.state(iid)
    assert state.parameters == {"claim": "data-0", "namespace": "kube-system"}
    assert state.playbook.step("resize").instructions.startswith(HOWTO)
    # a later edit of the Shared document changes nothing for the running incident
    edited = tmp_path / "catalog"
    edited.mkdir()
    for name in ("policies.yaml", "shared.yaml"):
        (edited / name).write_text((CATALOG / name).read_text().replace("Edit the claim's", "Patch the claim's"))
    engine.catalog = load([str(edited)])
    assert engine.catalog.find("claim-full", "Playbook").model.step("resize").instructions.startswith("Patch")
    assert engine.state(iid).playbook.step("resize").instructions.startswith(HOWTO)


def test_a_label_checked_against_the_shared_pattern(engine):
    from runbook.errors import RunbookError

    with pytest.raises(RunbookError, match="claim"):
        engine.open("claim-full", "ana", params={"claim": "Not Valid!"})


def catalog_with(tmp_path, old, new):
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    text = (CATALOG / "shared.yaml").read_text()
    assert old in text
    (tmp_path / "shared.yaml").write_text(text.replace(old, new))
    return [(p.path, p.message) for p in load_catalog([str(tmp_path)]).errors]


def test_lint_names_an_unknown_shared_document(tmp_path):
    assert catalog_with(tmp_path, "  claim: {from: k8s-volumes}", "  claim: {from: k8s-volume}") == [
        ("parameters.claim.from", "Shared document 'k8s-volume' does not exist, known Shared documents: k8s-volumes; "
                                  "did you mean 'k8s-volumes'?")]


def test_lint_names_an_unknown_parameter_role_or_text(tmp_path):
    errors = catalog_with(tmp_path, "  claim: {from: k8s-volumes}\n", "  claims: {from: k8s-volumes}\n")
    assert ("parameters.claims", "Shared document 'k8s-volumes' has no parameter 'claims', its parameters: claim, "
                                 "namespace; did you mean 'claim'?") in errors
    assert catalog_with(tmp_path, "instructions: {from: k8s-volumes, text: resize-howto}",
                        "instructions: {from: k8s-volumes, text: resize}") == [
        ("steps[0].instructions.text", "Shared document 'k8s-volumes' has no text 'resize', its texts: resize-howto; "
                                       "did you mean 'resize-howto'?")]
    assert catalog_with(tmp_path, "  storage-sme: {from: k8s-volumes}", "  sme: {from: k8s-volumes}") == [
        ("roles.sme", "Shared document 'k8s-volumes' has no role 'sme', its roles: storage-sme"),
        ("steps[0].role", "role 'storage-sme' does not exist, known roles (under roles:): sme")]


def test_a_shared_document_does_not_take_from_another(tmp_path):
    assert catalog_with(tmp_path, "  namespace: {summary: The claim's namespace, default: default}",
                        "  namespace: {from: k8s-volumes}") == [
        ("parameters.namespace.from", "a Shared document's definitions are written out here; from: is for "
                                      "playbooks taking them")]


def test_a_role_without_a_title_still_needs_one_unless_it_is_shared(tmp_path):
    errors = catalog_with(tmp_path, "  storage-sme: {from: k8s-volumes}", "  storage-sme: {many: true}")
    assert errors and "title" in errors[0][1]


def test_the_schema_is_published_and_show_prints_the_expanded_playbook(rb):
    rb.catalogs = [CATALOG]
    schema = json.loads(rb("schema", "Shared"))
    assert schema["title"] == "runbook Shared"
    iid = rb("incident", "open", "claim-full", "--param", "claim=data-1").strip()
    shown = rb("incident", "show", iid)
    assert "parameters: claim=data-1 (param), namespace=kube-system (default)" in shown
    assert "roles: storage-sme: (nobody)" in shown


def test_a_broken_shared_definition_is_reported_once_and_still_known_to_its_playbooks(tmp_path):
    errors = catalog_with(tmp_path, "  namespace: {summary: The claim's namespace, default: default}",
                          "  namespace: {summary: The claim's namespace, type: float}")
    assert len(errors) == 1 and errors[0][0] == "parameters.namespace.type"
