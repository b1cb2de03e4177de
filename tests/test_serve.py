"""runbook serve's alert intake, through HTTP (Starlette's test client) on a real SQLite store.

Alertmanager itself drives the same route in tests/test_alertmanager.py; here every answer the
intake can give is pinned down: 401, 400 with nothing stored, 413, repeats, mixed deliveries,
resolving, unmatched and ambiguous alerts, a crash between recording an alert and opening it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from serve_helpers import wait_for
from starlette.testclient import TestClient

from runbook.catalog.loader import load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.engine.intake import Alert
from runbook.serve.app import ServeConfig, build_app
from runbook.service import EngineService
from runbook.store import Store

HERE = Path(__file__).parent
TOKEN = "t0ken-for-the-intake-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def catalog():
    return load_catalog([str(HERE / "serve_catalog"), str(HERE / "fixtures" / "catalog" / "playbooks")])


@pytest.fixture
def engine(open_test_store):
    """The intake on both backends: SQLite, and PostgreSQL (a schema of its own; tests/conftest.py)."""
    return Engine(open_test_store(key=None), VirtualClock(), None, catalog())


@pytest.fixture
def client(engine):
    app = build_app(EngineService(engine), ServeConfig(TOKEN, max_body=64 * 1024, tick_every=0))
    with TestClient(app) as c:
        yield c


def alert(name="DiskFull", status="firing", fingerprint="f00d01", starts="2026-11-30T10:00:00.123456789Z",
          ends=None, **labels):
    labels = {"alertname": name, **labels}
    return {"status": status, "labels": labels, "annotations": {"summary": f"{name} on {labels.get('instance')}"},
            "startsAt": starts, "endsAt": ends or "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example/graph?g0.expr=up", "fingerprint": fingerprint}


def payload(*alerts, status="firing"):
    return {"version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": status, "receiver": "runbook",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
            "alerts": list(alerts)}


def post(client, body, headers=AUTH):
    """The delivery's answer (given once its alerts are recorded), after the server has acted on
    them (opened, joined or resolved incidents on its ticks lane)."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    response = client.post("/alertmanager", content=data, headers=headers)
    settled(client)
    return response


def settled(client) -> None:
    """Wait until the server's ticks lane has done the work queued on it so far."""
    client.app.state.service.ticks.call(lambda engine: None)


def final(engine, fingerprint):
    """What became of the latest occurrence of an alert: (outcome, incident, reason)."""
    row = engine.alerts(limit=None)
    row = next(r for r in row if r["fingerprint"] == fingerprint)
    return row["outcome"], row["incident"], row["reason"]


def outcomes(response):
    assert response.status_code == 200, response.text
    return [(o["alertname"], o["outcome"]) for o in response.json()["outcomes"]]


def test_firing_alert_opens_one_incident_with_severity_and_parameters_from_its_labels(client, engine):
    body = payload(alert(instance="db-7.example", severity="critical"))
    first = post(client, body).json()["outcomes"][0]
    # answered once recorded, with the incident id reserved for it; opened right after
    assert first["outcome"] == "pending" and first["playbook"] == "disk-full" and first["incident"]
    assert final(engine, first["fingerprint"]) == ("opened", first["incident"], None)
    state = engine.state(first["incident"])
    assert state.severity == "SEV1"  # severity_from: critical -> SEV1
    assert state.parameters == {"host": "db-7.example"}
    assert state.title == "Disk filling up on db-7.example"
    received = [e for e in state.events if e.type == "alert_received"]
    assert len(received) == 1 and received[0].record.opened
    assert received[0].record.summary == "DiskFull on db-7.example"
    assert received[0].actor == "alertmanager"
    # Alertmanager re-posts the same body every repeat_interval, and retries: nothing more
    for _ in range(3):
        assert outcomes(post(client, body)) == [("DiskFull", "repeat")]
    assert [row["id"] for row in engine.store.incidents()] == [first["incident"]]
    assert engine.alerts()[0]["deliveries"] == 4


def test_one_delivery_mixes_firing_and_resolved_alerts_each_by_its_own_status(client, engine):
    post(client, payload(alert(instance="a.example", fingerprint="aa"), alert("QueueStuck", fingerprint="bb",
                                                                                 service="jobs")))
    mixed = payload(alert(instance="a.example", fingerprint="aa", status="resolved", ends="2026-11-30T10:05:00Z"),
                    alert("QueueStuck", fingerprint="bb", service="jobs"), status="resolved")
    assert outcomes(post(client, mixed)) == [("DiskFull", "resolved"), ("QueueStuck", "repeat")]
    rows = {r["fingerprint"]: r for r in engine.alerts()}
    assert rows["aa"]["status"] == "resolved" and rows["aa"]["ends_at"] == "2026-11-30T10:05:00Z"
    assert rows["bb"]["status"] == "firing"


def test_resolved_alert_is_recorded_and_never_resolves_unless_the_playbook_says_so(client, engine):
    opened = post(client, payload(alert("QueueStuck", fingerprint="bb", service="jobs"))).json()["outcomes"][0]
    done = post(client, payload(alert("QueueStuck", fingerprint="bb", service="jobs", status="resolved")))
    assert outcomes(done) == [("QueueStuck", "resolved")]
    state = engine.state(opened["incident"])
    assert not state.alert_firing and not state.resolved  # queue-stuck: on_alert_resolved defaults to record
    assert [e.type for e in state.events].count("alert_state_changed") == 1
    # the resolved repeat adds nothing
    assert outcomes(post(client, payload(alert("QueueStuck", fingerprint="bb", service="jobs",
                                               status="resolved")))) == [("QueueStuck", "repeat")]
    assert engine.state(opened["incident"]).last_seq == state.last_seq


def test_playbook_with_on_alert_resolved_resolve_resolves_when_its_alert_does(client, engine):
    opened = post(client, payload(alert(instance="b.example"))).json()["outcomes"][0]
    result = post(client, payload(alert(instance="b.example", status="resolved"))).json()["outcomes"][0]
    assert result["outcome"] == "resolved"
    state = engine.state(opened["incident"])
    assert state.resolved and state.events[-1].actor == "alertmanager"


