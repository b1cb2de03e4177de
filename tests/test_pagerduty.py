"""PagerDuty both ways: the built-in plugin against a fake Events API v2 endpoint on 127.0.0.1,
driven by the engine on a virtual clock: trigger per level, acknowledge and resolve, severity
from the policy, links back, retries with backoff, crashes, drills, escalation left to the pager."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runbook.catalog import load
from runbook.engine import CommandError, Engine, VirtualClock, timers
from runbook.engine.clock import iso
from runbook.engine.events import Acknowledged, Escalated
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

KEY = "R0UT1NG-KEY-very-secret"
BOSS_KEY = "b0557e4a2b1c4d5e6f708192a3b4c5d6"  # 32 characters: the boss's own PagerDuty service
PUBLIC = "http://runbook.example:9393"

CATALOG = f"""
apiVersion: runbook/v1
kind: SeverityPolicy
id: sev
levels:
  - {{id: SEV1, title: Critical}}
  - {{id: SEV2, title: Major}}
  - {{id: SEV3, title: Minor, pager_severity: critical}}
---
apiVersion: runbook/v1
kind: EscalationPolicy
id: ladder
repeat: 0
levels:
  - notify: [{{rotation: primary}}]
    escalate_after: 5m
  - notify: [{{person: boss}}]
    escalate_after: 10m
---
apiVersion: runbook/v1
kind: Roster
id: team
timezone: UTC
people:
  - {{id: ana, name: Ana, pager: ana-handle}}
  - {{id: boss, name: Bo Boss, pager: {BOSS_KEY}}}
rotations:
  - {{id: primary, members: [ana], shift: 1d, start: "2026-01-05T00:00"}}
---
apiVersion: runbook/v1
kind: Playbook
id: calls-down
title: Calls are down
service: rtc
severity: SEV2
escalation: ladder
steps:
  - id: look
    title: Look at the dashboards
