"""PagerDuty's acknowledgements coming back: `POST /pagerduty` takes signed V3 webhooks and records
what was done in PagerDuty's app on the incident whose log opened that alert, as the roster person
with that PagerDuty user id. Runbook's pages go to a fake Events API on loopback (test_pagerduty's
fixtures); the webhooks are signed here as PagerDuty signs them."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from starlette.testclient import TestClient
from test_pagerduty import CATALOG, PUBLIC, pagerduty  # noqa: F401 (a fixture)

from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.plugins import PluginHost
from runbook.serve.app import ServeConfig, build_app
from runbook.serve.pagerduty import signed
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store

SECRET = "whsec-test-0123456789abcdef"
TOKEN = "intake-token-0123456789"
ROSTER = CATALOG.replace("{id: ana, name: Ana, pager: ana-handle}",
                         "{id: ana, name: Ana, pager: ana-handle, pagerduty: PANA001}")


def webhook(kind: str, key: str, event_id: str = "01ABC", agent=("PANA001", "Ana Example"), to=()) -> bytes:
    return json.dumps({"event": {
        "id": event_id, "event_type": kind, "resource_type": "incident",
        "occurred_at": "2026-12-07T21:00:00.000Z",
        "agent": {"id": agent[0], "summary": agent[1], "type": "user_reference",
                  "html_url": f"https://acme.pagerduty.com/users/{agent[0]}"},
        "client": {"name": "PagerDuty"},
        "data": {"id": "Q1PDINC", "type": "incident", "incident_key": key, "status": kind.split(".")[1],
                 "title": "SEV2: Calls are down — escalation level 1",
                 "assignees": [{"id": pid, "summary": name, "type": "user_reference"} for pid, name in to]},
    }}).encode()


def sign(body: bytes, *secrets: str) -> str:
    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)


@pytest.fixture
def server(tmp_path, pagerduty):  # noqa: F811 (the fixture imported above)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "all.yaml").write_text(ROSTER)
    clock = VirtualClock()
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None, notify_timeout=5,
                               public_url=PUBLIC), entry_points=False)
    engine = Engine(store, clock, host, load([str(tmp_path / "catalog")]))
    iid = engine.open("calls-down", "ana").id
    engine.tick(iid)  # level 1 paged at PagerDuty: runbook-INC-…-L1

    class Server:
        incident = iid
        key = f"runbook-{iid}-L1"
        pd = pagerduty

        def post(self, body: bytes, signature: str | None = None):
            headers = {"Content-Type": "application/json"}
            if signature is not False:
                headers["X-PagerDuty-Signature"] = signature or sign(body, SECRET)
            return client.post("/pagerduty", content=body, headers=headers)

        def state(self):
            return engine.state(iid)

    app = build_app(EngineService(engine), ServeConfig(TOKEN, tick_every=0, pagerduty_secret=SECRET))
    with TestClient(app) as client:
        yield Server()
    store.close()


def test_an_acknowledgement_made_in_pagerduty_acknowledges_the_incident_as_the_roster_person(server):
    answer = server.post(webhook("incident.acknowledged", server.key))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"outcome": "recorded", "incident": server.incident}
    state = server.state()
    assert state.acknowledged_by == "ana"  # the roster person whose pagerduty: id is the agent's
    assert state.status == "acknowledged"
    # the ladder stops: runbook tells the pagers, as for an acknowledgement made in runbook
    assert ("acknowledge", server.key) in [(e["event_action"], e["dedup_key"]) for e in server.pd.events]


def test_the_same_delivery_twice_records_nothing_more(server):
    body = webhook("incident.acknowledged", server.key, event_id="01SAME")
    assert server.post(body).json()["outcome"] == "recorded"
    seq = server.state().last_seq
    again = server.post(body)
    assert again.status_code == 200 and again.json()["outcome"] == "repeat"
    assert server.state().last_seq == seq


def test_bad_or_missing_signatures_are_refused_and_record_nothing(server):
    body = webhook("incident.acknowledged", server.key)
    seq = server.state().last_seq
    forged = server.post(body, signature=sign(body, "another-secret-0123456789"))
    assert forged.status_code == 403
    tampered = server.post(body.replace(b"PANA001", b"PEVE666"), signature=sign(body, SECRET))
    assert tampered.status_code == 403  # the signature is over the exact body
    missing = server.post(body, signature=False)
    assert missing.status_code == 400 and "X-PagerDuty-Signature" in missing.json()["error"]
    assert server.state().last_seq == seq and server.state().acknowledged_at is None


def test_a_rotated_secret_is_accepted_beside_the_old_one():
    body = b'{"event": {}}'
    assert signed(body, sign(body, "old-secret-0123456789", SECRET), SECRET)
    assert signed(body, sign(body, SECRET) + ",v0=abc", SECRET)
    assert not signed(body, "v1=" + "0" * 64, SECRET)
    assert not signed(body, sign(body, SECRET).replace("v1=", "v2="), SECRET)


def test_an_agent_not_in_the_roster_is_recorded_by_name_as_from_pagerduty(server):
    body = webhook("incident.acknowledged", server.key, agent=("PXYZ999", "Zoë\u202e \x1b[31mEvil"))
    assert server.post(body).json()["outcome"] == "recorded"
    state = server.state()
    assert state.acknowledged_by == "Zoë [31mEvil (PagerDuty)"  # plain: no bidi override, no escape
    assert "\x1b" not in state.acknowledged_by and "\u202e" not in state.acknowledged_by


def test_a_resolve_in_pagerduty_is_recorded_and_counts_as_handled_but_does_not_resolve_runbook(server):
    answer = server.post(webhook("incident.resolved", server.key))
    assert answer.json()["outcome"] == "recorded"
    state = server.state()
    assert state.acknowledged_by == "ana"  # someone handled the page: the ladder stops
    assert not state.resolved  # resolving restores degradations: decided in runbook
    assert state.escalation.reported  # the pager's event recorded


def test_a_reassignment_is_recorded_with_the_new_assignees(server, tmp_path):
    body = webhook("incident.reassigned", server.key, to=[("PBOB002", "Bo Boss")])
    assert server.post(body).json()["outcome"] == "recorded"
    state = server.state()
    assert state.acknowledged_at is None  # a reassignment is not an acknowledgement
    [seq] = state.escalation.reported.values()
    assert seq == state.last_seq


def test_keys_runbook_never_opened_and_other_event_types_are_answered_and_ignored(server):
    seq = server.state().last_seq
    other = server.post(webhook("incident.acknowledged", f"runbook-{server.incident}-L9"))
    assert other.status_code == 200 and other.json() == {"outcome": "unknown", "incident": server.incident}
    foreign = server.post(webhook("incident.acknowledged", "d3640fbd41094207a1c11e58e46b1662"))
    assert foreign.json() == {"outcome": "unknown", "incident": None}
    gone = server.post(webhook("incident.acknowledged", "runbook-INC-NOPE00-L1"))
    assert gone.json()["outcome"] == "unknown"
    annotated = server.post(webhook("incident.annotated", server.key))
    assert annotated.json() == {"outcome": "ignored"}
    assert server.state().last_seq == seq


def test_a_live_drills_alert_keys_are_matched_too():
    from runbook.engine.pages import KEY

    assert KEY.match("runbook-DRL-1A2B3C-L1")[1] == "DRL-1A2B3C"
    assert KEY.match("runbook-INC-1A2B3C-rtc-critical-L2-R2")[1] == "INC-1A2B3C"
    assert KEY.match("other-INC-1A2B3C-L1") is None


def test_not_a_v3_webhook_is_a_clear_400(server):
    for body, says in ((b"not json", "not JSON"), (b"[]", "no 'event' object"),
                       (b'{"event": {"event_type": "incident.acknowledged", "id": "1"}}', "no 'data' object"),
                       (b'{"event": {"event_type": 5}}', "expected text"),
                       (b"[" * 100_000 + b"]" * 100_000, "not JSON")):
        answer = server.post(body)
        assert answer.status_code == 400, body
        assert says in answer.json()["error"]


def test_the_webhook_is_off_without_a_secret(tmp_path):
    store = Store(str(tmp_path / "db.sqlite"))
    engine = Engine(store, VirtualClock(), PluginHost(Settings(flags_file=str(tmp_path / "f.json"), plugins_dir=None),
                                                      entry_points=False), load([]))
    with TestClient(build_app(EngineService(engine), ServeConfig(TOKEN, tick_every=0))) as client:
        body = webhook("incident.acknowledged", "runbook-INC-X-L1")
        answer = client.post("/pagerduty", content=body, headers={"X-PagerDuty-Signature": sign(body, SECRET)})
    assert answer.status_code == 404
    assert "RUNBOOK_PAGERDUTY_WEBHOOK_SECRET" in answer.json()["error"]
    store.close()


def test_the_timeline_says_what_pagerduty_reported(server):
    server.post(webhook("incident.reassigned", server.key, event_id="E1", to=[("PBOB002", "Bo Boss")]))
    server.post(webhook("incident.acknowledged", server.key, event_id="E2"))
    from runbook.engine.events import PagerReported

    said = [e.record.describe() for e in server.state().events if isinstance(e.record, PagerReported)]
    assert said == [f"PagerDuty: reassigned to Bo Boss by Ana Example (alert {server.key})",
                    f"PagerDuty: acknowledged by Ana Example (alert {server.key})"]
