"""The public status page of `runbook serve --public` over HTTP (Starlette's test client), on a real
SQLite store with the shipped catalog and its StatusPage: component states from the mapping of
degradations and their shares, public updates in phases exactly as posted for customers, the
Statuspage-shaped JSON, the feeds read by feedparser, and no internal text anywhere in public.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import feedparser
import pytest
from helpers.flags import video_on
from starlette.testclient import TestClient

from runbook.catalog.loader import load_catalog
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.serve.app import ServeConfig, build_app
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "t0ken-for-the-public-page-tests"
SECRET = "SECRET-7f3a"  # marks every piece of internal text: none of it may reach the public
HOSTILE = f'<script>window.__pwned=1</script>"><img src=x onerror="alert(1)">{SECRET}'
CHAT_PLAYBOOK = f"""\
apiVersion: runbook/v1
kind: Playbook
id: chat-down
title: "Chat down in {{region}} {SECRET}-title"
service: messaging
severity: SEV1
escalation: rtc-default
parameters:
  region: {{summary: Region, label: region}}
symptoms:
  - {{id: chat-down, summary: Chat down, match: {{labels: {{alertname: ChatDown}}}}}}
degradations:
  no-typing:
    summary: Typing indicators off {SECRET}-degradation
    set: {{chat.typing.enabled: false}}
steps:
  - id: tell-team
    kind: communicate
    title: Tell the team {SECRET}-step
    audience: internal
    channel: Status page
    template: "{SECRET}-internal {{region}} commander {{commander}}"
  - id: first-update
    kind: communicate
    title: First public update
    audience: customers
    channel: Status page
    template: "Some messages are delayed. We are looking into it."
  - id: restart
    title: Restart the workers
    instructions: "kubectl -n chat rollout restart deploy/{SECRET}-workers"
  - id: typing-off
    kind: degrade
    degradation: no-typing
  - id: found
    kind: communicate
    title: Found it
    audience: customers
    channel: Status page
    status: identified
    template: "We found the cause & are fixing it."
  - id: email
    kind: communicate
    title: Email enterprise accounts
    audience: customers
    channel: Email to enterprise accounts
    template: "{SECRET}-email"
  - id: watching
    kind: communicate
    title: Watching
    audience: customers
    channel: Status page
    template: "A fix is in place; we are watching."
roles:
  commander: {{title: Incident commander}}
reminders:
  - {{id: public-update, every: 30m, from: public-update, message: "Customers have heard nothing for 30 minutes"}}
"""


@pytest.fixture
def world(tmp_path):
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "chat.yaml").write_text(CHAT_PLAYBOOK)
    flags = video_on(tmp_path)
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
    catalog = load_catalog([str(ROOT / "playbooks"), str(tmp_path / "catalog")])
    assert not catalog.errors, catalog.errors
    engine = Engine(Store(str(tmp_path / "db.sqlite"), key=None), VirtualClock(), host, catalog)
    page = catalog.models("StatusPage")["rtc-public"]
    app = build_app(EngineService(engine), ServeConfig(TOKEN, tick_every=0, public=page))
    with TestClient(app, follow_redirects=False) as client:
        yield engine, client
    engine.store.close()


def components(client) -> dict:
    return {c["name"]: c["status"] for c in client.get("/api/v2/components.json").json()["components"]
            if not c["group"]}


def test_every_public_route_answers_without_a_token(world):
    _, client = world
    for path in ("/status", "/api/v2/summary.json", "/api/v2/status.json", "/api/v2/components.json",
                 "/api/v2/incidents.json", "/api/v2/incidents/unresolved.json",
                 "/api/v2/scheduled-maintenances.json", "/history.atom", "/history.rss", "/static/page.css"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert client.get("/api/v2/summary.json").headers["access-control-allow-origin"] == "*"
    assert client.get("/api/alerts").status_code == 401  # the intake stays behind its token


def test_a_quiet_page_says_all_systems_operational(world):
    _, client = world
    status = client.get("/api/v2/status.json").json()
    assert status["status"] == {"indicator": "none", "description": "All Systems Operational"}
    assert set(components(client).values()) == {"operational"}
    assert "All Systems Operational" in client.get("/status").text


def test_a_staged_degradation_sets_the_component_state_by_its_share(world):
    engine, client = world
    iid = engine.open("video-call-degraded", "ana").id
    assert components(client)["Video calls"] == "degraded_performance"  # open: the component's `open` state
    engine.degrade(iid, "ana", "audio-only")  # stage 1: 10% of users
    assert components(client)["Video calls"] == "degraded_performance"
    assert "some users are on audio-only calls" in client.get("/status").text
    engine.stage(iid, "ana", "audio-only", "advance")
    engine.stage(iid, "ana", "audio-only", "advance")  # 100%
    assert engine.state(iid).degradations["audio-only"].share == 100
    assert components(client)["Video calls"] == "partial_outage"
    assert components(client)["Login"] == "operational"
    assert client.get("/api/v2/status.json").json()["status"]["indicator"] == "major"
    engine.resolve(iid, "ana")
    assert components(client)["Video calls"] == "operational"
    # the day keeps the worst state it saw
    text = client.get("/status").text
    assert re.search(r'class="day state-partial_outage" title="\d{4}-\d\d-\d\d: Partial outage"', text)


def test_drills_never_reach_the_public(world):
    engine, client = world
    engine.open("video-call-degraded", "ana", drill=True)
    assert set(components(client).values()) == {"operational"}
    assert client.get("/api/v2/incidents.json").json()["incidents"] == []


def walk(engine, iid):
    """Post the first update, restart, turn typing off, post the identified one, the email and the
    last one: the chat playbook's steps in order, with a commander whose name is internal."""
    engine.assign(iid, "ana", "commander", f"dee-{SECRET}")
    for step in ("tell-team", "first-update", "restart", "typing-off", "found", "email"):
        engine.complete(iid, "ana", step)
        engine.clock.advance(minutes=5)