def test_alert_firing_again_joins_its_open_incident_or_opens_a_new_one_once_resolved(client, engine):
    first = post(client, payload(alert("QueueStuck", fingerprint="cc", service="jobs"))).json()["outcomes"][0]
    post(client, payload(alert("QueueStuck", fingerprint="cc", service="jobs", status="resolved")))
    again = post(client, payload(alert("QueueStuck", fingerprint="cc", service="jobs",
                                       starts="2026-11-30T11:00:00Z"))).json()["outcomes"][0]
    assert again["outcome"] == "attached" and again["incident"] == first["incident"]
    state = engine.state(first["incident"])
    assert state.alert_firing and [e.record.opened for e in state.events if e.type == "alert_received"] == [
        True, False]
    engine.resolve(first["incident"], "ana")
    third = post(client, payload(alert("QueueStuck", fingerprint="cc", service="jobs",
                                       starts="2026-11-30T12:00:00Z"))).json()["outcomes"][0]
    assert third["outcome"] == "pending" and third["incident"] != first["incident"]
    assert engine.state(third["incident"]).events[0].type == "opened"


def test_unmatched_and_ambiguous_alerts_are_kept_visible_never_dropped(client, engine):
    result = post(client, payload(alert("NobodyKnowsMe", fingerprint="dd"), alert("Twin", fingerprint="ee")))
    assert outcomes(result) == [("NobodyKnowsMe", "unmatched"), ("Twin", "unmatched")]
    reasons = {o["alertname"]: o["reason"] for o in result.json()["outcomes"]}
    assert reasons["NobodyKnowsMe"] == "no playbook symptom matches these labels"
    assert "twin-a and twin-b equally well" in reasons["Twin"]
    assert engine.store.incidents() == []
    listed = client.get("/api/alerts?outcome=unmatched", headers=AUTH).json()
    assert sorted(r["alertname"] for r in listed) == ["NobodyKnowsMe", "Twin"]


def test_alert_whose_playbook_cannot_open_from_its_labels_is_kept_as_failed_with_why(client, engine):
    result = post(client, payload(alert(fingerprint="ff")))  # disk-full needs host (label instance)
    (only,) = result.json()["outcomes"]
    assert only["outcome"] == "pending"  # recorded; the incident could not open from these labels:
    outcome, incident, reason = final(engine, "ff")
    assert outcome == "failed" and "host" in reason and incident is None
    assert engine.store.incidents() == []


