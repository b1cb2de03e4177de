"""The example plugins in plugins/, against an HTTP server on 127.0.0.1 that the test starts."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runbook.pluginapi import ActionRequest, EscalationNotice, Recipient
from runbook.plugins import PluginHost
from runbook.settings import Settings

SECRET = "R0UT1NG-KEY-very-secret"
NOTICE = EscalationNotice("inc-42", "Video calls degraded", "SEV2", 2,
                          (Recipient("ben", "Ben Okoro", email="ben@example.com", via="rotation rtc-secondary"),),
                          playbook="video-call-degraded", service="rtc-video", dedup_key="runbook-inc-42")


class Recorder(BaseHTTPRequestHandler):
    posts: list = []
    status = 202

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b'{"status": "success"}')

    def do_GET(self):
        code = {"/health": 200, "/broken": 503}.get(self.path, 404)
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}' if code == 200 else b"unavailable")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Recorder.posts = []
    Recorder.status = 202
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def host(tmp_path, repo_root, monkeypatch):
    monkeypatch.setenv("RUNBOOK_LOAD_PLUGINS", "webhook_notifier,http_check")

    def make():
        return PluginHost(Settings(flags_file=str(tmp_path / "f.json"), plugins_dir=str(repo_root / "plugins"),
                                   notify_timeout=5), entry_points=False)
    return make


def webhook_results(results):
    return [r for r in results if r.channel.startswith("webhook")]


def test_webhook_generic_json(server, host, monkeypatch):
    monkeypatch.setenv("RUNBOOK_WEBHOOK_URL", f"{server}/hooks/escalation")
    monkeypatch.setenv("RUNBOOK_WEBHOOK_TOKEN", SECRET)
    results, failures = host().notify(NOTICE)
    assert failures == []
    assert webhook_results(results)[0].delivered
    path, headers, body = Recorder.posts[0]
    assert path == "/hooks/escalation"
    assert headers["Authorization"] == f"Bearer {SECRET}"
    assert body["type"] == "runbook.escalation"
    assert (body["incident"], body["severity"], body["level"]) == ("inc-42", "SEV2", 2)
    assert body["recipients"][0]["name"] == "Ben Okoro"


def test_webhook_failure_is_reported_without_leaking_the_url_path(server, host, monkeypatch, caplog, capsys):
    monkeypatch.setenv("RUNBOOK_WEBHOOK_URL", f"{server}/hooks/{SECRET}")
    monkeypatch.setenv("RUNBOOK_TRACE_PLUGINS", "1")
    Recorder.status = 500
    results, _ = host().notify(NOTICE)
    result = webhook_results(results)[0]
    assert result.delivered is False
    assert result.detail == f"{server} answered HTTP 500"
    assert SECRET not in caplog.text + capsys.readouterr().err + repr(results)


def test_webhook_stays_quiet_when_not_configured(host):
    results, failures = host().notify(NOTICE)
    assert webhook_results(results) == [] and failures == []


def test_http_check_passes_and_fails(server, host):
    h = host()
    ok, _ = h.run_action(ActionRequest(action="http-check", params={"url": f"{server}/health", "contains": '"ok"'}))
    assert ok.ok and ok.exit_code == 200 and ok.summary.startswith(f"GET {server}/health → 200")
    bad, _ = h.run_action(ActionRequest(action="http-check", params={"url": f"{server}/broken"}))
    assert (bad.ok, bad.exit_code) == (False, 503)
    assert bad.summary.endswith("status 503, expected 200")
    text, _ = h.run_action(ActionRequest(action="http-check",
                                         params={"url": f"{server}/health", "contains": "green"}))
    assert text.ok is False and "body does not contain 'green'" in text.summary


def test_http_check_unreachable_and_bad_params(host):
    h = host()
    down, _ = h.run_action(ActionRequest(action="http-check", params={"url": "http://127.0.0.1:9/"}, timeout=2))
    assert down.ok is False and "failed" in down.summary
    bad, _ = h.run_action(ActionRequest(action="http-check", params={"url": "ftp://x"}))
    assert bad.summary == "http-check needs with: {url: http(s)://...}"