def test_public_updates_are_the_customer_messages_in_phases_as_posted(world):
    engine, client = world
    iid = engine.open("chat-down", "ana", params={"region": "eu-west-1"}).id
    walk(engine, iid)
    engine.mitigate(iid, "ana")
    engine.complete(iid, "ana", "watching")  # no status: given: monitoring, since it is mitigated
    incidents = client.get("/api/v2/incidents/unresolved.json").json()["incidents"]
    assert len(incidents) == 1
    incident = incidents[0]
    assert [(u["status"], u["body"]) for u in incident["incident_updates"]] == [
        ("monitoring", "A fix is in place; we are watching."),
        ("identified", "We found the cause & are fixing it."),
        ("investigating", "Some messages are delayed. We are looking into it.")]
    assert incident["status"] == "monitoring" and incident["impact"] == "minor"
    assert incident["name"] == "Degraded performance: Messaging"
    first = incident["incident_updates"][-1]["affected_components"]
    assert first == [{"code": first[0]["code"], "name": "Messaging", "old_status": "operational",
                      "new_status": "degraded_performance"}]
    from runbook.engine.metrics import export_markdown

    assert "(response, announced as identified):" in export_markdown(engine.state(iid))  # the record, in words
    engine.resolve(iid, "ana")
    assert client.get("/api/v2/incidents/unresolved.json").json()["incidents"] == []
    done = client.get("/api/v2/incidents.json").json()["incidents"][0]
    assert done["status"] == "resolved" and done["resolved_at"]


def test_the_responder_sets_an_updates_phase_and_other_steps_refuse_one(world):
    engine, client = world
    iid = engine.open("chat-down", "ana", params={"region": "eu-west-1"}).id
    engine.assign(iid, "ana", "commander", "dee")
    engine.complete(iid, "ana", "tell-team")
    engine.complete(iid, "ana", "first-update", status="identified")
    assert [m.record.status for m in engine.state(iid).messages] == ["", "identified"]  # the team hears no phase
    with pytest.raises(CommandError, match="a status is for communicate steps with audience: customers"):
        engine.complete(iid, "ana", "restart", status="monitoring")
    update = client.get("/api/v2/incidents.json").json()["incidents"][0]["incident_updates"][0]
    assert update["status"] == "identified"


