"""The team's chat on a real Matrix homeserver (Synapse on loopback, tests/helpers/synapse.py):
incidents announced with a thread each, the record posted as it happens, commands from roster
people taken once and recorded as them, others refused, and nothing lost or doubled when the
homeserver is killed and comes back."""

from __future__ import annotations

import os
import time

import pytest
from helpers.components import missing
from helpers.synapse import Synapse, interpreter

from runbook.catalog import load
from runbook.default_plugins import matrix
from runbook.engine import Engine, VirtualClock, approvals
from runbook.engine.chat import Chat
from runbook.pluginapi import ChatCommand
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

CATALOG = """
apiVersion: runbook/v1
kind: SeverityPolicy
id: sev
levels:
  - {id: SEV1, title: Critical}
  - {id: SEV2, title: Major}
---
apiVersion: runbook/v1
kind: EscalationPolicy
id: ladder
repeat: 0
levels:
  - notify: [{person: amira}]
    escalate_after: 5m
  - notify: [{person: bo}]
    escalate_after: 10m
---
apiVersion: runbook/v1
kind: Roster
id: team
timezone: UTC
people:
  - {id: amira, name: Amira Haddad, matrix: "@amira:localhost"}
  - {id: bo, name: Bo Boss}
---
apiVersion: runbook/v1
kind: Playbook
id: video-bad
title: Video calls degraded
service: rtc
severity: SEV2
escalation: ladder
roles:
  commander: {title: Incident commander}
degradations:
  audio-only:
    summary: Calls without video
    set: {rtc.video.enabled: false}
steps:
  - id: drain
    kind: action
    title: Drain the region
    destructive: true
    approval: {by: commander, prompt: "Drain eu-west-1?"}
    run: [echo, drained]
  - id: back
    kind: restore
    degradation: audio-only
---
apiVersion: runbook/v1
kind: Playbook
id: tell-customers
title: Customers hear of degraded calls
service: rtc
severity: SEV2
escalation: ladder
parameters:
  region: {summary: Where calls are degraded, default: eu-west-1}
roles:
  commander: {title: Incident commander}
steps:
  - id: words
    kind: communicate
    title: Tell customers
    channel: status-page
    audience: customers
    compose: true
    template: "Calls are degraded in {region}."
    approval: {by: commander, prompt: "Post this for {region}?"}
    repeat: {every: 30m}
  - title: Fix the calls
    mitigates: true
"""