@pytest.mark.parametrize("body, reason", [
    (b"{not json", "malformed JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b"\xff\xfe", "the body is not UTF-8 text"),
    (b"[]", "expected a JSON object"),
    (json.dumps({"version": "3", "alerts": []}), "unsupported webhook payload version '3'"),
    (json.dumps({"version": "4", "alerts": {"a": 1}}), "alerts: expected a list, got an object"),
    ('{"version": 4' + "0" * 50_000 + ', "alerts": []}', "unsupported webhook payload version a number of 50,001"),
], ids=lambda value: None if isinstance(value, str) and len(value) < 40 else "")
def test_a_body_that_is_no_delivery_is_refused_whole_with_the_reason_and_nothing_stored(client, engine, body, reason):
    response = post(client, body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert engine.alerts() == [] and engine.store.incidents() == []


@pytest.fixture
def roomy(engine):
    """The intake with serve's default body limit (1 MiB): room for a hostile alert."""
    app = build_app(EngineService(engine), ServeConfig(TOKEN, tick_every=0))
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("bad, reason", [
    ({"status": "firing", "labels": {}, "startsAt": "2026-11-30T10:00:00Z"},
     "alerts[0].labels: an alert needs at least one label"),
    ({**alert(fingerprint="ab"), "status": "maybe"}, 'alerts[0].status: expected "firing" or "resolved", got "maybe"'),
    ({**alert(), "startsAt": "yesterday"}, "alerts[0].startsAt: expected an RFC 3339 time"),
    ({**alert(), "labels": {"alertname": 7}}, "alerts[0].labels.alertname: expected a string, got a number"),
    ({**alert(), "fingerprint": "<script>"}, "alerts[0].fingerprint: expected a hexadecimal"),
    ("not an alert", "alerts[0]: expected an object, got a string"),
    # D7: a lone surrogate was a 500 on every retry, and the valid alert after it was never recorded
    ({**alert(instance="\udc80")}, "alerts[0].labels.instance: holds a lone surrogate (\\udc80) at character 1"),
    ({**alert(), "annotations": {"summary": "\udc80"}}, "alerts[0].annotations.summary: holds a lone surrogate"),
    ({**alert(instance="db\x00")}, "alerts[0].labels.instance: holds a NUL character at character 3"),
    # D13: a 100,000-digit number was a 500
    ({**alert(), "labels": {"alertname": "DiskFull", "instance": "RAW-NUMBER"}},
     "alerts[0].labels.instance: expected a string, got a number of 100,000 digits"),
    # D12: names and keys were unbounded (a 1 MB label name went into the event log)
    ({**alert(), "labels": {"alertname": "DiskFull", "i" * 200_000: "x"}},
     '... is not a label name ([A-Za-z_][A-Za-z0-9_]*, 1 to 128 characters)'),
    ({**alert(), "annotations": {"k" * 200_000: "x"}}, 'alerts[0].annotations: "kkkkkkkk'),
    ({**alert(), "annotations": {"summary": "s" * 200_000}}, "alerts[0].annotations.summary: 200000 characters, at "
                                                             "most 4096"),
    ({**alert(), "labels": {f"l{n}": "v" for n in range(65)}}, "alerts[0].labels: 65 entries, at most 64"),
    ({**alert(), "labels": {"alertname": "A", **{f"l{n}": "v" * 4000 for n in range(9)}}},
     "alerts[0]: its labels and annotations hold 36,"),
], ids=lambda value: value.split(":")[0].split(" ")[0] if isinstance(value, str) else "")
def test_a_malformed_alert_is_recorded_as_rejected_with_why_and_the_valid_one_next_to_it_is_taken(
        roomy, engine, bad, reason):
    """Alertmanager does not retry a 4xx: refusing the delivery would lose the valid alert in it."""
    good = alert(instance="ok.example", fingerprint="600d")
    body = json.dumps(payload(bad, good)).replace('"RAW-NUMBER"', "7" * 100_000)
    response = post(roomy, body)
    assert response.status_code == 200, response.text
    rejected, taken = response.json()["outcomes"]
    assert rejected["outcome"] == "rejected" and reason in rejected["reason"]
    assert (taken["outcome"], taken["fingerprint"]) == ("pending", "600d")
    assert final(engine, "600d")[0] == "opened"
    rows = {r["outcome"]: r for r in engine.alerts()}
    kept = rows["rejected"]
    assert reason in kept["reason"] and kept["incident"] is None and kept["fingerprint"] == rejected["fingerprint"]
    assert len(json.dumps(kept)) < 40_000  # what is kept of it is bounded
    # Alertmanager repeats the delivery: the same rejected row, one more delivery, nothing else
    again = post(roomy, body).json()["outcomes"]
    assert [o["outcome"] for o in again] == ["rejected", "repeat"] and reason in again[0]["reason"]
    assert sorted((r["outcome"], r["deliveries"]) for r in engine.alerts()) == [("opened", 2), ("rejected", 2)]
    listed = roomy.get("/api/alerts?outcome=rejected", headers=AUTH).json()
    assert [r["fingerprint"] for r in listed] == [kept["fingerprint"]] and reason in listed[0]["reason"]
    assert len(engine.store.incidents()) == 1


def test_a_delivery_of_only_malformed_alerts_is_taken_so_they_are_seen(client, engine):
    response = post(client, payload({**alert(), "status": "maybe"}, {**alert(fingerprint="ab"), "startsAt": "x"}))
    assert response.status_code == 200
    assert [o["outcome"] for o in response.json()["outcomes"]] == ["rejected", "rejected"]
    assert len(engine.alerts()) == 2 and engine.store.incidents() == []


def test_a_malformed_receiver_rejects_every_alert_of_the_delivery_and_keeps_them(client, engine):
    body = {**payload(alert(instance="r.example")), "receiver": "\udc80"}
    (only,) = post(client, body).json()["outcomes"]
    assert only["outcome"] == "rejected" and only["reason"].startswith("receiver: holds a lone surrogate")
    assert engine.alerts()[0]["labels"] == {"alertname": "DiskFull", "instance": "r.example"}


def test_a_known_fingerprint_with_other_labels_is_another_alert(client, engine):
    """D6: a SEV1 video alert that reused a stickers alert's fingerprint went to the stickers
    incident; an alert is the same alert only when its labels are the same too."""
    first = post(client, payload(alert("QueueStuck", fingerprint="cafe", service="jobs"))).json()["outcomes"][0]
    assert final(engine, "cafe")[0] == "opened"
    # the same fingerprint, another start time, other labels: not attached to the first incident
    other = post(client, payload(alert(fingerprint="cafe", instance="db-9.example", severity="critical",
                                       starts="2026-11-30T11:00:00Z"))).json()["outcomes"][0]
    assert other["outcome"] == "pending" and other["playbook"] == "disk-full"
    assert other["incident"] != first["incident"]
    assert engine.state(other["incident"]).severity == "SEV1"
    # the same fingerprint and start time, other labels: not a repeat either; a key of its own
    same_start = post(client, payload(alert(fingerprint="cafe", instance="db-8.example",
                                            starts="2026-11-30T10:00:00.123456789Z"))).json()["outcomes"][0]
    assert same_start["outcome"] == "pending" and same_start["fingerprint"] != "cafe"
    assert same_start["incident"] not in (first["incident"], other["incident"])
    # each is still recognised at its next delivery
    assert outcomes(post(client, payload(alert(fingerprint="cafe", instance="db-8.example")))) == [
        ("DiskFull", "repeat")]
    assert outcomes(post(client, payload(alert("QueueStuck", fingerprint="cafe", service="jobs")))) == [
        ("QueueStuck", "repeat")]
    again = post(client, payload(alert(fingerprint="cafe", instance="db-8.example",
                                       starts="2026-11-30T12:00:00Z"))).json()["outcomes"][0]
    assert (again["outcome"], again["incident"]) == ("attached", same_start["incident"])
    assert [e.type for e in engine.state(first["incident"]).events].count("alert_received") == 1
    assert len(engine.store.incidents()) == 3


def test_without_the_bearer_token_nothing_is_read(client, engine):
    body = payload(alert(instance="c.example"))
    for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        response = post(client, body, headers)
        assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/api/alerts").status_code == 401
    assert engine.alerts() == []
    assert client.get("/healthz").text == "ok\n"


def test_body_over_the_limit_is_refused_with_413(client, engine):
    huge = payload(*[alert(instance=f"h{n}.example", fingerprint=f"{n:06x}") for n in range(400)])
    response = post(client, huge)
    assert response.status_code == 413 and "over 65536 bytes" in response.json()["error"]
    assert engine.alerts() == []


def test_a_delivery_of_2500_alerts_is_stored_whole_in_one_transaction_or_not_at_all(roomy, engine, monkeypatch):
    """Issue 27: a delivery of over 1,000 alerts was refused whole (and Alertmanager does not
    retry a 4xx). Any number is taken now, bounded by the body limit, in one transaction."""
    from runbook.store import StoreError

    alerts = [alert("NoPlaybookForThis", fingerprint=f"{n:06x}", instance=f"h{n}") for n in range(2499)]
    body = payload(*alerts, alert(instance="last.example", fingerprint="1a57"))  # the 2,500th opens an incident
    receive_one, calls = engine.store._receive_one, []

    def fail_at_2000(*args, **kwargs):  # the database fails part way (a full disk, say)
        calls.append(1)
        if len(calls) == 2000:
            raise StoreError("database or disk is full")
        return receive_one(*args, **kwargs)
    monkeypatch.setattr(engine.store, "_receive_one", fail_at_2000)
    response = post(roomy, body)
    assert response.status_code == 503 and "disk is full" in response.json()["error"]
    assert engine.alerts(limit=None) == []  # the 1,999 recorded before the failure went with it
    monkeypatch.setattr(engine.store, "_receive_one", receive_one)
    response = post(roomy, body)
    assert response.status_code == 200, response.text
    assert response.json()["received"] == 2500
    got = [o["outcome"] for o in response.json()["outcomes"]]
    assert got == ["unmatched"] * 2499 + ["pending"]
    assert len(engine.alerts(limit=None)) == 2500
    # acted on 50 at a time (the ticks lane's backlog): the last one's incident opens last
    wait_for(lambda: final(engine, "1a57")[0] == "opened", "the 2,500th alert's incident to open")
    assert len(engine.store.incidents()) == 1


def test_store_that_cannot_write_answers_503_so_the_sender_retries(engine, monkeypatch):
    from runbook.store import StoreError

    app = build_app(EngineService(engine), ServeConfig(TOKEN, tick_every=0))
    real = engine.store.receive_alerts
    with TestClient(app) as client:
        def refuse(*args, **kwargs):  # as a read-only, full or unreachable database reports it
            raise StoreError("the incident database is read-only: the file is not writable by you")
        monkeypatch.setattr(engine.store, "receive_alerts", refuse)
        response = post(client, payload(alert(instance="d.example")))
        assert response.status_code == 503 and response.headers["retry-after"] == "5"
        assert "read-only" in response.json()["error"]
        monkeypatch.setattr(engine.store, "receive_alerts", real)
        assert outcomes(post(client, payload(alert(instance="d.example")))) == [("DiskFull", "pending")]
        assert final(engine, "f00d01")[0] == "opened"


def test_crash_between_recording_the_alert_and_opening_it_opens_it_once_later(engine):
    """The row is written with a reserved incident id and its owner; the owner dies before the
    incident exists. The next delivery (or the server's start) opens it under that id, once."""
    dead = {"host": os.uname().nodename, "pid": 2 ** 22 + 17, "start": "1", "token": "gone"}
    row = {**Alert("abc123", "firing", "2026-11-30T10:00:00Z", {"alertname": "QueueStuck", "service": "jobs"})
           ._asdict(), "alertname": "QueueStuck", "playbook": "queue-stuck", "symptom": "stuck", "reason": None}
    stored, new = engine.store.receive_alert(row, "2026-11-30T10:00:01Z", lambda: "INC-0DEAD0", dead)
    assert new and stored["outcome"] == "pending"
    recovered = engine.recover_alerts()
    assert [(o.outcome, o.incident) for o in recovered] == [("opened", "INC-0DEAD0")]
    assert engine.recover_alerts() == []
    assert engine.alerts()[0]["outcome"] == "opened" and engine.alerts()[0]["owner"] is None


def test_crash_after_the_incident_opened_but_before_the_row_said_so_keeps_one_incident(engine):
    dead = {"host": os.uname().nodename, "pid": 2 ** 22 + 19, "start": "1", "token": "gone"}
    row = {**Alert("abc124", "firing", "2026-11-30T10:00:00Z", {"alertname": "QueueStuck", "service": "jobs"})
           ._asdict(), "alertname": "QueueStuck", "playbook": "queue-stuck", "symptom": "stuck", "reason": None}
    engine.store.receive_alert(row, "2026-11-30T10:00:01Z", lambda: "INC-0DEAD1", dead)
    engine.open("queue-stuck", "alertmanager", incident="INC-0DEAD1")  # the open that got through
    (outcome,) = engine.receive_alerts([Alert("abc124", "firing", "2026-11-30T10:00:00Z",
                                              {"alertname": "QueueStuck", "service": "jobs"})])
    assert (outcome.outcome, outcome.incident) == ("opened", "INC-0DEAD1")
    assert [r["id"] for r in engine.store.incidents()] == ["INC-0DEAD1"]


def test_pending_alert_of_a_live_owner_is_left_to_it(engine):
    live = {"host": os.uname().nodename, "pid": os.getppid(), "start": None, "token": "busy"}
    row = {**Alert("abc125", "firing", "2026-11-30T10:00:00Z", {"alertname": "QueueStuck", "service": "jobs"})
           ._asdict(), "alertname": "QueueStuck", "playbook": "queue-stuck", "symptom": "stuck", "reason": None}
    engine.store.receive_alert(row, "2026-11-30T10:00:01Z", lambda: "INC-0DEAD2", live)
    assert engine.recover_alerts() == []
    assert engine.store.incidents() == []


def test_server_picks_up_a_playbook_added_while_it_runs(tmp_path):
    """The catalog is watched: an alert nobody could take matches once its playbook is added."""
    import shutil
    import time

    from runbook.serve.app import CatalogWatcher

    live = tmp_path / "catalog"
    shutil.copytree(HERE / "fixtures" / "catalog" / "playbooks", live)
    eng = Engine(Store(str(tmp_path / "incidents.db"), key=None), VirtualClock(), None,
                 load_catalog([str(live)]))
    app = build_app(EngineService(eng), ServeConfig(TOKEN, tick_every=0.05, catalog_paths=(str(live),)))
    with TestClient(app) as client:
        assert outcomes(post(client, payload(alert("QueueStuck", fingerprint="a1", service="jobs")))) == [
            ("QueueStuck", "unmatched")]
        shutil.copy(HERE / "serve_catalog" / "queue-stuck.yaml", live)
        deadline = time.monotonic() + 20
        while "queue-stuck" not in eng.catalog.ids("Playbook"):  # the next timer passes reload it
            assert time.monotonic() < deadline, "the catalog was not reloaded"
            time.sleep(0.05)
        again = post(client, payload(alert("QueueStuck", fingerprint="a1", service="jobs",
                                           starts="2026-11-30T11:00:00Z")))
        assert outcomes(again) == [("QueueStuck", "pending")]
        assert final(eng, "a1")[0] == "opened"
    watcher = CatalogWatcher([str(live)])
    assert not watcher.changed()
    (live / "queue-stuck.yaml").unlink()
    assert watcher.changed() and not watcher.changed()
    eng.store.close()


def test_reserved_ids_skip_ids_incidents_already_have(engine):
    """Incident ids are short and random: the reservation draws again past a taken one."""
    engine.open("queue-stuck", "ana", incident="INC-AAAAAA")
    draws = iter(["INC-AAAAAA", "INC-BBBBBB"])
    row = {**Alert("abc126", "firing", "2026-11-30T10:00:00Z", {"alertname": "QueueStuck", "service": "jobs"})
           ._asdict(), "alertname": "QueueStuck", "playbook": "queue-stuck", "symptom": "stuck", "reason": None}
    stored, _ = engine.store.receive_alert(row, "2026-11-30T10:00:01Z", lambda: next(draws), None)
    assert stored["incident"] == "INC-BBBBBB"


def test_an_incident_opened_elsewhere_under_a_pending_id_is_not_taken_for_the_alerts(engine):
    dead = {"host": os.uname().nodename, "pid": 2 ** 22 + 21, "start": "1", "token": "gone"}
    row = {**Alert("abc127", "firing", "2026-11-30T10:00:00Z", {"alertname": "QueueStuck", "service": "jobs"})
           ._asdict(), "alertname": "QueueStuck", "playbook": "queue-stuck", "symptom": "stuck", "reason": None}
    engine.store.receive_alert(row, "2026-11-30T10:00:01Z", lambda: "INC-CCCCCC", dead)
    engine.open("queue-stuck", "ana", incident="INC-CCCCCC")  # a responder's open drew the same id meanwhile
    (outcome,) = engine.recover_alerts()
    assert outcome.outcome == "opened" and outcome.incident not in (None, "INC-CCCCCC")
    assert engine.state("INC-CCCCCC").events[0].actor == "ana"
    assert [e.type for e in engine.state("INC-CCCCCC").events].count("alert_received") == 0
    assert engine.alerts()[0]["incident"] == outcome.incident


def test_open_draws_another_id_when_the_random_one_is_taken(engine, monkeypatch):
    from runbook.engine import opening

    engine.open("queue-stuck", "ana", incident="INC-DDDDDD")
    draws = iter(["INC-DDDDDD", "INC-EEEEEE"])
    monkeypatch.setattr(opening, "new_incident_id", lambda drill=False: next(draws))
    assert engine.open("queue-stuck", "bo").id == "INC-EEEEEE"
    with pytest.raises(Exception, match="INC-DDDDDD already exists"):  # an id given is never changed
        engine.open("queue-stuck", "bo", incident="INC-DDDDDD")


def test_timer_pass_fires_due_escalations_and_skips_incidents_with_nothing_due(engine, monkeypatch):

    from runbook.service import TimerPass

    incident = engine.receive_alerts([Alert("abc128", "firing", "2026-11-30T10:00:00Z",
                                            {"alertname": "QueueStuck", "service": "jobs"})])[0].incident
    ticks = []
    real_tick = engine.tick
    monkeypatch.setattr(engine, "tick", lambda i: ticks.append(i) or real_tick(i))
    timer_pass = TimerPass()
    assert timer_pass(engine)[0] == 0 and ticks == [incident]
    engine.clock.advance(10)
    assert timer_pass(engine)[0] == 0 and ticks == [incident]  # nothing changed, nothing due: not read
    due = engine.next_due(incident)
    engine.clock.set(due)
    assert timer_pass(engine)[0] >= 1 and ticks == [incident, incident]
    assert engine.state(incident).escalation.level == 2
    engine.note(incident, "ana", "looking")  # a change elsewhere: read again at the next pass
    timer_pass(engine)
    assert ticks == [incident] * 3


def test_timer_pass_lists_incidents_in_full_only_every_recheck_and_follows_the_log_in_between(engine, monkeypatch):
    from runbook.service import TimerPass

    listed = []  # the pass's listings in full (intake lists incidents too, with other filters)
    real_list = engine.list

    def counted(**filters):
        if filters == {"open_only": True}:
            listed.append(filters)
        return real_list(**filters)
    monkeypatch.setattr(engine, "list", counted)
    timer_pass = TimerPass()
    timer_pass.RECHECK = timedelta(hours=1)  # past the escalation's next level
    timer_pass(engine)
    assert len(listed) == 1
    incident = engine.receive_alerts([Alert("abc12c", "firing", "2026-11-30T10:00:00Z",
                                            {"alertname": "QueueStuck", "service": "jobs"})])[0].incident
    engine.clock.advance(1)
    timer_pass(engine)
    assert len(listed) == 1 and incident in timer_pass.known  # found by what was appended, not a listing
    engine.clock.set(engine.next_due(incident))
    assert timer_pass(engine)[0] >= 1 and engine.state(incident).escalation.level == 2
    assert len(listed) == 1
    engine.clock.advance(timer_pass.RECHECK.total_seconds())
    timer_pass(engine)
    assert len(listed) == 2  # and in full again after RECHECK
    engine.clock.advance(-3600)  # a clock set back: listed in full at once
    timer_pass(engine)
    assert len(listed) == 3


def test_timer_pass_takes_up_from_the_log_only_incidents_a_listing_would_give(engine):
    from runbook.service import TimerPass

    (old,) = engine.receive_alerts([Alert("abc12d", "firing", "2026-11-30T10:00:00Z",
                                          {"alertname": "QueueStuck", "service": "jobs"})])
    engine.resolve(old.incident, "ana")
    engine.clock.advance(16 * 60)  # resolved before the window
    timer_pass = TimerPass()
    timer_pass.RECHECK = timedelta(hours=1)
    timer_pass(engine)
    assert old.incident not in timer_pass.known
    engine.note(old.incident, "ana", "a late note on a long-resolved incident")
    (fresh,) = engine.receive_alerts([Alert("abc12e", "firing", "2026-11-30T10:00:00Z",
                                            {"alertname": "QueueStuck", "service": "jobs"})])
    engine.clock.advance(1)
    _, live = timer_pass(engine)  # between listings: from what was appended
    assert fresh.incident in live and fresh.incident in timer_pass.known
    assert old.incident not in live and old.incident not in timer_pass.known


def test_timer_pass_lets_go_of_incidents_it_no_longer_works_on(engine):
    from runbook.service import TimerPass

    (first,) = engine.receive_alerts([Alert("abc129", "firing", "2026-11-30T10:00:00Z",
                                            {"alertname": "QueueStuck", "service": "jobs"})])
    timer_pass = TimerPass()
    timer_pass(engine)
    assert first.incident in engine._states and first.incident in timer_pass.known
    engine.resolve(first.incident, "ana")
    engine.clock.advance(16 * 60)  # past the window a resolved incident is still ticked for
    timer_pass(engine)
    assert first.incident not in engine._states and first.incident not in timer_pass.known
    assert engine.state(first.incident).resolved  # read again from the log when asked


def test_an_unmatched_alert_opened_by_hand_is_linked_and_takes_its_own_labels(engine):
    (kept,) = engine.receive_alerts([Alert("abc12a", "firing", "2026-11-30T10:00:00Z",
                                           {"alertname": "DiskAlmostFull", "instance": "db-3.example",
                                            "severity": "critical"}, {"summary": "93% used"})])
    assert kept.outcome == "unmatched"
    state = engine.open("disk-full", "ana", alert="ABC12A")  # the fingerprint, any case
    assert state.parameters == {"host": "db-3.example"} and state.severity == "SEV1"
    (row,) = engine.alerts()
    assert (row["outcome"], row["incident"], row["playbook"]) == ("opened", state.id, "disk-full")
    received = [e.record for e in engine.state(state.id).events if e.type == "alert_received"]
    assert [(r.fingerprint, r.summary, r.opened) for r in received] == [("abc12a", "93% used", True)]
    with pytest.raises(Exception, match=f"already has incident {state.id}"):
        engine.open("disk-full", "bo", alert="abc12a")
    with pytest.raises(Exception, match="no alert 'ffff' received"):
        engine.open("disk-full", "bo", alert="ffff")
    assert len(engine.store.incidents()) == 1


def test_opening_by_hand_that_fails_leaves_the_alert_as_it_was(engine):
    engine.receive_alerts([Alert("abc12b", "firing", "2026-11-30T10:00:00Z", {"alertname": "Odd"})])
    with pytest.raises(Exception, match="host"):  # disk-full needs host (label instance): not there
        engine.open("disk-full", "ana", alert="abc12b")
    (row,) = engine.alerts()
    assert (row["outcome"], row["incident"], row["owner"]) == ("unmatched", None, None)
    assert engine.store.incidents() == []


def test_cli_lists_alerts_and_opens_an_unmatched_one_by_hand(rb, tmp_path):
    rb.env["HOME"] = str(tmp_path)
    eng = Engine(Store(str(rb.db), key=None), VirtualClock(), None, catalog())
    eng.receive_alerts([Alert("abc12c", "firing", "2026-11-30T10:00:00Z",
                              {"alertname": "DiskAlmostFull", "instance": "db-4.example\x1b[31m"}),
                        Alert("abc12d", "firing", "2026-11-30T10:00:00Z", {"alertname": "QueueStuck",
                                                                           "service": "jobs"})])
    eng.store.close()
    rb.catalogs = [HERE / "serve_catalog", HERE / "fixtures" / "catalog" / "playbooks"]
    listed = rb.run("alerts", "--unmatched")
    assert "DiskAlmostFull  unmatched" in listed.stdout and "QueueStuck" not in listed.stdout
    assert "\x1b" not in listed.stdout + listed.stderr and "instance=db-4.example\\x1b[31m" in listed.stdout
    as_json = json.loads(rb("alerts", "--json"))
    assert {r["alertname"]: r["outcome"] for r in as_json} == {"DiskAlmostFull": "unmatched", "QueueStuck": "opened"}
    both = rb("incident", "open", "disk-full", "--alert", "abc12c", "--label", "a=b", expect=2)
    assert "--alert takes the alert's own labels" in both
    incident = rb("incident", "open", "disk-full", "--alert", "abc12c", "--param", "host=db-4.example",
                  "--as", "ana").strip()
    linked = json.loads(rb("alerts", "--incident", incident, "--json"))
    assert [(r["alertname"], r["outcome"]) for r in linked] == [("DiskAlmostFull", "opened")]
    assert "no alerts without a playbook" in rb("alerts", "--unmatched")


def test_a_label_that_does_not_fit_an_optional_parameter_leaves_it_unset_and_the_incident_opens(engine):
    """A SEV1 alert must open its incident even when one of its labels is odd."""
    (opened,) = engine.receive_alerts([Alert("abc12e", "firing", "2026-11-30T10:00:00Z", {
        "alertname": "RTCCallSetupSuccessLow", "service": "rtc-signaling", "region": "EU-WEST-1"})])
    assert opened.outcome == "opened"
    state = engine.state(opened.incident)
    assert "region" not in state.parameters
    notes = [e.record.text for e in state.events if e.type == "note_added"]
    assert notes and notes[0].startswith("parameter region left unset: the label did not fit")


def test_a_body_nested_too_deeply_is_refused_with_400_not_a_server_error(client, engine):
    response = post(client, b"[" * 20_000 + b"]" * 20_000)
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]


def test_an_empty_alert_fingerprint_is_refused(engine):
    engine.receive_alerts([Alert("abc12f", "firing", "2026-11-30T10:00:00Z", {"alertname": "Odd"})])
    with pytest.raises(Exception, match="fingerprint is empty"):
        engine.open("queue-stuck", "ana", alert="  ")
    assert engine.alerts()[0]["outcome"] == "unmatched"


def test_cli_lists_a_rejected_alert_with_why(rb, tmp_path):
    from runbook.serve.alertmanager import parse

    rb.env["HOME"] = str(tmp_path)
    eng = Engine(Store(str(rb.db), key=None), VirtualClock(), None, catalog())
    alerts, _ = parse(json.dumps(payload({**alert(instance="\udc80")})).encode())
    eng.receive_alerts(alerts)
    eng.store.close()
    rb.catalogs = [HERE / "serve_catalog"]
    listed = rb("alerts", "--unmatched")
    assert "firing   DiskFull  rejected" in listed
    assert "alerts[0].labels.instance: holds a lone surrogate (\\udc80) at character 1" in listed
    (row,) = json.loads(rb("alerts", "--json"))
    assert row["outcome"] == "rejected" and row["labels"] == {"alertname": "DiskFull"}


def test_api_alerts_is_read_a_bounded_page_at_a_time(client, engine, monkeypatch):
    """D16: /api/alerts returned up to 10,000 rows of up to 1 MiB; now a page at a time, the next
    page's address in the Link header, every alert once across the pages."""
    from runbook.serve import app as serve_app

    for n in range(7):
        post(client, payload(*[alert(f"Odd{n}", fingerprint=f"{n:02x}{m:02x}") for m in range(3)]))
        engine.clock.advance(1)
    seen, url, pages = [], "/api/alerts?limit=5", 0
    while url:
        response = client.get(url, headers=AUTH)
        assert response.status_code == 200
        page = response.json()
        assert 0 < len(page) <= 5
        seen += [r["fingerprint"] for r in page]
        link = response.headers.get("link")
        url = link[1:link.index(">")] if link else None
        pages += 1
    assert pages == 5 and len(seen) == len(set(seen)) == 21
    assert seen[:3] == ["0600", "0601", "0602"]  # the latest first
    assert len(client.get("/api/alerts?limit=100000", headers=AUTH).json()) == 21  # at most MAX_PAGE
    monkeypatch.setattr(serve_app, "PAGE_BYTES", 1)  # a page ends once it holds this much JSON
    one = client.get("/api/alerts", headers=AUTH)
    assert len(one.json()) == 1 and 'rel="next"' in one.headers["link"]
    for bad in ("nonsense", "W10", "%FF"):
        refused = client.get(f"/api/alerts?cursor={bad}", headers=AUTH)
        assert refused.status_code == 400 and "cursor: not one this server gave" in refused.json()["error"]


def test_prune_forgets_old_alerts_but_never_pending_ones_or_those_of_open_incidents(engine):
    opened = engine.receive_alerts([Alert("a1", "firing", "2026-11-30T10:00:00Z",
                                          {"alertname": "QueueStuck", "service": "jobs"})])[0]
    engine.receive_alerts([Alert("a2", "firing", "2026-11-30T10:00:00Z", {"alertname": "Nobody"}),
                           Alert("a3", "firing", "", {"alertname": "Bad"}, rejected="alerts[0]: bad")])
    dead = {"host": os.uname().nodename, "pid": 2 ** 22 + 23, "start": "1", "token": "gone"}
    row = {**Alert("a4", "firing", "2026-11-30T10:00:00Z", {"alertname": "QueueStuck", "service": "jobs"})
           ._asdict(), "alertname": "QueueStuck", "playbook": "queue-stuck", "symptom": "stuck", "reason": None}
    engine.store.receive_alert(row, "2026-11-30T10:00:01Z", lambda: "INC-0DEAD4", dead)  # pending
    engine.clock.advance(40 * 86400)
    engine.receive_alerts([Alert("a5", "firing", "2026-12-30T10:00:00Z", {"alertname": "Recent"})])
    assert engine.prune_alerts(30 * 86400, dry_run=True)[0] == 2
    assert len(engine.alerts()) == 5
    assert engine.store.prune_alerts("2026-01-20T00:00:00Z", batch=1) == 2  # one a transaction
    assert sorted(r["fingerprint"] for r in engine.alerts()) == ["a1", "a4", "a5"]
    engine.resolve(opened.incident, "ana")  # its incident closed: its alert may go now
    assert engine.prune_alerts(30 * 86400)[0] == 1
    assert sorted(r["fingerprint"] for r in engine.alerts()) == ["a4", "a5"]


def test_cli_alerts_prune(rb, tmp_path):
    rb.env["HOME"] = str(tmp_path)
    eng = Engine(Store(str(rb.db), key=None), VirtualClock(), None, catalog())  # its clock: 2026-01-05
    eng.receive_alerts([Alert("b1", "firing", "2026-01-05T08:00:00Z", {"alertname": "Old"})])
    eng.store.close()
    dry = rb("alerts", "prune", "--older-than", "1d", "--dry-run", "--json")
    assert {k: v for k, v in json.loads(dry).items() if k != "before"} == {
        "pruned": 1, "older_than": "1d", "dry_run": True}
    assert "b1" in rb("alerts")
    done = rb.run("alerts", "prune", "--older-than", "1d")
    assert (done.stdout, done.stderr) == ("forgot 1 alert(s) last heard of over 1d ago\n", "")
    assert "no alerts received" in rb("alerts")
    for bad in ("soon", "0s"):
        assert "--older-than" in rb("alerts", "prune", "--older-than", bad, expect=2)
    rb("alerts", "prune", expect=2)


def test_a_session_holding_runbooks_lock_makes_healthz_503_and_the_intake_busy_not_hung(pg_cluster, monkeypatch):
    """D11: any database session holding runbook's advisory lock hung the whole server; now every
    session waits for a lock at most lock_timeout and /healthz says what is wrong."""
    import psycopg

    from runbook.store import open_store, postgres

    monkeypatch.setattr(postgres, "LOCK_TIMEOUT", 0.5, raising=False)
    monkeypatch.setattr(postgres, "HEALTH_LOCK_TIMEOUT", 0.2, raising=False)
    url = pg_cluster.new_schema()
    engine = Engine(open_store(url, key=None), VirtualClock(), None, catalog())
    holder = psycopg.connect(url, autocommit=True)
    try:
        app = build_app(EngineService(engine), ServeConfig(TOKEN, tick_every=0))
        with TestClient(app) as client:
            assert client.get("/healthz").text == "ok\n"
            holder.execute("SELECT pg_advisory_lock(%s, %s)", [postgres.LOCK_CLASS, postgres.LEDGER_LOCK])
            sick = client.get("/healthz")
            assert sick.status_code == 503 and "is busy: a lock runbook needs is held by another session" in sick.text
            refused = client.post("/alertmanager", content=json.dumps(payload(alert(instance="e.example"))),
                                  headers=AUTH)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
            holder.execute("SELECT pg_advisory_unlock_all()")
            assert client.get("/healthz").text == "ok\n"
            assert outcomes(post(client, payload(alert(instance="e.example")))) == [("DiskFull", "pending")]
    finally:
        holder.close()
        engine.store.close()


def test_another_process_holding_sqlites_write_lock_makes_healthz_503(tmp_path, monkeypatch):
    """/healthz answered 200 while another process held the SQLite file's write lock (an alert
    could not have been recorded): it now tries the lock (BEGIN IMMEDIATE, a short wait, rolled
    back) and says what is wrong."""
    import sqlite3

    from runbook.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "HEALTH_LOCK_TIMEOUT", 0.2)
    path = tmp_path / "db.sqlite"
    engine = Engine(Store(str(path), key=None), VirtualClock(), None, catalog())
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        with TestClient(build_app(EngineService(engine), ServeConfig(TOKEN, tick_every=0))) as client:
            assert client.get("/healthz").text == "ok\n"
            holder.execute("BEGIN IMMEDIATE")
            sick = client.get("/healthz")
            assert sick.status_code == 503
            assert sick.text.startswith("unhealthy: the incident database") and "another process has held its " \
                "write lock over 0.2s" in sick.text and sick.text.count("\n") == 1
            holder.execute("ROLLBACK")
            assert client.get("/healthz").text == "ok\n"
            assert outcomes(post(client, payload(alert(instance="e.example")))) == [("DiskFull", "pending")]
    finally:
        holder.close()
        engine.store.close()


