"""Subscriptions to the public page: email through a real SMTP server (aiosmtpd on loopback) with
double opt-in and an unsubscribe link, signed webhooks to a real HTTP server, per component, and
retries after a failure, on the virtual clock (each delivery pass is called as the server's
loop calls it)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from email import message_from_bytes
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from starlette.testclient import TestClient

from runbook.catalog.loader import load_catalog
from runbook.engine import Engine, VirtualClock
from runbook.engine import subscriptions as records
from runbook.pluginapi import SubscriberMessage
from runbook.plugins import PluginHost
from runbook.serve.app import ServeConfig, build_app
from runbook.serve.subscriptions import deliver
from runbook.service import EngineService
from runbook.settings import Settings
from runbook.store import Store

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "t0ken-for-the-subscription-tests"
PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: chat-slow
title: Chat slow
service: messaging
severity: SEV2
escalation: rtc-default
symptoms:
  - {id: chat-slow, summary: Chat slow, match: {labels: {alertname: ChatSlow}}}
steps:
  - id: first
    kind: communicate
    title: First update
    audience: customers
    channel: Status page
    template: "Messages are delayed. We are looking into it."
  - id: second
    kind: communicate
    title: Second update
    audience: customers
    channel: Status page
    status: identified
    template: "We found the cause."
  - id: third
    kind: communicate
    title: Third update
    audience: customers
    channel: Status page
    status: monitoring
    template: "A fix is in place."
"""


