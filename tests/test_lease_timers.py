"""Timers under leases: one server fires an incident's timers (its lease on the incident), a server
that stalled past its lease is fenced off what another took over, and lease times are compared
on the store's clock (PostgreSQL: the database's), never a host's.

Two "servers" here are two engines on one database, each on its own connection with its own
lease (the second as another host), driven by TimerPass as `runbook serve` drives them; the
moment they collide is injected (one's pass runs inside the other's Prometheus query or flag
write). Virtual clock, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from helpers.flags import video_on
from helpers.metrics import Metrics

from runbook.catalog.loader import load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.engine import owner as owners
from runbook.engine.clock import iso
from runbook.plugins import PluginHost
from runbook.service import TimerPass
from runbook.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
LEASE = 10.0
HOLD = timedelta(minutes=5)  # video-call-degraded's audio-only: stage held 5m, escalation level 2 after 5m


class Server:
    """An engine on a connection of its own with a lease of its own, as `runbook serve` holds it."""

    def __init__(self, open_test_store, clock, host, catalog, metrics, monkeypatch, name: str | None):
        self.engine = Engine(open_test_store(key=None), clock, host, catalog)
        self.engine.metrics_source = metrics
        with monkeypatch.context() as env:
            if name:
                env.setenv("RUNBOOK_HOSTNAME", name)
            self.lease = owners.Lease(self.engine.store, clock, LEASE)
        self.leases = owners.IncidentLeases(self.lease.holder)
        self.engine.timer_leases = self.leases
        self.timers = TimerPass()
        self.timers.leases = self.leases
        self.lease.renew(first=True)

    def run(self):
        """One timer pass (its lease renewed first, as its keeper would have)."""
        self.lease.renew()
        return self.timers(self.engine)


@pytest.fixture
def world(open_test_store, tmp_path, monkeypatch):
    flags = video_on(tmp_path)
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
    pages = []
    notify = host.notify

    def counted(notice, only=None):
        pages.append(notice.level)
        return notify(notice, only) if only else notify(notice)
    monkeypatch.setattr(host, "notify", counted)
    catalog = load_catalog([str(ROOT / "playbooks")])
    clock = VirtualClock()
    metrics = Metrics(clock)
    first = Engine(open_test_store(key=None), clock, host, catalog)  # the responder's, no lease
    first.metrics_source = metrics
    incident = first.open("video-call-degraded", "ana").id
    first.degrade(incident, "ana", "audio-only")
    first.tick(incident)  # level 1 paged at open
    assert pages == [1]

    def server(name=None):
        return Server(open_test_store, clock, host, catalog, metrics, monkeypatch, name)
    return {"incident": incident, "clock": clock, "metrics": metrics, "pages": pages, "server": server,
            "first": first}


def events(engine, incident, kind):
    return [e for e in engine.state(incident).events if e.type == kind]


def test_two_servers_with_a_stage_check_and_a_page_due_at_one_instant_act_once(world):
    """Both servers' passes come at the same virtual instant, the second inside the first's
    Prometheus query: one check, one stage advance, one level-2 page (before: every server fired
    what was due, so both checked and recorded the stage)."""
    a, b = world["server"](), world["server"]("host-b")
    incident, metrics = world["incident"], world["metrics"]
    world["clock"].advance(HOLD.total_seconds())
    at = world["clock"].now()
    metrics.during = b.run
    a.run()
    b.run()  # and once more after: the incident is a's
    engine = a.engine
    assert [m for m in metrics.asked if m == at] == [at]
    checked = [e for e in events(engine, incident, "stage_checked") if e.at == at]
    assert len(checked) == 1
    applied = [e.record.stage for e in events(engine, incident, "degradation_applied")]
    assert applied == [0, 1]
    assert [e.record.level for e in events(engine, incident, "escalated")] == [1, 2]
    assert world["pages"] == [1, 2]


def test_a_server_takes_the_timers_of_a_server_gone_over_once_its_lease_ends(world):
    a = world["server"]()
    incident = world["incident"]
    world["clock"].advance(60)
    a.run()  # a holds the incident
    b = world["server"]("host-b")
    world["clock"].advance(HOLD.total_seconds() - 60)
    ends_in(a, world["clock"], 1.0)  # a stopped renewing: its lease ends in a second
    b.run()
    assert world["pages"] == [1]  # a's lease still runs: its incident is left to it
    assert b.timers.lease_ends_in is not None and 0 < b.timers.lease_ends_in <= 1.0  # the next pass then
    ends_in(a, world["clock"], -0.001)
    b.run()
    assert world["pages"] == [1, 2]
    assert [e.record.stage for e in events(b.engine, incident, "degradation_applied")] == [0, 1]


def test_a_stalled_server_that_wakes_is_fenced_off_what_another_took_over(world, caplog):
    """a stalls inside a stage check's Prometheus query (SIGSTOP, a long pause) past its lease;
    b takes the incident over and checks; a wakes: its record of the check is refused in the
    append's own transaction, it says so in one line and stands down: one check at that instant
    (before: both recorded one), and the next ones are b's alone."""
    a = world["server"]()
    incident, clock = world["incident"], world["clock"]
    clock.advance(60)
    a.run()  # a holds the incident
    b = world["server"]("host-b")
    clock.advance(30)  # the next check is due

    def stalled():
        ends_in(a, clock, -0.001)  # a's lease runs out while it is stopped
        b.run()
    world["metrics"].during = stalled
    with caplog.at_level(logging.WARNING, logger="runbook.engine"):
        a.run()
    engine = b.engine
    assert len([e for e in events(engine, incident, "stage_checked") if e.at == clock.now()]) == 1
    refused = [r.getMessage() for r in caplog.records if "standing down" in r.getMessage()]
    assert len(refused) == 1 and incident in refused[0] and "\n" not in refused[0]
    clock.advance(HOLD.total_seconds() - 90)  # the stage's hold ends, the level-2 page is due
    b.run()
    a.run()  # awake and renewed: b holds the incident now, a leaves it alone
    assert [e.record.stage for e in events(engine, incident, "degradation_applied")] == [0, 1]
    assert [e.record.level for e in events(engine, incident, "escalated")] == [1, 2]
    assert world["pages"] == [1, 2]


