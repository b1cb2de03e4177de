"""An alert storm's incidents opened a batch at a time (engine/intake.py `_open_together`): on
SQLite the incidents of new alerts next to each other in a delivery are created, and their alerts
recorded on them, in one transaction per batch, then each finished on its own (automatic
degradation, timers). What a sender and a responder see is as when each opened on its own; a
failure part way undoes the whole batch, whose alerts stay pending and are opened, once, by
recovery. On PostgreSQL (no batches: features.batches_writes) each opens in its own transactions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook.catalog.loader import load_catalog
from runbook.engine import Engine, VirtualClock, intake
from runbook.engine.intake import Alert
from runbook.store import StoreError

HERE = Path(__file__).parent


@pytest.fixture
def engine(open_test_store):
    catalog = load_catalog([str(HERE / "serve_catalog"), str(HERE / "fixtures" / "catalog" / "playbooks")])
    return Engine(open_test_store(key=None), VirtualClock(), None, catalog)


def disk_full(n: int, host: bool = True) -> Alert:
    labels = {"alertname": "DiskFull", "severity": "warning", **({"instance": f"db-{n}.example"} if host else {})}
    return Alert(f"{n:06x}", "firing", "2026-11-30T10:00:00Z", labels, {"summary": f"disk {n}"})


def linked(engine, incident: str) -> list[str]:
    """The fingerprints of the alerts an incident's log records as the one it opened for."""
    return [e.record.fingerprint for e in engine.state(incident).events
            if e.type == "alert_received" and e.record.opened]


def test_a_storm_delivery_opens_every_incident_whole_with_each_outcome_in_its_place(engine):
    alerts = [disk_full(n) for n in range(intake.BATCH + 5)]  # more than one batch
    alerts[3] = disk_full(3, host=False)  # its playbook cannot open without a host: failed, with why
    alerts[7] = Alert("0bad07", "firing", "2026-11-30T10:00:00Z", {"alertname": "NobodyKnowsMe"})  # ends a run
    outcomes = intake.receive(engine, alerts)
    assert [o.fingerprint for o in outcomes] == [a.fingerprint for a in alerts]
    expected = ["opened"] * len(alerts)
    expected[3], expected[7] = "failed", "unmatched"
    assert [o.outcome for o in outcomes] == expected
    assert "host" in outcomes[3].reason and outcomes[3].incident is None
    rows = {r["fingerprint"]: r for r in engine.alerts(limit=None)}
    for outcome in outcomes:
        row = rows[outcome.fingerprint]
        assert (row["outcome"], row["incident"]) == (outcome.outcome, outcome.incident)
        if outcome.outcome == "opened":
            assert row["owner"] is None
            assert linked(engine, outcome.incident) == [outcome.fingerprint]
            assert engine.state(outcome.incident).escalation.level == 1  # its first timers ran: level 1 paged
    assert len(engine.store.incidents()) == len(alerts) - 2
    assert engine.recover_alerts() == []  # nothing left pending


def test_a_failure_part_way_leaves_the_batch_pending_and_recovery_opens_each_once(engine, monkeypatch):
    alerts = [disk_full(100 + n) for n in range(10)]
    create, made = engine.store.create_incident, []

    def fail_the_fifth(*args, **kwargs):  # the database fails part way (a full disk, say)
        made.append(1)
        if len(made) == 5:
            raise StoreError("database or disk is full")
        return create(*args, **kwargs)
    monkeypatch.setattr(engine.store, "create_incident", fail_the_fifth)
    with pytest.raises(StoreError, match="disk is full"):
        intake.receive(engine, alerts)
    # in one batch (SQLite) the four created before the failure went with it; else they stay
    kept = 0 if engine.store.features.batches_writes else 4
    assert len(engine.store.incidents()) == kept
    assert sorted(r["outcome"] for r in engine.alerts(limit=None)) == ["opened"] * kept + ["pending"] * (10 - kept)
    monkeypatch.setattr(engine.store, "create_incident", create)
    recovered = engine.recover_alerts()  # the owner let go: any server's timer pass does this
    assert sorted(o.outcome for o in recovered) == ["opened"] * (10 - kept)
    rows = engine.alerts(limit=None)
    assert all(r["outcome"] == "opened" and r["owner"] is None for r in rows)
    assert len(engine.store.incidents()) == 10 == len({r["incident"] for r in rows})
    assert all(linked(engine, r["incident"]) == [r["fingerprint"]] for r in rows)


def test_while_a_drill_is_open_each_opens_on_its_own_and_the_drill_is_stopped(engine):
    drill = engine.open("disk-full", "facilitator", drill=True, params={"host": "practice.example"})
    outcomes = intake.receive(engine, [disk_full(200 + n) for n in range(3)])
    assert [o.outcome for o in outcomes] == ["opened"] * 3
    assert engine.state(drill.id).resolved  # a real incident on the drill's service ended it


def test_a_batch_whose_commit_fails_is_a_store_error_and_its_alerts_stay_pending(tmp_path, monkeypatch):
    """The commit of a batch (SQLite) can fail like any write (a full disk): the failure is a
    StoreError naming the database, as for one write, so the intake says so, and the alerts stay
    pending for recovery to open."""
    import sqlite3

    from runbook.engine import owner as owners
    from runbook.store import Store

    catalog = load_catalog([str(HERE / "serve_catalog"), str(HERE / "fixtures" / "catalog" / "playbooks")])
    engine = Engine(Store(str(tmp_path / "incidents.db"), key=None), VirtualClock(), None, catalog)
    owner = owners.claim()
    received = intake.record(engine, [disk_full(300 + n) for n in range(3)], owner)
    real = engine.store.conn

    class FullAtCommit:  # the connection, whose COMMIT fails as SQLite's does on a full disk
        def __getattr__(self, name):
            return getattr(real, name)

        def execute(self, sql, *args):
            if sql == "COMMIT":
                real.execute("ROLLBACK")
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, *args)
    monkeypatch.setattr(engine.store, "conn", FullAtCommit())
    with pytest.raises(StoreError, match="disk is full"):
        intake.act(engine, received, owner)
    monkeypatch.setattr(engine.store, "conn", real)
    owners.release(owner)
    assert engine.store.incidents() == []
    assert [r["outcome"] for r in engine.alerts(limit=None)] == ["pending"] * 3
    assert [o.outcome for o in engine.recover_alerts()] == ["opened"] * 3
    engine.store.close()
