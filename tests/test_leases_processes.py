"""Two `runbook serve` processes on one database, on "two hosts" (RUNBOOK_HOSTNAME sets the second
apart), one killed with SIGKILL in the middle of its work: the other takes that work over once
the dead server's lease has run out, on SQLite and on PostgreSQL.

Server A takes a SEV1 video alert, opens its incident and starts the symptom's automatic
degradation; its flag backend (a plugin in its plugins directory) hangs on the first write and
says so in a file, and the test kills A there. Server B must finish the work: the alert opened
once, linked once, A's change settled and the degradation applied.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from helpers.flags import video_on
from serve_helpers import wait_for

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "lease-test-token-0123456789abcdef"
LEASE = "2"

HANGING_FLAGS = '''
import os, threading, pathlib
from runbook.pluginapi import hookimpl

@hookimpl
def set_flag_share(settings, name, value, share, by, normal, drill):
    pathlib.Path(os.environ["LEASE_TEST_MARK"]).write_text(name)
    threading.Event().wait(8)  # killed meanwhile (the plugin timeout is 10 s)
'''


class Server:
    def __init__(self, tmp: Path, db: str, name: str, plugins: Path, **env):
        self.log = tmp / f"{name}.log"
        environment = {**os.environ, "RUNBOOK_DB": db, "RUNBOOK_SERVE_TOKEN": TOKEN, "HOME": str(tmp),
                       "RUNBOOK_PLUGINS_DIR": str(plugins), "RUNBOOK_FLAGS": str(tmp / "flags.json"),
                       "XDG_CACHE_HOME": str(tmp / "cache"), **env}
        environment.pop("RUNBOOK_CATALOG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runbook", "--catalog", str(ROOT / "playbooks"), "serve", "--port", "0",
             "--tick", "0.2", "--lease", LEASE], stdout=subprocess.DEVNULL, stderr=open(self.log, "w"),
            env=environment, cwd=tmp)
        self.url = wait_for(self._listening, f"{name} to listen")

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"runbook serve exited {self.proc.returncode}: {self.log.read_text()}")
        found = re.search(r"listening on (http://\S+)", self.log.read_text())
        return found.group(1) if found else None

    def post(self, alerts: list[dict]) -> dict:
        body = json.dumps({"version": "4", "status": "firing", "receiver": "runbook", "alerts": alerts}).encode()
        request = urllib.request.Request(f"{self.url}/alertmanager", data=body,
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def video_alert(fingerprint: str) -> dict:
    return {"status": "firing", "labels": {"alertname": "RTCVideoFreezeRatioHigh", "service": "rtc-video",
                                           "severity": "critical"},
            "annotations": {"summary": "video freezes"}, "startsAt": "2026-11-30T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": fingerprint}


@pytest.fixture
def servers(tmp_path, store_location, open_test_store):
    open_test_store(key=None).close()  # the schema made before two servers race to migrate it
    video_on(tmp_path)
    hanging, none = tmp_path / "hanging-plugins", tmp_path / "no-plugins"
    hanging.mkdir()
    none.mkdir()
    (hanging / "hanging_flags.py").write_text(HANGING_FLAGS)
    mark = tmp_path / "writing"
    started = []
    try:
        started.append(Server(tmp_path, store_location, "b", none, RUNBOOK_HOSTNAME="host-b"))
        started.append(Server(tmp_path, store_location, "a", hanging, LEASE_TEST_MARK=str(mark)))
        yield started[1], started[0], mark
    finally:
        for server in started:
            server.stop()


def test_a_server_killed_mid_work_has_its_alert_and_stage_change_taken_over_by_the_other(servers,
                                                                                         open_test_store):
    a, b, mark = servers
    (answer,) = a.post([video_alert("feed01")])["outcomes"]
    assert answer["outcome"] == "pending"
    incident = answer["incident"]
    wait_for(mark.exists, "server A to start writing the automatic degradation")
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    store = open_test_store(key=None)

    def taken_over():
        rows = store.alerts()
        return rows if rows and rows[0]["outcome"] == "opened" else None
    (row,) = wait_for(taken_over, "server B to take the alert over")
    assert row["incident"] == incident and row["owner"] is None
    assert [r["id"] for r in store.incidents()] == [incident]
    events = store.events(incident)
    types = [e.type for e in events]
    assert types.count("opened") == 1 and types.count("alert_received") == 1
    settled = next(e for e in events if e.type == "degradation_failed")
    assert settled.data["reconciled"] and "interrupted before" in settled.data["reason"]
    started = [e for e in events if e.type == "degradation_started"]
    assert len(started) == 2 and started[0].data["owner"]["host"] != "host-b"
    assert started[1].data["owner"]["host"] == "host-b"
    assert types[-1] != "degradation_started" and "degradation_applied" in types
    # B waited A's lease out: the settling is recorded after A's lease ended, by B's record of it
    (a_lease,) = [store.lease_expiry(f"{o['host']} {o['pid']} {o['start']}") for o in [started[0].data["owner"]]]
    assert a_lease is not None and settled.ts >= a_lease
    flags = json.loads((Path(b.log).parent / "flags.json").read_text())["flags"]
    assert flags["rtc.video.enabled"]["targeting"]["fractional"][1] == ["off", 10]
