"""The alert intake against the real thing: `runbook serve` processes and Debian's Alertmanager
(`prometheus-alertmanager`, with `amtool`), both on loopback, started and stopped here.

scripts/test installs the package when it is missing. Waiting here is for real processes to
deliver (polling until the database says so, with a generous deadline), never a timed assertion.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.components import missing
from serve_helpers import wait_for

from runbook.store import Store

HERE = Path(__file__).parent
TOKEN = "alertmanager-test-token-0123456789"
ALERTMANAGER = shutil.which("prometheus-alertmanager")
AMTOOL = shutil.which("amtool")



def _require_alertmanager():
    if not ALERTMANAGER or not AMTOOL:
        missing("Alertmanager (prometheus-alertmanager and amtool)",
                "run ./scripts/test (it installs the Debian package prometheus-alertmanager)")


class Server:
    """One `runbook serve` process on a free loopback port."""

    def __init__(self, tmp: Path, db: Path, name: str = "serve", args: tuple = (), preexec_fn=None):
        self.log = tmp / f"{name}.log"
        env = {**os.environ, "RUNBOOK_DB": str(db), "RUNBOOK_SERVE_TOKEN": TOKEN, "HOME": str(tmp),
               "RUNBOOK_PLUGINS_DIR": str(tmp / "no-plugins")}
        env.pop("RUNBOOK_CATALOG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runbook", "--catalog", str(HERE / "serve_catalog"),
             "--catalog", str(HERE / "fixtures" / "catalog" / "playbooks"), "serve", "--port", "0",
             "--tick", "0.2", *args], stdout=subprocess.DEVNULL, stderr=open(self.log, "w"), env=env, cwd=tmp,
            preexec_fn=preexec_fn)
        line = wait_for(lambda: self._listening(), f"{name} to listen")
        self.url = line

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"runbook serve exited {self.proc.returncode}: {self.log.read_text()}")
        found = re.search(r"listening on (http://\S+)", self.log.read_text())
        return found.group(1) if found else None

    def post(self, body: dict, token: str = TOKEN) -> tuple[int, dict]:
        request = urllib.request.Request(f"{self.url}/alertmanager", data=json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "incidents.db"


@pytest.fixture
def server(tmp_path, db):
    s = Server(tmp_path, db)
    yield s
    s.stop()


@pytest.fixture
def alertmanager(tmp_path, server):
    """A real Alertmanager posting to `server`: groups by alertname, sends after 1 s, repeats
    every 2 s, sends resolved alerts; the token from a file, as a deployment would."""
    _require_alertmanager()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: runbook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: runbook
    webhook_configs:
      - url: {server.url}/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials_file: {token_file}
""")
    port = _free_port()
    log = open(tmp_path / "alertmanager.log", "w")
    proc = subprocess.Popen([ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready():
        if proc.poll() is not None:
            raise AssertionError(f"alertmanager exited: {(tmp_path / 'alertmanager.log').read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False
    wait_for(ready, "alertmanager to be ready")
    yield url
    proc.terminate()
    proc.wait(timeout=15)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def amtool(url: str, *args: str):
    subprocess.run([AMTOOL, f"--alertmanager.url={url}", "alert", "add", *args], check=True,
                   capture_output=True, text=True, timeout=30)


def read(db: Path, what):
    """What `what(store)` reads from the database the servers write, on a connection of its own."""
    store = Store(str(db), key=None)
    try:
        return what(store)
    finally:
        store.close()


def rows(db: Path) -> list[dict]:
    return read(db, lambda store: store.alerts())


def incidents(db: Path) -> list[dict]:
    return read(db, lambda store: store.incidents())


def events(db: Path, incident: str) -> list[str]:
    return read(db, lambda store: [e.type for e in store.events(incident)])


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_alertmanager_fires_repeats_and_resolves_one_incident_through_runbook_serve(alertmanager, db):
    start = datetime.now(UTC) - timedelta(seconds=5)
    labels = ["alertname=QueueStuck", "service=jobs"]
    amtool(alertmanager, *labels, f"--start={rfc3339(start)}", "--annotation=summary=jobs wait")
    opened = wait_for(lambda: [r for r in rows(db) if r["outcome"] == "opened"], "the incident to open")
    incident = opened[0]["incident"]
    assert [i["id"] for i in incidents(db)] == [incident]
    assert opened[0]["labels"] == {"alertname": "QueueStuck", "service": "jobs"}
    # Alertmanager repeats the notification every 2 s: deliveries grow, nothing else does
    wait_for(lambda: rows(db)[0]["deliveries"] >= 3, "two repeats")
    assert len(incidents(db)) == 1 and events(db, incident).count("alert_received") == 1
    # resolve: the same alert with an end time
    amtool(alertmanager, *labels, f"--start={rfc3339(start)}", f"--end={rfc3339(datetime.now(UTC))}")
    wait_for(lambda: rows(db)[0]["status"] == "resolved", "the resolved notification")
    wait_for(lambda: "alert_state_changed" in events(db, incident), "the incident to record it")
    (summary,) = incidents(db)
    assert summary["status"] == "open"  # queue-stuck records it; a person resolves


def test_alertmanager_resolve_resolves_when_the_playbook_asks(alertmanager, db):
    start = datetime.now(UTC) - timedelta(seconds=5)
    labels = ["alertname=DiskFull", "instance=db-1.example", "severity=critical"]
    amtool(alertmanager, *labels, f"--start={rfc3339(start)}")
    opened = wait_for(lambda: [r for r in rows(db) if r["outcome"] == "opened"], "the incident to open")
    assert incidents(db)[0]["severity"] == "SEV1"
    amtool(alertmanager, *labels, f"--start={rfc3339(start)}", f"--end={rfc3339(datetime.now(UTC))}")
    wait_for(lambda: incidents(db)[0]["status"] == "resolved", "disk-full to resolve itself")
    assert opened[0]["incident"] == incidents(db)[0]["id"]


def test_alertmanager_keeps_an_unmatched_alert(alertmanager, db):
    amtool(alertmanager, "alertname=SomethingNoPlaybookKnows", "team=ghosts")
    unmatched = wait_for(lambda: [r for r in rows(db) if r["outcome"] == "unmatched"], "the unmatched alert")
    assert unmatched[0]["alertname"] == "SomethingNoPlaybookKnows" and incidents(db) == []


def _alert(n: int, status: str = "firing") -> dict:
    return {"status": status, "labels": {"alertname": "DiskFull", "instance": f"db-{n}.example",
                                         "severity": "warning"},
            "annotations": {"summary": f"disk {n}"}, "startsAt": "2026-11-30T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": f"{n:016x}"}


def test_100_concurrent_overlapping_deliveries_to_two_servers_give_one_incident_per_alert(tmp_path, db, server):
    """Two `runbook serve` processes on one database (a restart overlapping the old one, or two
    replicas behind a balancer), 100 deliveries at once, each a random overlapping subset of 20
    alerts, some repeated inside one delivery: every alert opens exactly one incident."""
    second = Server(tmp_path, db, "serve-2")
    try:
        rng = random.Random(15)
        deliveries = [[_alert(n) for n in rng.sample(range(20), rng.randint(1, 8))] for _ in range(100)]
        deliveries[0] += deliveries[0][:1]  # the same alert twice in one body
        results: list[int] = []
        barrier = threading.Barrier(100)

        def deliver(i: int):
            barrier.wait()
            status, _ = (server if i % 2 else second).post({"version": "4", "status": "firing",
                                                             "receiver": "runbook", "alerts": deliveries[i]})
            results.append(status)
        threads = [threading.Thread(target=deliver, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert results.count(200) == 100, results
        sent = {a["fingerprint"] for d in deliveries for a in d}
        ledger = rows(db)
        assert sorted(r["fingerprint"] for r in ledger) == sorted(sent)  # one row per alert, once answered
        # each server opens the incidents of what it recorded after answering
        ledger = wait_for(lambda: (found := rows(db)) and all(r["outcome"] == "opened" for r in found) and found,
                          "every alert's incident to open")
        opened = incidents(db)
        assert len(opened) == len(sent) == len({r["incident"] for r in ledger})
        assert {i["id"] for i in opened} == {r["incident"] for r in ledger}
        assert sum(r["deliveries"] for r in ledger) == sum(len(d) for d in deliveries)
        # and a second round of the same deliveries (Alertmanager's repeats) adds nothing
        for i in range(0, 100, 10):
            assert server.post({"version": "4", "status": "firing", "alerts": deliveries[i]})[0] == 200
        assert len(incidents(db)) == len(sent)
    finally:
        second.stop()


def test_serve_without_token_refuses_to_start_and_a_taken_port_exits_8(tmp_path, db, server):
    env = {**os.environ, "RUNBOOK_DB": str(db), "HOME": str(tmp_path)}
    env.pop("RUNBOOK_SERVE_TOKEN", None)
    base = [sys.executable, "-m", "runbook", "--catalog", str(HERE / "serve_catalog"), "--catalog",
            str(HERE / "fixtures" / "catalog" / "playbooks"), "serve"]
    no_token = subprocess.run(base, env=env, capture_output=True, text=True, timeout=60)
    assert no_token.returncode == 2
    assert no_token.stderr.strip().splitlines() == [
        "runbook: error: no intake token: set RUNBOOK_SERVE_TOKEN or pass --token-file FILE (owner-only); "
        "make one with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"]
    loose = tmp_path / "loose-token"
    loose.write_text(TOKEN)
    loose.chmod(0o644)
    refused = subprocess.run([*base, "--token-file", str(loose)], env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2 and "can be read by others (mode 644); run chmod 600" in refused.stderr
    port = server.url.rsplit(":", 1)[1]
    taken = subprocess.run([*base, "--port", port], env={**env, "RUNBOOK_SERVE_TOKEN": TOKEN},
                           capture_output=True, text=True, timeout=60)
    assert taken.returncode == 8
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in taken.stderr
    assert "Traceback" not in taken.stderr + refused.stderr + no_token.stderr


def test_idle_and_half_sent_connections_are_closed_so_healthz_and_the_intake_still_answer(tmp_path, db):
    """D10: connections never timed out; idle or half-sent ones filled the file-descriptor limit
    and stopped the intake and /healthz, and a body that never completed was waited on for ever.
    Here the server may hold 64 files; 80 connections that never finish a request are opened."""
    import resource
    import socket

    def few_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    server = Server(tmp_path, db, args=("--request-timeout", "1"), preexec_fn=few_files)
    held = []
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        slow_body = socket.create_connection((host, int(port)), timeout=30)
        slow_body.sendall(f"POST /alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                          "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"version\"".encode())
        for n in range(80):
            held.append(socket.create_connection((host, int(port)), timeout=30))
            if n % 2:  # headers begun, never ended
                held[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=30) as response:
            assert response.read() == b"ok\n"
        status, answer = server.post({"version": "4", "alerts": [_alert(1)]})
        assert status == 200 and answer["outcomes"][0]["outcome"] == "pending"
        # the body never completed: answered 408 and closed
        said = b""
        while chunk := slow_body.recv(4096):
            said += chunk
        assert said.startswith(b"HTTP/1.1 408 ") and b"did not arrive whole within 1s" in said
        for sock in held[:10]:  # closed by the server, not left open
            assert sock.recv(100) == b""
        assert "Traceback" not in server.log.read_text()
    finally:
        for sock in held:
            sock.close()
        server.stop()