def test_the_json_has_statuspages_documented_shapes(world):
    engine, client = world
    iid = engine.open("chat-down", "ana", params={"region": "eu-west-1"}).id
    walk(engine, iid)
    summary = client.get("/api/v2/summary.json").json()
    assert set(summary) == {"page", "status", "components", "incidents", "scheduled_maintenances"}
    assert set(summary["page"]) == {"id", "name", "url", "time_zone", "updated_at"}
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    assert stamp.match(summary["page"]["updated_at"])
    component_keys = {"id", "name", "status", "created_at", "updated_at", "position", "description", "showcase",
                      "start_date", "group_id", "page_id", "group", "only_show_if_degraded"}
    for c in summary["components"]:
        assert component_keys <= set(c)
        assert c["status"] in ("operational", "degraded_performance", "partial_outage", "major_outage")
        assert c["page_id"] == summary["page"]["id"]
    groups = [c for c in summary["components"] if c["group"]]
    assert {g["name"] for g in groups} == {"Calls", "Messages", "Accounts"}
    members = {c["id"] for c in summary["components"] if not c["group"]}
    assert all(set(g["components"]) <= members for g in groups)
    incident_keys = {"id", "name", "status", "created_at", "updated_at", "monitoring_at", "resolved_at", "impact",
                     "shortlink", "started_at", "page_id", "incident_updates", "components"}
    update_keys = {"id", "status", "body", "incident_id", "created_at", "updated_at", "display_at",
                   "affected_components", "deliver_notifications", "custom_tweet", "tweet_id"}
    (incident,) = summary["incidents"]
    assert set(incident) == incident_keys
    assert incident["status"] in ("investigating", "identified", "monitoring", "resolved", "postmortem")
    assert incident["impact"] in ("none", "minor", "major", "critical")
    for update in incident["incident_updates"]:
        assert set(update) == update_keys and update["incident_id"] == incident["id"]
        assert stamp.match(update["created_at"])
    assert summary["status"]["indicator"] == "minor"
    assert client.get("/api/v2/scheduled-maintenances.json").json() == {"page": summary["page"],
                                                                       "scheduled_maintenances": []}


def test_the_feeds_hold_one_entry_per_public_update(world):
    engine, client = world
    iid = engine.open("chat-down", "ana", params={"region": "eu-west-1"}).id
    walk(engine, iid)
    for path in ("/history.atom", "/history.rss"):
        answer = client.get(path)
        parsed = feedparser.parse(answer.content)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert [e.title for e in parsed.entries] == ["Degraded performance: Messaging: Identified",
                                                     "Degraded performance: Messaging: Investigating"]
        assert parsed.entries[0].summary == "We found the cause &amp; are fixing it." or \
            parsed.entries[0].summary == "We found the cause & are fixing it."
        assert len({e.id for e in parsed.entries}) == 2
    assert client.get("/history.atom").headers["content-type"].startswith("application/atom+xml")


def test_nothing_internal_reaches_any_public_page_feed_or_json(world):
    engine, client = world
    iid = engine.open("chat-down", f"ana-{SECRET}", params={"region": HOSTILE}).id
    engine.note(iid, f"bo-{SECRET}", f"{SECRET}-note {HOSTILE}")
    engine.acknowledge(iid, f"cy-{SECRET}")
    walk(engine, iid)
    engine.resolve(iid, "ana")
    iid2 = engine.open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
    state = engine.state(iid)
    assert any(SECRET in m.record.text for m in state.messages)  # the internal and the email ones hold it
    internal_words = [SECRET, iid, iid2, "SEV1", "SEV2", "kubectl", "eu-west-1", "Incident commander", "ana",
                      "#incidents", "<script", "onerror"]
    for path in ("/status", "/api/v2/summary.json", "/api/v2/status.json", "/api/v2/components.json",
                 "/api/v2/incidents.json", "/api/v2/incidents/unresolved.json",
                 "/api/v2/scheduled-maintenances.json", "/history.atom", "/history.rss"):
        text = client.get(path).text
        body = json.dumps(json.loads(text)) if path.endswith(".json") else text
        for word in internal_words:
            assert word not in body, (path, word)
    assert "We found the cause" in client.get("/history.rss").text  # the public part is there
    from runbook.serve.public_state import public_id

    ids = {i["id"] for i in client.get("/api/v2/incidents.json").json()["incidents"]}
    assert public_id(iid) not in ids  # the public id cannot be had from the incident id alone