"""


class FakePagerDuty(BaseHTTPRequestHandler):
    events: list = []
    answers: list = []  # statuses to answer, in order; 202 once they run out

    def do_POST(self):
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        cls.events.append(event)
        status = cls.answers.pop(0) if cls.answers else 202
        body = ({"status": "success", "dedup_key": event.get("dedup_key")} if status == 202 else
                {"status": "invalid event", "message": "Event object is invalid",
                 "errors": ["'payload.severity' is invalid"]})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def pagerduty(monkeypatch):
    FakePagerDuty.events, FakePagerDuty.answers = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakePagerDuty)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("RUNBOOK_PAGERDUTY_ROUTING_KEY", KEY)
    monkeypatch.setenv("RUNBOOK_PAGERDUTY_URL", f"http://127.0.0.1:{httpd.server_address[1]}/v2/enqueue")
    yield FakePagerDuty
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def world(tmp_path):
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "all.yaml").write_text(CATALOG)
    stores = []

    class World:
        clock = VirtualClock()
        catalog = load([str(tmp_path / "catalog")])

        def engine(self, **settings):
            store = Store(str(tmp_path / "db.sqlite"))
            stores.append(store)
            host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None, notify_timeout=5,
                                       public_url=PUBLIC, **settings), entry_points=False)
            return Engine(store, self.clock, host, self.catalog)

    yield World()
    for store in stores:
        store.close()


def sent(pd, action=None):
    return [(e["event_action"], e["dedup_key"], e["routing_key"]) for e in pd.events
            if action is None or e["event_action"] == action]


def lines(events, *types):
    return [e.record.describe() for e in events if e.type in types]


def test_hook_notify_update_acknowledges_and_resolves_every_alert_triggered_one_per_level(world, pagerduty):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    engine.tick(iid)
    world.clock.advance(minutes=5)
    engine.tick(iid)
    assert sent(pagerduty) == [("trigger", f"runbook-{iid}-L1", KEY),  # ana's handle is no key: the default
                               ("trigger", f"runbook-{iid}-L2", BOSS_KEY)]  # the boss's own service
    first = pagerduty.events[0]
    assert first["payload"]["severity"] == "error"  # SEV2, second in the policy
    assert first["payload"]["summary"] == "SEV2: Calls are down — escalation level 1"
    assert (first["payload"]["source"], first["payload"]["component"]) == ("rtc", "calls-down")
    assert first["client"] == "runbook"
    assert first["client_url"] == f"{PUBLIC}/incidents/{iid}"
    assert first["links"] == [{"href": f"{PUBLIC}/incidents/{iid}", "text": f"{iid} in runbook"}]
    assert first["payload"]["custom_details"]["recipients"] == ["Ana"]

    acked = engine.acknowledge(iid, "ana")
    assert [e.type for e in acked] == ["acknowledged", "pager_updated"]
    assert sent(pagerduty, "acknowledge") == [("acknowledge", f"runbook-{iid}-L1", KEY),
                                              ("acknowledge", f"runbook-{iid}-L2", BOSS_KEY)]
    assert lines(acked, "pager_updated") == [f"pagerduty: acknowledged runbook-{iid}-L1, runbook-{iid}-L2"]

    resolved = engine.resolve(iid, "ana")
    assert sent(pagerduty, "resolve") == [("resolve", f"runbook-{iid}-L1", KEY),
                                          ("resolve", f"runbook-{iid}-L2", BOSS_KEY)]
    assert lines(resolved, "pager_updated") == [f"pagerduty: resolved runbook-{iid}-L1, runbook-{iid}-L2"]
    world.clock.advance(hours=1)
    assert engine.tick(iid) == [] and len(pagerduty.events) == 6  # nothing owed, nothing sent again
    shown = " ".join(e.record.describe() for e in engine.state(iid).events) + json.dumps(
        [e.data for e in engine.state(iid).events])
    assert KEY not in shown and BOSS_KEY not in shown  # routing keys are secrets


def test_pager_severity_comes_from_the_severity_level(world, pagerduty):
    engine = world.engine()
    for severity, expected in (("SEV1", "critical"), ("SEV3", "critical"), ("SEV2", "error")):
        engine.tick(engine.open("calls-down", "ana", severity=severity).id)
        assert pagerduty.events[-1]["payload"]["severity"] == expected
    assert engine.state(engine.list()[0]["id"]).snapshot.pager_severity("SEV9") == "info"  # ranks after the third


def test_server_errors_are_retried_with_backoff_calling_only_the_plugin_that_failed(world, pagerduty):
    engine = world.engine()
    pagerduty.answers = [500, 500]
    iid = engine.open("calls-down", "ana").id
    first = engine.tick(iid)
    assert lines(first, "notified") == ["level 1 notified via terminal; pagerduty FAILED (HTTP 500), retry 1 in 1s"]
    retry = [t for t in timers.pending(engine.state(iid)) if t.kind == "page_retry"]
    assert [(t.at - world.clock.now()).total_seconds() for t in retry] == [1.0]
    assert engine.tick(iid) == []  # not due yet: no sleeping, the clock moves when told
    world.clock.advance(seconds=1)
    again = engine.tick(iid)
    assert lines(again, "notified") == ["level 1 retry 1: pagerduty FAILED (HTTP 500), retry 2 in 2s"]
    assert [r["plugin"] for r in again[0].data["results"]] == ["pagerduty"]  # the terminal is not rung again
    world.clock.advance(seconds=1)
    assert engine.tick(iid) == []  # the second retry waits 2 s
    world.clock.advance(seconds=1)
    assert lines(engine.tick(iid), "notified") == ["level 1 retry 2: notified via pagerduty"]
    assert sent(pagerduty) == [("trigger", f"runbook-{iid}-L1", KEY)] * 3  # one key: PagerDuty keeps one alert
    assert not [t for t in timers.pending(engine.state(iid)) if t.kind == "page_retry"]

    pagerduty.answers = [503]
    acked = engine.acknowledge(iid, "ana")
    assert lines(acked, "pager_updated") == ["pagerduty acknowledge FAILED (HTTP 503), retry 1 in 1s"]
    world.clock.advance(seconds=1)
    assert lines(engine.tick(iid), "pager_updated") == [f"retry 1: pagerduty: acknowledged runbook-{iid}-L1"]


def test_429_is_retried_400_is_not_and_retries_give_up(world, pagerduty):
    from runbook.engine import backoff

    engine = world.engine()
    pagerduty.answers = [429]
    iid = engine.open("calls-down", "ana").id
    assert "retry 1 in 1s" in lines(engine.tick(iid), "notified")[0]
    world.clock.advance(seconds=1)
    assert lines(engine.tick(iid), "notified") == ["level 1 retry 1: notified via pagerduty"]

    pagerduty.answers = [400]
    refused = engine.escalate_now(iid, "ana")
    assert lines(refused, "notified") == ["level 2 notified via terminal; pagerduty FAILED "
                                          "(HTTP 400: Event object is invalid; 'payload.severity' is invalid)"]
    world.clock.advance(minutes=10)
    engine.tick(iid)
    assert len(sent(pagerduty, "trigger")) == 3  # 400 is permanent: never sent again

    pagerduty.answers = [503] * 50
    engine.acknowledge(iid, "ana")
    waited = []
    for _ in range(backoff.ATTEMPTS + 2):
        pending = [t for t in timers.pending(engine.state(iid)) if t.kind == "page_retry"]
        if not pending:
            break
        waited.append(int((pending[0].at - world.clock.now()).total_seconds()))
        world.clock.set(pending[0].at)
        fired = engine.tick(iid)
    assert waited == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 60]
    assert lines(fired, "pager_updated")[-1].endswith(f"FAILED (HTTP 503), gave up after {backoff.ATTEMPTS} attempts")
    assert len(sent(pagerduty, "acknowledge")) == backoff.ATTEMPTS
    # the 400-refused level 2 was never an open alert: the acknowledge went to level 1 only
    assert {key for _, key, _ in sent(pagerduty, "acknowledge")} == {f"runbook-{iid}-L1"}


def test_network_errors_are_retried(world, pagerduty, monkeypatch):
    monkeypatch.setenv("RUNBOOK_PAGERDUTY_URL", "http://127.0.0.1:9/v2/enqueue")  # discard port: refused
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    line = lines(engine.tick(iid), "notified")[0]
    assert "pagerduty FAILED (cannot reach http://127.0.0.1:9:" in line and line.endswith("retry 1 in 1s")


def test_a_page_or_update_a_crash_left_unsent_is_sent_by_a_tick_or_at_once_by_resume(world, pagerduty):
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    now = world.clock.now()
    # the intent recorded, then the process died before calling the plugins
    engine.command(iid, "runbook", lambda s: [Escalated(1, 0, iso(now), "timer", [{"id": "ana", "name": "Ana",
                                                                                    "via": "rotation primary"}])])
    assert engine.tick(iid) == [] and pagerduty.events == []  # another process may still be sending it
    world.clock.advance(seconds=60)
    assert lines(engine.tick(iid), "notified") == ["level 1 notified via pagerduty, terminal"]
    assert sent(pagerduty) == [("trigger", f"runbook-{iid}-L1", KEY)]

    engine.command(iid, "ana", lambda s: [Acknowledged()])  # acknowledged; died before telling the pager
    restarted = world.engine()
    assert [e.type for e in restarted.reconcile(iid, force=True)] == ["pager_updated"]  # resume: at once
    assert sent(pagerduty, "acknowledge") == [("acknowledge", f"runbook-{iid}-L1", KEY)]
    world.clock.advance(minutes=5)
    assert restarted.tick(iid) == []


def test_a_drill_never_pages_unless_declared_live(world, pagerduty):
    engine = world.engine()
    drill = engine.open("calls-down", "ana", drill=True).id
    fired = engine.tick(drill)
    assert pagerduty.events == []
    assert lines(fired, "notified") == ["level 1 notified via terminal; pagerduty: drill: not sent "
                                        "(a drill reaches a real pager only when declared live)"]
    assert [e.type for e in engine.acknowledge(drill, "ana")] == ["acknowledged"]  # no alert was opened

    live = engine.open("calls-down", "ana", drill=True, live=True).id
    engine.tick(live)
    assert sent(pagerduty) == [("trigger", f"runbook-{live}-L1", KEY)]
    assert pagerduty.events[0]["payload"]["summary"].startswith("[DRILL] SEV2")


def test_escalation_by_the_pager_pages_level_one_only(world, pagerduty):
    engine = world.engine(escalation="pager")
    iid = engine.open("calls-down", "ana").id
    engine.tick(iid)
    world.clock.advance(hours=1)
    assert engine.tick(iid) == []
    assert sent(pagerduty) == [("trigger", f"runbook-{iid}-L1", KEY)]
    assert timers.next_escalation(engine.state(iid)) is None
    with pytest.raises(CommandError, match=r"escalation of .* is by the pager"):
        engine.escalate_now(iid, "ana")
    assert engine.state(iid).events[0].record.describe().endswith("escalation is by the pager")
    # recorded at open: a command run later with other settings does not change the incident's mode
    assert world.engine().tick(iid) == [] and engine.state(iid).escalation.by_pager
    # and the CLI and the TUI say who escalates
    from runbook.cli.incident import summary
    from runbook.views import build_view

    state = engine.state(iid)
    assert "  escalation: by the pager (runbook paged level 1; the pager's own policy pages the rest)" in \
        summary(state, world.clock.now())
    assert build_view(state, world.clock.now()).by_pager


def test_without_a_routing_key_pagerduty_stays_quiet(world, pagerduty, monkeypatch):
    monkeypatch.delenv("RUNBOOK_PAGERDUTY_ROUTING_KEY")
    engine = world.engine()
    iid = engine.open("calls-down", "ana").id
    assert lines(engine.tick(iid), "notified") == ["level 1 notified via terminal"]
    assert [e.type for e in engine.acknowledge(iid, "ana")] == ["acknowledged"]
    assert pagerduty.events == []


def test_runbook_escalation_setting_is_checked(monkeypatch):
    from runbook.errors import UsageError

    monkeypatch.setenv("RUNBOOK_ESCALATION", "Pager")
    monkeypatch.setenv("RUNBOOK_PUBLIC_URL", "http://host:9393/")
    settings = Settings.from_environment()
    assert settings.escalation == "pager"
    assert settings.incident_url("INC-1") == "http://host:9393/incidents/INC-1"
    monkeypatch.setenv("RUNBOOK_ESCALATION", "opsgenie")
    with pytest.raises(UsageError, match="RUNBOOK_ESCALATION='opsgenie' is not one of: runbook, pager"):
        Settings.from_environment()
