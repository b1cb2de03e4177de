"""Every face fires an incident's timers under its lease, as `runbook serve` does: the TUI (its
service composed as runtime.py composes it), `runbook incident tick` and `resume`. A face that
does not hold the lease fires nothing and says who does; a lone TUI takes it, and at quit lets
go of it so a server takes over at once; the leases of incidents resolved long ago are pruned
with the alert ledger's retention.

The TUI's engine and a server's engine share one database, each on its own connection with its
own lease (the server as another host); the moment they collide is injected (one acts inside
the other's page or Prometheus query). Virtual clock, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.flags import video_on
from helpers.metrics import Metrics

from runbook.catalog.loader import load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.engine import owner as owners
from runbook.engine.clock import iso
from runbook.plugins import PluginHost
from runbook.runtime import Runtime
from runbook.service import TimerPass
from runbook.settings import Settings
from runbook.tui.gateway import EngineGateway

ROOT = Path(__file__).resolve().parent.parent
LEASE = 10.0
HOLD = timedelta(minutes=5)  # video-call-degraded: escalation level 2 (and the audio-only stage's hold) after 5m


class Server:
    """An engine on a connection of its own with a lease of its own (another host), as `runbook
    serve` holds it and passes over its incidents."""

    def __init__(self, make_engine, clock, monkeypatch):
        self.engine = make_engine()
        with monkeypatch.context() as env:
            env.setenv("RUNBOOK_HOSTNAME", "host-b")
            self.lease = owners.Lease(self.engine.store, clock, LEASE)
        self.engine.timer_leases = owners.IncidentLeases(self.lease.holder)
        self.timers = TimerPass()
        self.timers.leases = self.engine.timer_leases
        self.lease.renew(first=True)

    def run(self):
        self.lease.renew()  # as its keeper would have
        return self.timers(self.engine)


class Tui:
    """The TUI's side: the engine service as the composition root makes it for a face (its
    timers under leases), behind the TUI's gateway, as `runbook open`/`resume` runs it."""

    def __init__(self, engine):
        self.service = Runtime().service(engine)
        self.gateway = EngineGateway(self.service)

    def renew(self):
        """Its lease renewed now, as its keeper renews it while the TUI is open (the virtual clock
        jumps minutes between two of its real renewals)."""
        if self.service.keeper is not None:
            self.service.keeper.lease.renew()

    def quit(self):
        self.gateway.release()


@pytest.fixture
def world(open_test_store, tmp_path, monkeypatch):
    flags = video_on(tmp_path)
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
    pages, during_page = [], {}
    notify = host.notify

    def counted(notice, only=None):
        pages.append(notice.level)
        inside = during_page.pop(notice.level, None)
        if inside is not None:
            inside()
        return notify(notice, only) if only else notify(notice)
    monkeypatch.setattr(host, "notify", counted)
    catalog = load_catalog([str(ROOT / "playbooks")])
    clock = VirtualClock()
    metrics = Metrics(clock)

    def engine():
        made = Engine(open_test_store(key=None), clock, host, catalog)
        made.metrics_source = metrics
        return made
    opener = engine()  # a responder's one-shot engine (no face's leases): opens and pages level 1
    incident = opener.open("video-call-degraded", "ana").id
    opener.degrade(incident, "ana", "audio-only")
    opener.tick(incident)
    assert pages == [1]
    tuis = []

    def tui():
        tuis.append(Tui(engine()))
        return tuis[-1]
    yield {"incident": incident, "clock": clock, "metrics": metrics, "pages": pages, "during_page": during_page,
           "server": lambda: Server(engine, clock, monkeypatch), "tui": tui, "opener": opener}
    for each in tuis:
        each.quit()


def kinds(engine, incident, kind):
    engine.forget(incident)
    return [e for e in engine.state(incident).events if e.type == kind]


def test_a_tui_resuming_inside_a_servers_page_does_not_send_that_page_again(world):
    """The server pages level 2; while its pager is being called (the page recorded, its outcome
    not yet), a TUI resumes the incident at that same instant: one page (before: the TUI's resume
    sent every page without an outcome again, so level 2 was paged twice)."""
    server, tui = world["server"](), world["tui"]()
    incident = world["incident"]
    world["clock"].advance(60)
    server.run()  # the server holds the incident
    world["clock"].advance(HOLD.total_seconds() - 60)
    world["during_page"][2] = lambda: (tui.renew(), tui.gateway.call("reconcile", incident, force=True),
                                       tui.gateway.tick(incident))
    server.run()
    assert world["pages"] == [1, 2]
    assert [e.record.level for e in kinds(server.engine, incident, "escalated")] == [1, 2]
    view = tui.gateway.view(incident)
    assert view.timers_by == f"run by runbook process {server.lease.pid} on host-b"
    assert view.ladder[1].notified  # the timers as the record says