def test_serve_public_needs_a_status_page_and_says_how(rb):
    rb.catalogs = [ROOT / "tests" / "serve_catalog"]
    error = rb("serve", "--public", "--port", "0", expect=2, RUNBOOK_SERVE_TOKEN=TOKEN)
    assert "--public needs a StatusPage document in the catalog" in error
    rb.catalogs = [ROOT / "playbooks"]
    error = rb("serve", "--public", "--status-page", "nope", "--port", "0", expect=2, RUNBOOK_SERVE_TOKEN=TOKEN)
    assert "no StatusPage 'nope' in the catalog (it has rtc-public)" in error


def test_the_cadence_reminder_counts_from_the_last_public_update(world):
    engine, _ = world
    iid = engine.open("chat-down", "ana", params={"region": "eu-west-1"}).id
    engine.assign(iid, "ana", "commander", "dee")

    def fired():
        return [e.record.n for e in engine.state(iid).events
                if e.type == "reminder_fired" and e.record.reminder == "public-update"]

    engine.clock.advance(minutes=29)
    engine.tick(iid)
    assert fired() == []
    engine.clock.advance(minutes=2)
    engine.tick(iid)
    assert fired() == [1]  # 31 minutes without a word to customers
    engine.complete(iid, "ana", "tell-team")  # internal: the public still heard nothing
    engine.complete(iid, "ana", "first-update")
    engine.clock.advance(minutes=25)
    engine.tick(iid)
    assert fired() == [1]  # 25 minutes after the public update: not yet
    engine.clock.advance(minutes=6)
    engine.tick(iid)
    assert fired() == [1, 1]  # counted again from the update
    engine.resolve(iid, "ana")
    engine.clock.advance(hours=2)
    engine.tick(iid)
    assert fired() == [1, 1]


def video_alert(fingerprint: str, severity: str):
    from runbook.engine.intake import Alert

    return Alert(fingerprint, "firing", "2026-01-05T09:01:00Z",
                 {"alertname": "RTCVideoFreezeRatioHigh", "service": "rtc-video", "severity": severity})


def test_alerts_in_a_maintenance_window_are_kept_without_paging_below_its_threshold(world):
    from datetime import timedelta

    from runbook.engine import maintenance

    engine, _ = world
    now = engine.clock.now()
    window = maintenance.add(engine, "Media server upgrade", ("video-calls",), now, now + timedelta(hours=2),
                             f"ana-{SECRET}", body="Video calls may drop briefly.")
    assert window["page_at"] == "SEV1"  # by default the most severe level still pages
    kept, = engine.receive_alerts([video_alert("f1", "warning")])  # SEV3
    assert (kept.outcome, kept.incident) == ("maintenance", None)
    assert "maintenance window 1 (Media server upgrade) covers video-calls" in kept.reason
    assert engine.list(open_only=True) == []
    paged, = engine.receive_alerts([video_alert("f2", "critical")])  # SEV1: pages even during the window
    assert paged.outcome == "opened"
    engine.resolve(paged.incident, "ana")
    maintenance.cancel(engine, window["id"], "ana")
    after, = engine.receive_alerts([video_alert("f3", "warning")])
    assert after.outcome == "opened"  # cancelled: alerts open incidents again


def test_a_window_is_on_the_public_page_and_in_the_json(world):
    from datetime import timedelta

    from runbook.engine import maintenance

    engine, client = world
    now = engine.clock.now()
    maintenance.add(engine, "Database upgrade", ("messaging",), now + timedelta(hours=1), now + timedelta(hours=3),
                    f"ana-{SECRET}", page_at="SEV2", body="Messages may be delayed for a few minutes.")
    (window,) = client.get("/api/v2/scheduled-maintenances.json").json()["scheduled_maintenances"]
    assert (window["name"], window["status"], window["impact"]) == ("Database upgrade", "scheduled", "maintenance")
    assert (window["scheduled_for"], window["scheduled_until"]) == ("2026-01-05T10:00:00.000Z",
                                                                    "2026-01-05T12:00:00.000Z")
    assert [c["name"] for c in window["components"]] == ["Messaging"]
    assert window["incident_updates"][0]["body"] == "Messages may be delayed for a few minutes."
    assert components(client)["Messaging"] == "operational"
    page = client.get("/status").text
    assert "Database upgrade" in page and "Messages may be delayed" in page and "Scheduled" in page
    engine.clock.advance(hours=1, minutes=1)
    assert components(client)["Messaging"] == "under_maintenance"
    assert client.get("/api/v2/status.json").json()["status"] == {"indicator": "maintenance",
                                                                  "description": "Service Under Maintenance"}
    text = json.dumps(client.get("/api/v2/summary.json").json())
    assert SECRET not in text and "SEV2" not in text and "ana" not in text
    engine.clock.advance(hours=2)
    assert client.get("/api/v2/summary.json").json()["scheduled_maintenances"] == []