class Inbox:
    """aiosmtpd's handler: every message received, parsed."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=default))
        return "250 OK"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def world(tmp_path, smtp):
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "chat.yaml").write_text(PLAYBOOK)
    catalog = load_catalog([str(ROOT / "playbooks"), str(tmp_path / "catalog")])
    assert not catalog.errors
    controller, _ = smtp
    engine = Engine(Store(str(tmp_path / "db.sqlite"), key=None), VirtualClock(),
                    plugins(tmp_path, f"127.0.0.1:{controller.port}"), catalog)
    page = catalog.models("StatusPage")["rtc-public"]
    app = build_app(EngineService(engine), ServeConfig(TOKEN, tick_every=0, public=page, email=True))
    with TestClient(app, follow_redirects=False) as client:
        yield engine, client, page
    engine.store.close()


def plugins(tmp_path, smtp: str) -> PluginHost:
    """The built-in plugins, the mail server at `smtp`."""
    return PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=None, smtp=smtp,
                               mail_from="status@example.com"), entry_points=False)


def link(message, path: str) -> str:
    body = message.get_content()
    return re.search(rf"https://status\.example\.com({re.escape(path)}\?token=\S+)", body).group(1)


def test_email_subscription_is_double_opt_in_per_component_and_unsubscribes(world, smtp):
    engine, client, page = world
    _, inbox = smtp
    assert 'action="/subscribe"' in client.get("/status").text
    answer = client.post("/subscribe", data={"email": "sam@example.com", "component": "messaging"})
    assert answer.status_code == 202 and "Check your inbox" in answer.text
    client.post("/subscribe", data={"email": "lou@example.com", "component": "login"})
    iid = engine.open("chat-slow", "ana").id
    engine.complete(iid, "ana", "first")  # before anyone confirmed: nobody hears of it
    engine.clock.advance(minutes=1)
    assert deliver(engine, page) == 2
    confirmations = {m["To"]: m for m in inbox.messages}
    assert set(confirmations) == {"sam@example.com", "lou@example.com"}
    assert confirmations["sam@example.com"]["Subject"] == "Confirm your subscription to Example Calls status"
    assert deliver(engine, page) == 0  # once
    confirm = link(confirmations["sam@example.com"], "/subscribe/confirm")
    assert client.get(confirm).status_code == 200
    assert client.get(link(confirmations["lou@example.com"], "/subscribe/confirm")).status_code == 200
    engine.clock.advance(minutes=1)
    engine.complete(iid, "ana", "second")
    inbox.messages.clear()
    assert deliver(engine, page) == 1  # sam follows messaging; lou follows login only
    (update,) = inbox.messages
    assert update["To"] == "sam@example.com"
    assert update["Subject"] == "[Example Calls status] Degraded performance: Messaging: Identified"
    assert "We found the cause." in update.get_content()
    assert "Messages are delayed" not in update.get_content()  # posted before sam confirmed
    stop = link(update, "/unsubscribe")
    assert update["List-Unsubscribe"] == f"<https://status.example.com{stop}>"
    assert client.get(stop).status_code == 200
    engine.complete(iid, "ana", "third")
    inbox.messages.clear()
    assert deliver(engine, page) == 0 and inbox.messages == []
    assert client.get(stop).status_code == 200  # following it again changes nothing
    assert client.get("/unsubscribe?token=nope").status_code == 404


def test_a_bad_address_or_component_is_refused_in_one_line(world):
    _, client, _ = world
    for data, says in (({"email": "sam@example.com\nBcc: eve@example.com"}, "not an email address"),
                       ({"email": "sam"}, "not an email address"),
                       ({"email": "sam@example.com", "component": "nope"}, "unknown component nope")):
        answer = client.post("/subscribe", data=data)
        assert answer.status_code == 400 and says in answer.text


def test_hook_notify_subscriber_a_mail_server_that_is_down_gets_the_update_later(world, smtp, tmp_path):
    engine, _, page = world
    _, inbox = smtp
    subscriber = records.subscribe_email(engine, "sam@example.com")
    records.confirm(engine, subscriber["token"])
    iid = engine.open("chat-slow", "ana").id
    engine.complete(iid, "ana", "first")
    working, engine.plugins = engine.plugins, plugins(tmp_path, "127.0.0.1:1")  # nothing listens there
    assert deliver(engine, page) == 0
    engine.plugins = working
    (failed,) = [d for d in engine.store.deliveries() if d["message"] != "confirm"]
    assert failed["attempts"] == 1 and failed["delivered_at"] is None and failed["error"]
    assert deliver(engine, page) == 0  # not due yet: retried 1 s later
    engine.clock.advance(seconds=1)
    assert deliver(engine, page) == 1
    assert [m["To"] for m in inbox.messages] == ["sam@example.com"]
    (done,) = [d for d in engine.store.deliveries() if d["message"] != "confirm"]
    assert done["attempts"] == 2 and done["delivered_at"]


class Hook(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Hook.fail_first:
            Hook.fail_first -= 1
            self.send_response(503)
        else:
            Hook.received.append((dict(self.headers), body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    Hook.received, Hook.fail_first = [], 1
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_hook_notify_subscriber_webhooks_are_signed_per_component_and_retried(world, hook):
    engine, _, page = world
    subscriber = records.add_webhook(engine, hook, ("messaging",))
    records.add_webhook(engine, hook + "/login-only", ("login",))
    iid = engine.open("chat-slow", "ana").id
    engine.complete(iid, "ana", "first")
    assert deliver(engine, page) == 0  # the first post answered 503
    engine.clock.advance(seconds=1)
    assert deliver(engine, page) == 1
    ((headers, body),) = Hook.received
    expected = hmac.new(subscriber["secret"].encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Runbook-Signature"] == f"sha256={expected}"
    sent = json.loads(body)
    assert sent["incident"]["incident_updates"][0]["body"] == "Messages are delayed. We are looking into it."
    assert sent["update_id"] == sent["incident"]["incident_updates"][0]["id"]
    assert sent["page"]["name"] == "Example Calls status"


def test_subscribers_commands(rb, tmp_path):
    rb.catalogs = [ROOT / "playbooks"]
    said = rb("subscribers", "webhook", "https://hooks.example/status", "--component", "messaging")
    assert said.startswith("webhook subscriber 1: https://hooks.example/status\nsecret (verify X-Runbook-Signature")
    (row,) = json.loads(rb("subscribers", "list", "--json"))
    assert (row["kind"], row["components"], "secret" in row, "token" in row) == ("webhook", ["messaging"], False,
                                                                                  False)
    assert "active" in rb("subscribers", "list")
    assert rb("subscribers", "remove", "1") == "subscriber 1 removed: https://hooks.example/status\n"
    assert "was removed already" in rb("subscribers", "remove", "1", expect=5)
    assert "is not an http:// or https:// address" in rb("subscribers", "webhook", "ftp://x", expect=2)


def test_hook_notify_subscriber_a_plugin_may_deliver_a_kind_of_its_own(world, tmp_path):
    """The built-in answers for email and webhooks only: another kind is a plugin's, and with no
    plugin for it the delivery is kept with why, not retried."""
    engine, _, page = world
    assert engine.plugins.notify_subscriber(SubscriberMessage("sms", "+100", "confirm")) == (None, [])
    engine.store.add_subscriber({"kind": "sms", "address": "+100", "components": [], "token": "t" * 24,
                                 "created_at": "2026-01-05T09:00:00.000000Z", "confirmed_at": None})
    assert deliver(engine, page) == 0
    (kept,) = engine.store.deliveries()
    assert kept["error"] == "no plugin sends sms messages" and kept["next_at"] is None
