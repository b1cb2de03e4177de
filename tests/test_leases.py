"""Leases on the work a server owns: pending alerts and flag changes in flight are taken over by
another server, on any host, once the owner's lease has run out, and never before.

"Server A" here is an owner record on another host (host-a) with, when the test says so, a
lease in the store; the engine under test is the other server, on this host. Virtual clock, on
SQLite and PostgreSQL. tests/test_leases_processes.py kills real servers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.flags import video_on

from runbook.catalog.loader import load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.engine import owner as owners
from runbook.engine.clock import iso
from runbook.engine.intake import Alert
from runbook.plugins import PluginHost
from runbook.service import EngineService, TimerPass
from runbook.settings import Settings
from runbook.store import is_postgres_url

ROOT = Path(__file__).resolve().parent.parent
A = {"host": "host-a", "pid": 4242, "start": "777", "token": "a-token"}


class Metrics:
    """Call drops as Prometheus would answer: `value` until changed."""

    def __init__(self, value=0.001):
        self.value = value

    def query(self, promql, at=None, timeout=None):
        from runbook.metric_checks import Series

        return [Series({}, self.value)]


class Killed(BaseException):
    """Server A dies here (kill -9): nothing after it runs."""


@pytest.fixture
def engine(open_test_store, tmp_path):
    flags = video_on(tmp_path)
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
    eng = Engine(open_test_store(key=None), VirtualClock(), host, load_catalog([str(ROOT / "playbooks")]))
    eng.metrics_source = Metrics()
    return eng


def video_alert(fingerprint: str) -> Alert:
    return Alert(fingerprint, "firing", "2026-11-30T10:00:00Z",
                 {"alertname": "RTCVideoFreezeRatioHigh", "service": "rtc-video", "severity": "critical"},
                 {"summary": "video freezes"})


def a_lease(engine, seconds: float) -> None:
    """Server A renews its lease now, for `seconds`."""
    engine.store.renew_lease(owners.holder(A), A["host"], A["pid"], seconds, iso(engine.clock.now()))


def advance(engine, seconds: float) -> None:
    """`seconds` pass: on the engine's clock, and on PostgreSQL on the database's, which lease
    times are set and compared on (every lease ends that much sooner)."""
    engine.clock.advance(seconds)
    if is_postgres_url(engine.store.location):
        earlier = ("to_char(({} ::timestamptz - make_interval(secs => %s)) AT TIME ZONE 'UTC', "
                   "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        engine.store.conn.execute(f"UPDATE leases SET expires_at = {earlier.format('expires_at')}", [float(seconds)])
        until = earlier.format("(owner::jsonb ->> 'until')")
        engine.store.conn.execute(  # the time a leaseless owner of a pending alert is trusted until
            f"UPDATE alerts SET owner = jsonb_set(owner::jsonb, '{{until}}', to_jsonb({until}))::text "
            "WHERE owner::jsonb ? 'until'", [float(seconds)])


def pending_of_a(engine, alert: Alert, incident: str, owner=None) -> None:
    """Server A recorded `alert` (an incident id reserved for it) and died before opening it."""
    row = {**alert._asdict(), "alertname": alert.name, "playbook": "video-call-degraded",
           "symptom": "video-quality-low", "reason": None}
    stored, new = engine.store.receive_alert(row, iso(engine.clock.now()), lambda: incident, owner or A)
    assert new and stored["outcome"] == "pending"


def as_server(monkeypatch, owner: dict = A):
    """What this process starts from now on is owned by `owner` (server A's owner record)."""
    monkeypatch.setattr(owners, "claim", lambda: dict(owner))


def row(engine, fingerprint):
    return next(r for r in engine.store.alerts() if r["fingerprint"] == fingerprint)


def test_a_pending_alert_of_an_owner_on_another_host_without_a_lease_is_taken_over(engine):
    """D4: such an owner counted as alive forever; the alert was never opened."""
    pending_of_a(engine, video_alert("d4a0"), "INC-D4A000")
    (outcome,) = engine.recover_alerts()
    assert (outcome.outcome, outcome.incident) == ("opened", "INC-D4A000")
    assert row(engine, "d4a0")["outcome"] == "opened"


def test_a_pending_alert_waits_out_its_servers_lease_then_opens_with_its_link_and_auto_degradation(engine):
    a_lease(engine, 10)
    pending_of_a(engine, video_alert("d4a1"), "INC-D4A100")
    assert engine.recover_alerts() == []  # A's lease is live: its work is left to it
    advance(engine, 9)
    assert engine.recover_alerts() == []
    advance(engine, 2)  # A stopped renewing 11 s ago
    (outcome,) = engine.recover_alerts()
    assert (outcome.outcome, outcome.incident) == ("opened", "INC-D4A100")
    state = engine.state("INC-D4A100")
    linked = [e.record for e in state.events if e.type == "alert_received"]
    assert [(r.fingerprint, r.opened) for r in linked] == [("d4a1", True)]
    assert state.severity == "SEV1" and state.degradations["audio-only"].applied  # the symptom's auto_degrade
    assert row(engine, "d4a1")["outcome"] == "opened" and row(engine, "d4a1")["owner"] is None


def test_a_renewed_lease_keeps_the_work_with_its_server(engine):
    a_lease(engine, 10)
    pending_of_a(engine, video_alert("d4a2"), "INC-D4A200")
    for _ in range(5):
        advance(engine, 4)
        a_lease(engine, 10)
        assert engine.recover_alerts() == []
    assert row(engine, "d4a2")["outcome"] == "pending"


def test_a_redelivery_after_the_lease_ended_opens_the_alert_rather_than_answering_repeat(engine):
    a_lease(engine, 10)
    pending_of_a(engine, video_alert("d4a3"), "INC-D4A300")
    (early,) = engine.receive_alerts([video_alert("d4a3")])
    assert early.outcome == "repeat"  # acted on by no one: A holds it (the sender was told "pending")
    advance(engine, 11)
    (outcome,) = engine.receive_alerts([video_alert("d4a3")])
    assert (outcome.outcome, outcome.incident) == ("opened", "INC-D4A300")
    assert [e.record.fingerprint for e in engine.state("INC-D4A300").events if e.type == "alert_received"] == [
        "d4a3"]
    (again,) = engine.receive_alerts([video_alert("d4a3")])
    assert (again.outcome, again.incident) == ("repeat", "INC-D4A300")


def test_an_owner_without_a_server_lease_is_trusted_until_its_own_lease(engine):
    """A responder's `runbook alert open` on another host holds no server lease: the row's own
    time ("until") decides."""
    by_hand = {**A, "until": owners.lease_end(engine, 60)}
    pending_of_a(engine, video_alert("d4a4"), "INC-D4A400", owner=by_hand)
    advance(engine, 59)
    assert engine.recover_alerts() == []
    advance(engine, 2)
    assert [o.outcome for o in engine.recover_alerts()] == ["opened"]


def test_a_host_clock_ahead_does_not_end_a_leaseless_owners_time_early(engine, backend):
    """On PostgreSQL the time a process without a server lease is trusted is set and compared on
    the database's clock: a server whose clock runs an hour ahead does not take its alert."""
    by_hand = {**A, "until": owners.lease_end(engine, 60)}
    pending_of_a(engine, video_alert("d4a6"), "INC-D4A600", owner=by_hand)
    engine.clock.advance(3600)  # this host's clock only
    taken = [o.outcome for o in engine.recover_alerts()]
    assert taken == ([] if backend == "postgres" else ["opened"])  # SQLite: one host, one clock


def test_a_server_killed_mid_auto_degradation_leaves_one_incident_that_the_next_server_finishes(engine, monkeypatch):
    """A opened the incident, linked its alert and started the automatic degradation, then died
    before a flag was written: B opens nothing twice, settles A's change and applies it."""
    a_lease(engine, 10)
    as_server(monkeypatch)

    def dies(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(engine.plugins, "set_flag_share", dies)
    with pytest.raises(Killed):
        engine.receive_alerts([video_alert("d4a5")])
    monkeypatch.undo()
    (incident,) = [r["id"] for r in engine.store.incidents()]
    assert engine.state(incident).degradations["audio-only"].pending
    assert row(engine, "d4a5")["outcome"] == "pending"
    advance(engine, 5)
    assert engine.recover_alerts() == []
    advance(engine, 6)
    (outcome,) = engine.recover_alerts()
    assert (outcome.outcome, outcome.incident) == ("opened", incident)
    assert [r["id"] for r in engine.store.incidents()] == [incident]
    state = engine.state(incident)
    types = [e.type for e in state.events]
    assert types.count("alert_received") == 1
    failed = [e.record for e in state.events if e.type == "degradation_failed"]
    assert len(failed) == 1 and failed[0].reconciled
    deg = state.degradations["audio-only"]
    assert deg.applied and not deg.pending and (deg.stage, deg.share) == (0, 10)


def _stage_change_in_flight(engine, monkeypatch, owner: dict = A) -> str:
    """An incident at stage 1 of audio-only whose advance to stage 2 `owner` started and died in."""
    incident = engine.open("video-call-degraded", "ana").id
    engine.degrade(incident, "ana", "audio-only")
    as_server(monkeypatch, owner)

    def dies(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(engine.plugins, "set_flag_share", dies)
    with pytest.raises(Killed):
        engine.stage(incident, "ana", "audio-only", "advance")
    monkeypatch.undo()
    assert engine.state(incident).degradations["audio-only"].pending
    return incident


def test_a_stage_change_of_a_server_gone_is_settled_after_its_lease_and_the_checks_go_on(engine, monkeypatch):
    """D2: the change stayed pending for good, the stage's checks stopped, and with call drops
    far over the limit nothing rolled back."""
    a_lease(engine, 10)
    incident = _stage_change_in_flight(engine, monkeypatch)
    engine.metrics_source.value = 0.5  # far over "< 0.02"
    ticks = TimerPass()
    advance(engine, 5)
    ticks(engine)
    assert engine.state(incident).degradations["audio-only"].pending  # A may still finish it
    advance(engine, 6)
    ticks(engine)  # A's lease ran out: settled, then its checks fire again
    advance(engine, 30)
    ticks(engine)
    state = engine.state(incident)
    deg = state.degradations["audio-only"]
    assert not deg.pending and not deg.applied and deg.stage == -1  # rolled back: on_failure restore
    rollback = [e for e in state.events if e.type == "stage_steered"][-1]
    assert rollback.record.automatic and "call-drops failed" in rollback.record.reason


def test_a_stage_change_of_a_dead_process_on_this_host_is_settled_at_the_next_pass(engine, monkeypatch):
    """A server restarted on the same host settles its predecessor's change at once (the pid is gone)."""
    dead = {**A, "host": os.uname().nodename, "pid": 2 ** 22 + 23}
    incident = _stage_change_in_flight(engine, monkeypatch, dead)
    TimerPass()(engine)
    assert not engine.state(incident).degradations["audio-only"].pending


def test_the_server_holds_renews_and_at_the_end_gives_up_its_lease(engine):
    service = EngineService(engine)
    service.hold_lease(9)
    lease = service.keeper.lease

    def live():
        return engine.store.lease_live(lease.holder, iso(engine.clock.now()))
    assert live()
    advance(engine, 8)
    assert live() and lease.renew()  # renewed in time: still running
    advance(engine, 8)
    assert live()
    advance(engine, 2)
    assert not live()
    assert not lease.renew()  # it had run out: the server is told (others may have taken its work)
    assert live()
    service.close()
    assert not live()  # ended: taken over at once


def test_a_dead_servers_lease_on_this_host_is_ended_so_its_incidents_timers_go_on_at_once(engine):
    """A server restarted after a crash on the same host need not wait the dead one's lease out
    for the timers of the incidents it held: the dead process's lease is ended at start."""
    incident = engine.open("video-call-degraded", "ana").id
    dead = {"host": owners._host(), "pid": 2 ** 22 + 23, "start": "777"}
    now = iso(engine.clock.now())
    engine.store.renew_lease(owners.holder(dead), dead["host"], dead["pid"], 10, now)
    assert engine.store.take_incident(incident, owners.holder(dead), now) == 1
    a_lease(engine, 10)  # server A, on another host: left alone
    service = EngineService(engine)
    service.hold_lease(10)
    try:
        assert not engine.store.lease_live(owners.holder(dead), now)
        assert engine.store.lease_live(owners.holder(A), now)
        assert engine.store.take_incident(incident, service.keeper.lease.holder, iso(engine.clock.now())) == 2
    finally:
        service.close()