def test_maintenance_commands_add_list_and_cancel(rb):
    rb.catalogs = [ROOT / "playbooks"]
    said = rb("maintenance", "add", "Database upgrade", "--component", "messaging", "--start",
              "2099-01-01T02:00", "--for", "2h", "--body", "Messages may be delayed.")
    assert said.startswith("maintenance window 1 scheduled: Database upgrade, 2099-01-01T02:00 to 2099-01-01T04:00")
    assert "SEV1 and above still page" in said
    (row,) = json.loads(rb("maintenance", "list", "--json"))
    assert (row["title"], row["components"], row["cancelled_at"]) == ("Database upgrade", ["messaging"], None)
    assert "Database upgrade" in rb("maintenance", "list")
    assert rb("maintenance", "cancel", "1") == "maintenance window 1 cancelled: Database upgrade\n"
    assert "cancelled by ana" in rb("maintenance", "list")
    assert "was cancelled already" in rb("maintenance", "cancel", "1", expect=5)
    assert "no maintenance window 7" in rb("maintenance", "cancel", "7", expect=3)
    error = rb("maintenance", "add", "X", "--component", "nope", "--for", "1h", expect=2)
    assert "unknown component nope; the status page has audio-calls" in error
    error = rb("maintenance", "add", "X", "--component", "login", "--start", "tomorrow", "--for", "1h", expect=2)
    assert "--start 'tomorrow' is not a time" in error
    assert "--until TIME or --for DURATION" in rb("maintenance", "add", "X", "--component", "login", expect=2)


def test_the_internal_front_page_says_a_staged_share_in_words_without_contradicting_it(world):
    """The staff page (viewer token) beside the public one: "audio-only for about 10% of users",
    not followed by the degradation's summary written for everyone."""
    engine, _ = world
    view = "viewer-token-for-the-staff-page"
    page = engine.catalog.models("StatusPage")["rtc-public"]
    app = build_app(EngineService(engine), ServeConfig(TOKEN, tick_every=0, view_token=view, public=page))
    iid = engine.open("video-call-degraded", "ana", params={"region": "eu-west-1"}).id
    engine.degrade(iid, "ana", "audio-only")
    with TestClient(app) as staff:
        text = " ".join(re.sub(r"<[^>]+>", " ", staff.get("/", headers={"Authorization": f"Bearer {view}"}).text)
                        .split())
    assert "audio-only for about 10% of users" in text
    summary = engine.catalog.models("Playbook")["video-call-degraded"].degradations["audio-only"].summary
    assert summary not in text
    assert "region: eu-west-1" in text


def test_the_linter_checks_a_status_page_against_the_playbooks(tmp_path):
    (tmp_path / "page.yaml").write_text("""\
apiVersion: runbook/v1
kind: StatusPage
id: p
title: P
components:
  - {id: a, name: A, services: [rtc-vido]}
  - {id: a, name: B, degradations: {audio-onyl: [{from: 0, state: partial_outage}]}}
""")
    catalog = load_catalog([str(ROOT / "playbooks" / "video-call-degraded.yaml"), str(tmp_path)])
    said = [(p.severity, p.path, p.message) for p in catalog.problems]
    assert ("error", "components[1].id", "duplicate component id 'a', already used on line 6") in said
    assert any(path == "components[0].services[0]" and "did you mean 'rtc-video'?" in message
               for severity, path, message in said if severity == "warning")
    assert any(path == "components[1].degradations.audio-onyl" and "did you mean 'audio-only'?" in message
               for severity, path, message in said if severity == "warning")


def test_status_goes_with_done_on_the_command_line(rb):
    iid = rb("incident", "open", "video-call-degraded").strip()
    error = rb("incident", "step", iid, "--skip", "no", "--status", "monitoring", expect=2)
    assert "--status goes with --done" in error
    assert "'fixed' is not one of" in rb("incident", "step", iid, "--done", "--status", "fixed", expect=2)
    assert "posts nothing to customers" in rb("incident", "step", iid, "--done", "--status", "monitoring", expect=5)