def test_a_tui_ticking_inside_a_servers_stage_check_leaves_the_check_to_the_server(world):
    """The TUI's once-a-second tick comes inside the server's Prometheus query at the instant a
    stage check and a page are due: one check, one stage advance, one page."""
    server, tui = world["server"](), world["tui"]()
    incident, metrics = world["incident"], world["metrics"]
    world["clock"].advance(60)
    server.run()
    world["clock"].advance(HOLD.total_seconds() - 60)
    at = world["clock"].now()
    metrics.during = lambda: (tui.renew(), tui.gateway.tick(incident))
    server.run()
    tui.gateway.tick(incident)
    assert [m for m in metrics.asked if m == at] == [at]
    assert len([e for e in kinds(server.engine, incident, "stage_checked") if e.at == at]) == 1
    assert [e.record.stage for e in kinds(server.engine, incident, "degradation_applied")] == [0, 1]
    assert world["pages"] == [1, 2]


def test_a_lone_tui_fires_its_incidents_timers_and_at_quit_the_server_takes_over_at_once(world):
    """No server: the TUI takes the lease and fires. A server that starts meanwhile leaves the
    incident to the TUI while its lease runs; the TUI quits, which ends its lease, and the
    server's next pass fires what is due at that same instant (not a lease later)."""
    tui = world["tui"]()
    incident, clock = world["incident"], world["clock"]
    clock.advance(60)
    tui.gateway.tick(incident)  # the TUI takes the lease
    assert tui.service.timers_by(incident) == ""
    server = world["server"]()
    clock.advance(HOLD.total_seconds() - 60 - 1)
    tui.renew()
    server.run()  # the TUI's lease holds it: the server fires nothing of it
    clock.advance(1)  # level 2 and the stage check are due now; the TUI is closing
    tui.renew()
    tui.quit()
    assert world["pages"] == [1]
    server.run()
    assert world["pages"] == [1, 2]
    assert [e.record.stage for e in kinds(server.engine, incident, "degradation_applied")] == [0, 1]


def test_a_lone_tui_pages_when_due(world):
    tui = world["tui"]()
    world["clock"].advance(HOLD.total_seconds())
    assert tui.gateway.tick(world["incident"])
    assert world["pages"] == [1, 2]
    assert tui.gateway.view(world["incident"]).timers_by == ""


def test_a_tui_that_leaves_an_incident_lets_go_of_its_timers_at_once(world):
    """Going home (the screen retired or removed) lets go of that incident's timers while the
    TUI stays open: the server fires the next due timer at once."""
    tui = world["tui"]()
    incident, clock = world["incident"], world["clock"]
    clock.advance(60)
    tui.gateway.tick(incident)
    server = world["server"]()
    clock.advance(HOLD.total_seconds() - 60)
    tui.renew()
    server.run()
    assert world["pages"] == [1]
    tui.gateway.release_timers(incident)
    assert tui.service.ticks.idle(5)
    server.run()
    assert world["pages"] == [1, 2]


def test_the_leases_of_incidents_resolved_long_ago_go_with_the_ledgers_retention(world):
    """Pruned with the alert ledger's retention: the lease of an incident resolved before its
    cut-off; those of an open one, and of one whose follow-up phase is still worked, stay."""
    server = world["server"]()
    incident, clock, opener = world["incident"], world["clock"], world["opener"]
    done = opener.open("stickers-not-loading", "ana").id
    still = opener.open("stickers-not-loading", "ana").id
    server.run()
    assert all(server.engine.store.incident_holder(i, iso(clock.now())) for i in (incident, done, still))
    opener.resolve(incident, "ana")  # video-call-degraded has a follow-up phase: its steps are still worked
    opener.resolve(done, "ana")
    clock.advance(days=2)
    server.run()
    assert server.engine.prune_alerts(86400)[1] == iso(clock.now() - timedelta(days=1))
    rows = {r[0] for r in server.engine.store._run("SELECT incident FROM incident_leases", []).fetchall()}
    assert rows == {incident, still}