def until(check, what: str, timeout: float = 30.0):
    """Poll `check` (a real homeserver answers in its own time) until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@pytest.fixture(scope="session")
def synapse(tmp_path_factory):
    python = interpreter()
    if python is None:
        missing("Synapse", "run ./scripts/test (it installs matrix-synapse into .venv-synapse/), or set "
                "RUNBOOK_SYNAPSE_PYTHON to a Python that has it")
    server = Synapse(python, tmp_path_factory.mktemp("synapse"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def chat(synapse, tmp_path, monkeypatch):
    bot, bot_token = synapse.register(f"runbook{os.getpid()}{time.monotonic_ns() % 10**9}")
    amira, amira_token = "@amira:localhost", None
    try:
        _, amira_token = synapse.register("amira")
    except RuntimeError:  # registered by an earlier test: log in again
        amira_token = synapse.call("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "amira"},
            "password": "pw-amira-0123456789"})["access_token"]
    eve, eve_token = synapse.register(f"eve{time.monotonic_ns() % 10**9}")
    room = synapse.create_room(bot_token, [amira, eve])
    synapse.join(amira_token, room)
    synapse.join(eve_token, room)
    token_file = tmp_path / "matrix-token"
    token_file.write_text(bot_token)
    token_file.chmod(0o600)
    for name, value in (("HOMESERVER", synapse.url), ("USER", bot), ("TOKEN_FILE", str(token_file)),
                        ("ROOM", room)):
        monkeypatch.setenv(f"RUNBOOK_MATRIX_{name}", value)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "all.yaml").write_text(CATALOG)
    store = Store(str(tmp_path / "db.sqlite"))
    host = PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None, notify_timeout=10),
                      entry_points=False)
    engine = Engine(store, VirtualClock(), host, load([str(tmp_path / "catalog")]))

    class Chatroom:
        def __init__(self):
            self.engine, self.bridge, self.server = engine, Chat(), synapse
            self.room, self.bot_token = room, bot_token

        def say(self, text: str, as_eve: bool = False) -> str:
            return synapse.say(eve_token if as_eve else amira_token, room, text)

        def messages(self) -> list[dict]:
            return synapse.messages(bot_token, room)

        def bodies(self) -> list[str]:
            return [m["content"]["body"] for m in self.messages() if m["sender"] == bot]

        def deliver(self) -> int:
            return self.bridge.deliver(engine)

        def take(self, remote: str) -> None:
            """Run receive passes (as serve's chat lane does) until the bot has taken the message `remote`."""
            until(lambda: any(c.remote == remote for c in self.bridge.receive(engine)),
                  f"the bot never received {remote}")

    chatroom = Chatroom()
    yield chatroom
    matrix.close()
    store.close()


def test_hook_chat_announce_starts_a_thread_per_incident_and_edits_its_root_as_things_change(chat):
    iid = chat.engine.open("video-bad", "ana").id
    until(chat.deliver, "nothing posted")
    root = chat.engine.state(iid).chat_root
    assert root and root.startswith("$")
    first = next(m for m in chat.messages() if m["event_id"] == root)
    assert f"SEV2 {iid}: Video calls degraded" in first["content"]["body"]
    assert "NOT acknowledged" in first["content"]["body"]
    assert first["content"]["msgtype"] == "m.notice" and "formatted_body" not in first["content"]

    chat.engine.acknowledge(iid, "ana")
    until(chat.deliver, "the acknowledgement never posted")
    messages = chat.messages()
    in_thread = [m for m in messages if (m["content"].get("m.relates_to") or {}).get("rel_type") == "m.thread"]
    assert any(f"{iid}" in m["content"]["body"] and "acknowledged" in m["content"]["body"] for m in in_thread)
    assert all(m["content"]["m.relates_to"]["event_id"] == root for m in in_thread)
    edits = [m for m in messages if (m["content"].get("m.relates_to") or {}).get("rel_type") == "m.replace"]
    assert edits and "acknowledged by ana" in edits[-1]["content"]["m.new_content"]["body"]
    assert edits[-1]["content"]["m.relates_to"]["event_id"] == root  # edited, not posted again


def test_hook_chat_update_posts_each_event_once_even_when_delivered_again(chat):
    iid = chat.engine.open("video-bad", "ana").id
    until(chat.deliver, "nothing posted")
    chat.engine.note(iid, "ana", "looking at the SFU graphs")  # notes stay in runbook: not in SHOWN
    chat.engine.severity(iid, "ana", "SEV1")
    until(chat.deliver, "the severity change never posted")
    assert chat.deliver() == 0  # nothing new: nothing posted again
    severity = [b for b in chat.bodies() if "severity SEV2 → SEV1" in b]
    assert len(severity) == 1, chat.bodies()


def test_hook_chat_receive_takes_a_roster_persons_commands_as_that_person(chat):
    iid = chat.engine.open("video-bad", "ana").id
    until(chat.deliver, "nothing posted")
    chat.take(chat.say(f"!ack {iid}"))
    state = chat.engine.state(iid)
    assert state.acknowledged_by == "amira"  # the roster person whose matrix: id wrote it
    until(lambda: any(f"{iid} acknowledged by amira" in b for b in chat.bodies()), "no reply")

    chat.take(chat.say(f"!note {iid} SFU eu-west-1 at 95% CPU"))
    notes = [e for e in chat.engine.state(iid).events if e.type == "note_added"]
    assert [(e.actor, e.record.text) for e in notes] == [("amira", "SFU eu-west-1 at 95% CPU")]

    chat.take(chat.say(f"!status {iid}"))
    until(lambda: any("acknowledged by amira" in b and "main: Drain the region" in b for b in chat.bodies()),
          "no status reply")
    chat.take(chat.say("!help"))
    until(lambda: any(b.startswith("runbook commands: !ack ID") for b in chat.bodies()), "no help")


def test_approve_shows_what_was_approved_and_degrade_and_resolve_say_what_they_wrote(chat):
    iid = chat.engine.open("video-bad", "ana").id
    chat.engine.assign(iid, "ana", "commander", "amira")
    chat.take(chat.say(f"!approve {iid}"))  # shows what it would approve, and the code for exactly that
    assert not [e for e in chat.engine.state(iid).events if e.type == "approval_granted"]
    shown = until(lambda: next((b for b in chat.bodies() if "needs approval by commander" in b), None),
                  "the gate's content was not shown")
    assert "$ echo drained" in shown and "prompt: Drain eu-west-1?" in shown
    code = shown.rsplit(" ", 1)[1]
    assert shown.endswith(f"!approve {iid} drain {code}") and len(code) == 8

    chat.take(chat.say(f"!approve {iid} drain 00000000"))  # a code for something else: refused
    assert not [e for e in chat.engine.state(iid).events if e.type == "approval_granted"]
    until(lambda: any("is not what code 00000000 was shown for" in b for b in chat.bodies()), "no refusal")

    chat.take(chat.say(f"!approve {iid} drain {code}"))
    granted = [e for e in chat.engine.state(iid).events if e.type == "approval_granted"]
    assert [e.actor for e in granted] == ["amira"] and granted[0].record.digest.startswith(code)
    until(lambda: any("approved by amira" in b and "$ echo drained" in b for b in chat.bodies()),
          "the approval reply does not show what was approved")

    chat.take(chat.say(f"!degrade {iid} audio-only"))
    assert chat.engine.state(iid).degradations["audio-only"].applied
    until(lambda: any("audio-only applied by amira" in b and "rtc.video.enabled" in b for b in chat.bodies()),
          "no degrade reply")
    chat.take(chat.say(f"!resolve {iid}"))
    state = chat.engine.state(iid)
    assert state.resolved and not state.degradations["audio-only"].applied


def test_approve_takes_the_text_a_compose_step_posts_bound_to_what_was_shown(chat):
    iid = chat.engine.open("tell-customers", "ana").id
    chat.engine.assign(iid, "ana", "commander", "amira")
    chat.take(chat.say(f"!approve {iid}"))
    shown = until(lambda: next((b for b in chat.bodies() if "step words needs approval" in b), None),
                  "the gate's content was not shown")
    assert "message: Calls are degraded in eu-west-1." in shown and "prompt: Post this for eu-west-1?" in shown
    code = shown.rsplit(" ", 2)[1].rstrip(":")
    assert shown.endswith(f"to approve a text for it (it posts what is written): !approve {iid} words {code}: TEXT")

    chat.take(chat.say(f"!approve {iid} words {code}"))  # no text: refused, saying the way
    until(lambda: any(f"refused: step words posts what is written: approve the text it is to post: !approve {iid} "
                      f"words {code}: TEXT" in b for b in chat.bodies()), "no refusal naming the way")
    chat.engine.set_parameter(iid, "bo", "region", "us-east-1")  # meanwhile, elsewhere
    chat.take(chat.say(f"!approve {iid} words {code}: Calls are back in eu-west-1."))
    until(lambda: any(f"is not what code {code} was shown for" in b for b in chat.bodies()), "no refusal")
    assert not [e for e in chat.engine.state(iid).events if e.type == "approval_granted"]

    state = chat.engine.state(iid)
    fresh = approvals.digest(approvals.covered(state, state.playbook.step("words")))[:8]
    chat.take(chat.say(f"!approve {iid} words {fresh}: Calls are back: in us-east-1 too."))
    granted = [e for e in chat.engine.state(iid).events if e.type == "approval_granted"]
    assert [(e.actor, e.record.content["composed"]) for e in granted] == [
        ("amira", "Calls are back: in us-east-1 too.")]
    until(lambda: any("approved by amira" in b and "composed: Calls are back: in us-east-1 too." in b
                      for b in chat.bodies()), "the approval reply does not show the text approved")
    chat.engine.complete(iid, "ana", "words", message="Calls are back: in us-east-1 too.")  # posts what was approved
    assert chat.engine.state(iid).messages[-1].record.text == "Calls are back: in us-east-1 too."


def test_an_update_due_reaches_the_room_and_status_says_it(chat):
    iid = chat.engine.open("tell-customers", "ana").id
    chat.engine.approve(iid, "ana", "words", message="Calls are degraded in eu-west-1.")
    chat.engine.complete(iid, "ana", "words", message="Calls are degraded in eu-west-1.")
    chat.engine.clock.advance(minutes=30)
    chat.engine.tick(iid)
    until(chat.deliver, "nothing posted")
    until(lambda: any(f"{iid} 09:30 runbook: update due: step words (repeat 1) was not posted: it is written when "
                      "posted (compose: true)" in b for b in chat.bodies()), "the update due never reached the room")
    chat.take(chat.say(f"!status {iid}"))
    until(lambda: any("update due since 09:30 UTC: Tell customers (repeat 1): it is written when posted" in b
                      for b in chat.bodies()), "!status does not say the update due")


def test_someone_not_in_the_roster_is_refused_and_nothing_is_recorded(chat):
    iid = chat.engine.open("video-bad", "ana").id
    before = chat.engine.state(iid).last_seq
    chat.take(chat.say(f"!ack {iid}", as_eve=True))
    assert chat.engine.state(iid).acknowledged_at is None
    assert chat.engine.state(iid).last_seq == before
    until(lambda: any("refused" in b and "is not in the roster" in b for b in chat.bodies()), "no refusal")


def test_a_command_delivered_twice_is_done_once(chat):
    iid = chat.engine.open("video-bad", "ana").id
    command = ChatCommand("matrix", "$same-event-id", "@amira:localhost", f"!note {iid} only once")
    assert chat.bridge.handle(chat.engine, command)[0] == f"note added to {iid}"
    assert chat.bridge.handle(chat.engine, command) == ("", None)  # the homeserver redelivered it
    events = chat.engine.state(iid).events
    notes = [e for e in events if e.type == "note_added"]
    assert len(notes) == 1
    received = [e for e in events if e.type == "chat_received"]
    assert [e.record.remote for e in received] == ["$same-event-id"]
    assert received[0].seq == notes[0].seq - 1  # one transaction: taken and done together, or neither


def test_a_command_that_fails_is_not_marked_taken_and_the_others_are_still_done(chat, monkeypatch):
    iid = chat.engine.open("video-bad", "ana").id
    commands = [ChatCommand("matrix", "$boom", "@amira:localhost", f"!note {iid} first"),
                ChatCommand("matrix", "$fine", "@amira:localhost", f"!ack {iid}")]
    monkeypatch.setattr(chat.engine.plugins, "chat_receive", lambda: (commands, []))
    replies = []
    monkeypatch.setattr(chat.engine.plugins, "chat_send", lambda message, announce: replies.append(message) or
                        (None, []))
    real_note = chat.engine.note
    monkeypatch.setattr(chat.engine, "note", lambda *a, **k: (_ for _ in ()).throw(OSError("disk gone")))
    assert len(chat.bridge.receive(chat.engine)) == 2
    state = chat.engine.state(iid)
    assert state.acknowledged_by == "amira"  # the second command was still done
    assert "$boom" not in state.chat_received  # the failed one can be taken again
    assert any("could not do it: disk gone" in m.text for m in replies)
    monkeypatch.setattr(chat.engine, "note", real_note)
    assert chat.bridge.handle(chat.engine, commands[0])[0] == f"note added to {iid}"  # delivered again: done


def test_a_flood_of_commands_gets_no_more_than_ten_answers_a_minute(chat):
    answered = [chat.bridge.handle(chat.engine, ChatCommand("matrix", f"$h{n}", "@eve:localhost", "!help"))[0]
                for n in range(30)]
    assert sum(1 for a in answered if a) == 10


def test_the_root_edited_back_to_an_earlier_text_is_a_new_edit(chat):
    iid = chat.engine.open("video-bad", "ana").id
    chat.engine.acknowledge(iid, "ana")
    until(chat.deliver, "nothing posted")
    chat.engine.severity(iid, "ana", "SEV1")
    chat.deliver()
    chat.engine.severity(iid, "ana", "SEV2", reason="it was one region after all")
    chat.deliver()
    root = chat.engine.state(iid).chat_root
    edits = [m["content"]["m.new_content"]["body"] for m in chat.messages()
             if (m["content"].get("m.relates_to") or {}).get("event_id") == root
             and m["content"]["m.relates_to"].get("rel_type") == "m.replace"]
    assert [e.split(" ")[0] for e in edits][-2:] == ["SEV1", "SEV2"], edits  # the room shows SEV2 again


def test_commands_written_while_runbook_was_away_are_taken_even_behind_a_busy_room(chat):
    iid = chat.engine.open("video-bad", "ana").id
    matrix.close()  # runbook away; the room goes on
    remote = chat.say(f"!note {iid} written while you were away")
    for n in range(105):  # more than one sync carries: the first sync is limited
        chat.say(f"chatter {n}")
    chat.take(remote)
    notes = [e.record.text for e in chat.engine.state(iid).events if e.type == "note_added"]
    assert notes == ["written while you were away"]


def test_text_from_the_log_cannot_notify_the_room_or_inject_html(chat):
    iid = chat.engine.open("video-bad", "ana").id
    chat.engine.add_action_item(iid, "ana", "@room <b>page the boss</b>\u202e now")
    until(chat.deliver, "nothing posted")
    body = next(b for b in chat.bodies() if "page the boss" in b)
    assert "@room" not in body and "@\u2060room" in body
    assert "\u202e" not in body
    assert all("formatted_body" not in m["content"] for m in chat.messages())


def test_the_homeserver_killed_and_back_misses_nothing_and_doubles_nothing(chat):
    iid = chat.engine.open("video-bad", "ana").id
    until(chat.deliver, "nothing posted")
    chat.server.kill()
    try:
        chat.engine.acknowledge(iid, "ana")  # runbook keeps working while the chat is down
        chat.engine.severity(iid, "ana", "SEV1")
        chat.engine.mitigate(iid, "ana")
        assert chat.deliver() == 0
        assert chat.engine.state(iid).acknowledged_by == "ana"
    finally:
        chat.server.start()
    until(lambda: chat.deliver() or chat.engine.state(iid).chat_upto >= chat.engine.state(iid).last_seq - 3,
          "nothing posted after the homeserver came back", timeout=60)
    until(lambda: chat.deliver() == 0 and chat.engine.state(iid).chat_upto > 0, "still posting", timeout=60)
    bodies = [b for b in chat.bodies() if b.startswith(iid)]
    for word in ("acknowledged", "SEV1", "mitigated"):
        assert len([b for b in bodies if word in b and ": " in b]) >= 1, (word, bodies)
    assert len(bodies) == len(set(bodies)), bodies  # each once


def test_runbook_serve_runs_the_chat_on_a_lane_of_its_own(chat):
    from starlette.testclient import TestClient

    from runbook.serve.app import ServeConfig, build_app
    from runbook.service import EngineService

    service = EngineService(chat.engine)
    with TestClient(build_app(service, ServeConfig("intake-token-0123456789", tick_every=0, chat_every=0.1))):
        iid = chat.engine.open("video-bad", "ana").id
        until(lambda: any(f"SEV2 {iid}" in b for b in chat.bodies()), "serve never announced the incident")
        assert service.chat is not None and service.chat not in (service.commands, service.ticks)