def test_a_host_clock_running_ahead_never_takes_a_live_lease_early(world, backend):
    """On PostgreSQL lease times are set and compared on the database's clock: b's clock an hour
    ahead does not end a's lease. (On SQLite, one host, the engine's clock is that clock.)"""
    a = world["server"]()
    incident = world["incident"]
    world["clock"].advance(60)
    a.run()
    skewed = VirtualClock(world["clock"].now() + timedelta(hours=1))
    b = world["server"]("host-b")
    b.engine.clock = skewed
    b.lease.clock = skewed
    b.run()
    if backend == "postgres":
        assert b.engine.store.lease_live(a.lease.holder, iso(skewed.now()))
        assert events(b.engine, incident, "escalated")[-1].record.level == 1  # b fired nothing of a's
        assert world["pages"] == [1]
    else:  # one host, one clock: an hour on it is an hour
        assert not b.engine.store.lease_live(a.lease.holder, iso(skewed.now()))


def ends_in(server: Server, clock, seconds: float) -> None:
    """`server`'s lease now ends `seconds` from now on the store's clock (it stopped renewing)."""
    server.engine.store.renew_lease(server.lease.holder, server.lease.host, server.lease.pid, seconds,
                                    iso(clock.now()))


def test_the_next_pass_comes_when_another_servers_lease_ends_if_that_is_sooner(world):
    """`runbook serve` sleeps `next_pass(--tick)` between passes: until the first lease of
    another server ends (just after), when that comes before the next periodic pass."""
    from runbook.service import EngineService

    service = EngineService(world["first"])
    try:
        assert service.next_pass(1.0) == 1.0  # no other server's lease known
        service.timer_pass.lease_ends_in = 0.3
        assert 0.3 < service.next_pass(1.0) < 0.31
        service.timer_pass.lease_ends_in = 5.0
        assert service.next_pass(1.0) == 1.0
        service.timer_pass.lease_ends_in = -0.2  # ended while the pass ran: at once
        assert service.next_pass(1.0) == 0.0
    finally:
        service.close()