@pytest.fixture
def cli_world(rb, backend, store_location, tmp_path):
    """An incident opened ten minutes ago (its level 2 page due now) on the `rb` commands' database,
    whose timers a server on another host holds."""
    rb.env["RUNBOOK_DB"] = store_location
    from runbook.store import open_store

    store = open_store(store_location)
    host = PluginHost(Settings(flags_file=str(video_on(tmp_path)), plugins_dir=None), entry_points=False)
    ago = VirtualClock(datetime.now(UTC) - timedelta(minutes=10))
    engine = Engine(store, ago, host, load_catalog([str(ROOT / "playbooks")]))
    incident = engine.open("video-call-degraded", "ana").id
    engine.tick(incident)
    holder = "host-a 4242 77"
    now = iso(datetime.now(UTC))
    store.renew_lease(holder, "host-a", 4242, 600, now)
    assert store.take_incident(incident, holder, now) is not None
    yield rb, engine, incident
    store.close()


def test_cli_tick_while_a_server_holds_the_lease_fires_nothing_and_says_who(cli_world):
    rb, engine, incident = cli_world
    before = engine.store.incident(incident)["last_seq"]
    proc = rb.run("incident", "tick", incident)
    assert proc.stdout.splitlines() == [f"{incident}: its timers are run by runbook process 4242 on host-a; "
                                        "nothing fired here"]
    assert engine.store.incident(incident)["last_seq"] == before  # level 2 is due, and left to its holder
    proc = rb.run("incident", "tick", incident, "--json")
    assert proc.stdout.strip() == "[]" and "host-a" in proc.stderr


def test_cli_tick_fires_once_the_servers_lease_has_ended(cli_world):
    rb, engine, incident = cli_world
    engine.store.renew_lease("host-a 4242 77", "host-a", 4242, 0, iso(datetime.now(UTC)))
    out = rb("incident", "tick", incident)
    assert "escalation level 2" in out and "nothing fired here" not in out


def test_a_responders_role_on_postgresql_fires_no_timers_and_says_who_does(pg_cluster, tmp_path, monkeypatch):
    """A responder's role (`--grant`) holds no lease (one it kept could hold the server's work
    back): its TUI fires nothing and says so, then names the server (`--grant-server`) that
    fires them; that server's role forgets old incidents' leases with the ledger's retention."""
    from runbook.store import open_store

    url = pg_cluster.new_schema()
    owner = open_store(url, key=None)
    schema = owner.conn.execute("SELECT current_schema()").fetchone()[0]
    for kind in ("responder", "server"):
        owner.conn.execute(f"CREATE ROLE {kind}_{schema} LOGIN")
    owner.grant(f"responder_{schema}")
    owner.grant(f"server_{schema}", server=True)
    stores = [owner]

    def as_role(kind):
        stores.append(open_store(pg_cluster.url_for_schema(schema, user=f"{kind}_{schema}"), key=None))
        return stores[-1]
    host = PluginHost(Settings(flags_file=str(video_on(tmp_path)), plugins_dir=None), entry_points=False)
    pages = []
    notify = host.notify
    monkeypatch.setattr(host, "notify", lambda notice, only=None: (pages.append(notice.level), notify(notice))[1])
    catalog = load_catalog([str(ROOT / "playbooks")])
    clock = VirtualClock()
    opener = Engine(owner, clock, host, catalog)
    incident = opener.open("media-upload-failures", "ana").id
    opener.tick(incident)
    tui = Tui(Engine(as_role("responder"), clock, host, catalog))
    try:
        clock.advance(HOLD.total_seconds() * 2)
        assert not tui.gateway.tick(incident)
        assert pages == [1]
        assert tui.gateway.view(incident).timers_by.startswith("not run here: this database role may not")
        server = Server(lambda: Engine(as_role("server"), clock, host, catalog), clock, monkeypatch)
        server.run()
        assert pages[:2] == [1, 2]
        tui.gateway.tick(incident)
        assert tui.gateway.view(incident).timers_by == f"run by runbook process {server.lease.pid} on host-b"
        opener.resolve(incident, "ana")
        clock.advance(days=2)
        server.engine.prune_alerts(86400)
        assert owner.conn.execute("SELECT count(*) FROM incident_leases").fetchone()[0] == 0
    finally:
        tui.quit()
        for store in stores:
            store.close()


def test_cli_show_says_who_runs_the_timers(cli_world):
    rb, _, incident = cli_world
    assert "timers: run by runbook process 4242 on host-a (it holds their lease)" in rb("incident", "show", incident)
