"""Sibling alerts: alerts of one symptom and group (the warning and the critical of one rule) join
the open incident instead of opening a second one, and a higher severity raises it."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from runbook.catalog import load, load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.engine.intake import Alert
from runbook.plugins import PluginHost
from runbook.serve.app import ServeConfig, build_app
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import open_store

CATALOG = Path(__file__).parent / "lang_catalog"
TOKEN = "t0ken-for-the-sibling-tests"
FILLING = "KubePersistentVolumeFillingUp"
STARTS = "2026-12-07T10:00:00Z"


def make_engine(store, tmp_path):
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None), entry_points=False)
    return Engine(store, VirtualClock(), host, load([str(CATALOG)]))


@pytest.fixture
def engine(open_test_store, tmp_path):
    """The ledger on both backends: SQLite, and PostgreSQL (a schema of its own; tests/conftest.py)."""
    return make_engine(open_test_store(key=None), tmp_path)


def alert(fingerprint, severity, claim="data-0", name=FILLING, status="firing", starts=STARTS, **labels):
    return Alert(fingerprint, status, starts, {"alertname": name, "severity": severity,
                                               "persistentvolumeclaim": claim, **labels})


def received(engine, iid):
    return [e.record for e in engine.state(iid).events if e.type == "alert_received"]


def raised(engine, iid):
    return [(e.record.previous, e.record.to, e.record.reason) for e in engine.state(iid).events
            if e.type == "severity_changed"]


def test_a_critical_sibling_joins_the_warning_s_incident_and_raises_it(engine):
    (warning,) = engine.receive_alerts([alert("w1", "warning")])
    assert warning.outcome == "opened" and engine.state(warning.incident).severity == "SEV2"
    (critical,) = engine.receive_alerts([alert("c1", "critical")])
    assert (critical.outcome, critical.incident) == ("attached", warning.incident)
    assert critical.reason == (f"a sibling of {FILLING} (alertname={FILLING}, persistentvolumeclaim=data-0) "
                               "joins its incident")
    assert len(engine.store.incidents()) == 1
    state = engine.state(warning.incident)
    assert state.severity == "SEV1"
    assert raised(engine, warning.incident) == [
        ("SEV2", "SEV1", f"sibling alert {FILLING} joined with label severity=critical")]
    joined = received(engine, warning.incident)[1]
    assert joined.sibling == {"alertname": FILLING, "persistentvolumeclaim": "data-0"} and not joined.opened
    assert "joined this incident as a sibling (alertname=KubePersistentVolumeFillingUp, " \
           "persistentvolumeclaim=data-0)" in joined.describe()
    # a repeat of the sibling adds nothing
    before = state.last_seq
    assert [o.outcome for o in engine.receive_alerts([alert("c1", "critical")])] == ["repeat"]
    assert engine.state(warning.incident).last_seq == before


def test_a_lower_sibling_joins_without_lowering_the_severity(engine):
    (critical,) = engine.receive_alerts([alert("c1", "critical")])
    (warning,) = engine.receive_alerts([alert("w1", "warning")])
    assert (warning.outcome, warning.incident) == ("attached", critical.incident)
    assert engine.state(critical.incident).severity == "SEV1" and raised(engine, critical.incident) == []


def test_another_group_opens_its_own_incident(engine):
    first, other = engine.receive_alerts([alert("w1", "warning"), alert("w2", "warning", claim="logs-0")])
    assert first.outcome == other.outcome == "opened" and first.incident != other.incident


def test_siblings_in_one_delivery_make_one_incident_at_the_higher_severity(engine):
    warning, critical = engine.receive_alerts([alert("w1", "warning"), alert("c1", "critical")])
    assert warning.outcome == "opened" and (critical.outcome, critical.incident) == ("attached", warning.incident)
    assert [r.fingerprint for r in received(engine, warning.incident)] == ["w1", "c1"]
    assert engine.state(warning.incident).severity == "SEV1"


def test_a_sibling_of_an_incident_still_to_open_is_recorded_by_its_opener(engine):
    """The warning's incident is reserved (pending) when the critical arrives; whoever opens it
    records the sibling, once."""
    from runbook.engine import intake
    from runbook.engine import owner as owners

    held = owners.claim()
    try:
        (pending,) = intake.record(engine, [alert("w1", "warning")], held)
        (critical,) = engine.receive_alerts([alert("c1", "critical")])
        assert (critical.outcome, critical.incident) == ("attached", pending.stored["incident"])
        assert engine.store.incidents() == []
        (opened,) = intake.act(engine, [pending], held)
    finally:
        owners.release(held)
    assert opened.outcome == "opened"
    assert [(r.fingerprint, r.sibling is not None) for r in received(engine, opened.incident)] == [
        ("w1", False), ("c1", True)]
    assert engine.state(opened.incident).severity == "SEV1"


def test_a_sibling_of_a_resolved_incident_opens_a_new_one(engine):
    (warning,) = engine.receive_alerts([alert("w1", "warning")])
    engine.resolve(warning.incident, "ana")
    (critical,) = engine.receive_alerts([alert("c1", "critical")])
    assert critical.outcome == "opened" and critical.incident != warning.incident


def test_group_by_names_the_labels_that_make_one_group(engine):
    inodes = "KubePersistentVolumeInodesFillingUp"
    first, second, elsewhere = engine.receive_alerts([
        alert("i1", "warning", name=inodes, namespace="web"),
        alert("i2", "critical", name=inodes, claim="data-1", namespace="web"),
        alert("i3", "warning", name=inodes, namespace="jobs")])
    assert (second.outcome, second.incident) == ("attached", first.incident)
    assert received(engine, first.incident)[1].sibling == {"namespace": "web"}
    assert elsewhere.outcome == "opened" and elsewhere.incident != first.incident


def test_the_incident_resolves_only_once_every_sibling_has(engine):
    (warning,) = engine.receive_alerts([alert("w1", "warning")])
    engine.receive_alerts([alert("c1", "critical")])
    (done,) = engine.receive_alerts([alert("c1", "critical", status="resolved")])
    assert done.reason == "other alerts of the incident still fire"
    assert not engine.state(warning.incident).resolved
    engine.receive_alerts([alert("w1", "warning", status="resolved")])
    assert engine.state(warning.incident).resolved


def test_serve_joins_the_sibling_and_says_so(engine):
    def body(*alerts):
        return {"version": "4", "status": "firing", "receiver": "runbook", "groupKey": "{}:{}",
                "alerts": [{"status": "firing", "labels": a.labels, "annotations": {}, "startsAt": a.starts_at,
                            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": a.fingerprint}
                           for a in alerts]}

    app = build_app(EngineService(engine), ServeConfig(TOKEN, max_body=64 * 1024, tick_every=0))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as client:
        first = client.post("/alertmanager", json=body(alert("aa01", "warning")), headers=headers)
        client.app.state.service.ticks.call(lambda engine: None)
        second = client.post("/alertmanager", json=body(alert("cc01", "critical")), headers=headers)
        client.app.state.service.ticks.call(lambda engine: None)
    incident = first.json()["outcomes"][0]["incident"]
    (joined,) = second.json()["outcomes"]
    assert (joined["outcome"], joined["incident"]) == ("attached", incident)
    assert joined["reason"].startswith(f"a sibling of {FILLING}")
    assert engine.state(incident).severity == "SEV1"


def test_group_by_the_severity_label_is_an_error(tmp_path):
    (tmp_path / "policies.yaml").write_text((CATALOG / "policies.yaml").read_text())
    (tmp_path / "p.yaml").write_text((CATALOG / "siblings.yaml").read_text().replace(
        "group_by: [namespace]", "group_by: [namespace, severity]"))
    assert [(p.path, p.message) for p in load_catalog([str(tmp_path)]).errors] == [
        ("symptoms[1].group_by[1]", "label 'severity' carries the severity, so grouping by it keeps the warning and "
                                    "the critical of one condition in two incidents; drop it (a sibling's higher "
                                    "severity raises the incident it joins)")]


def test_cli_show_and_alerts_say_the_sibling_joined(rb, tmp_path):
    rb.catalogs = [CATALOG]
    store = open_store(str(tmp_path / "db.sqlite"))  # the database rb's commands use
    try:
        engine = make_engine(store, tmp_path)
        (warning,) = engine.receive_alerts([alert("w1", "warning")])
        engine.receive_alerts([alert("c1", "critical")])
    finally:
        store.close()
    shown = rb("incident", "show", warning.incident)
    assert "joined this incident as a sibling" in shown
    assert "severity SEV2 → SEV1 (sibling alert KubePersistentVolumeFillingUp joined" in shown
    assert "a sibling of KubePersistentVolumeFillingUp" in rb("alerts")


def test_cli_show_playbook_says_how_siblings_group(rb):
    rb.catalogs = [CATALOG]
    shown = rb("show", "volume-siblings")
    assert "sibling alerts join one incident per alertname, persistentvolumeclaim" in shown
    assert "sibling alerts join one incident per namespace" in shown


def test_siblings_of_an_incident_that_cannot_open_are_kept_as_failed_too(engine):
    bad = "Not A Claim!"  # fails the claim parameter's pattern: the playbook cannot open
    first, second = engine.receive_alerts([alert("w1", "warning", claim=bad), alert("c1", "critical", claim=bad)])
    rows = {r["fingerprint"]: r for r in engine.alerts()}
    assert (first.outcome, second.outcome) == ("failed", "attached")
    assert rows["c1"]["outcome"] == "failed" and rows["c1"]["incident"] is None
    assert rows["c1"]["reason"] == rows["w1"]["reason"]