def test_serve_reminds_the_owners_of_overdue_action_items(engine):
    """The server's timer loop reminds overdue items' owners (hourly; each at most once a day, as
    the log says), so no cron job is needed beside `runbook serve`."""
    iid = engine.open("disk-full", "ana", params={"host": "db1.example"}).id
    engine.add_action_item(iid, "ana", "alert on SFU CPU", owner="bo", due="2020-01-01")
    service = EngineService(engine)
    with TestClient(build_app(service, ServeConfig(TOKEN, tick_every=0.05))):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait on the condition: the first pass reminds at once
            if any(e.type == "action_item_reminded" for e in service.query("state", iid).events):
                break
            time.sleep(0.05)
    reminded = [e for e in engine.state(iid).events if e.type == "action_item_reminded"]
    assert len(reminded) == 1 and reminded[0].record.owner == "bo"


def test_serve_moves_what_start_up_made_out_of_collections_before_it_listens(rb, monkeypatch):
    import runbook.cli.serve as serve_cli
    from runbook.serve.app import Server

    order = []
    monkeypatch.setattr(serve_cli, "keep_startup_out_of_collections", lambda: order.append("moved") or 0)
    monkeypatch.setattr(Server, "run", lambda self, sockets=None: order.append("listening"))
    rb.inproc.run("serve", "--port", "0", "--tick", "0.5", RUNBOOK_SERVE_TOKEN="intake-token-0123456789abc")
    assert order == ["moved", "listening"]


def test_serve_keeps_what_start_up_made_out_of_full_collections_and_still_collects_what_comes_after():
    import subprocess
    import sys

    code = """
import gc, weakref
from runbook.cli.serve import keep_startup_out_of_collections
moved = keep_startup_out_of_collections()
class Node: pass
later = Node(); later.me = later  # a cycle made after start-up: garbage the collector must still find
gone = weakref.ref(later); del later
gc.collect()
print(moved, gone() is None)
"""
    moved, collected = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                      check=True).stdout.split()
    assert int(moved) > 10_000 and collected == "True"


def test_automatic_garbage_collection_waits_while_a_delivery_is_taken(client, engine, monkeypatch):
    import gc

    from runbook.engine import intake

    seen = []
    real = intake.record
    monkeypatch.setattr(intake, "record", lambda *a, **k: seen.append(gc.isenabled()) or real(*a, **k))
    assert gc.isenabled()
    assert post(client, payload(alert(instance="gc.example"))).status_code == 200
    assert seen == [False]  # off while the delivery was being recorded
    wait_for(gc.isenabled, "automatic collection back on, QUIET after the delivery")


def test_collections_held_off_come_back_after_a_quiet_moment_and_never_wait_longer_than_longest(monkeypatch):
    import gc

    from runbook.serve.pauses import CollectionsHeldOff

    collected = []
    monkeypatch.setattr(gc, "collect", lambda *a: collected.append(a) or 0)

    async def taking():
        loop = asyncio.get_running_loop()
        pauses = CollectionsHeldOff()
        try:
            with pauses.taking_delivery():
                with pauses.taking_delivery():  # two at once
                    assert not gc.isenabled()
                assert not gc.isenabled() and pauses._resume is None  # one still in flight
            assert not gc.isenabled()  # not at once: another delivery may be on its way
            assert pauses._resume.when() == pytest.approx(loop.time() + pauses.QUIET, abs=0.05)
            with pauses.taking_delivery():  # it came: still off, the turn back on put off
                assert pauses._resume is None
            pauses.since -= pauses.LONGEST  # a flood that has not let up for LONGEST
            with pauses.taking_delivery():
                assert collected == [()] and not gc.isenabled()  # one collection now, then off again
            pauses._resume._run()  # the quiet moment came
            assert gc.isenabled()
        finally:
            pauses.close()
            gc.enable()
        gc.disable()  # turned off by someone else (a screen starting): left to them
        try:
            pauses = CollectionsHeldOff()
            with pauses.taking_delivery():
                pass
            assert pauses.held == 0 and pauses._resume is None and not gc.isenabled()
        finally:
            gc.enable()

    asyncio.run(taking())
