"""The invariant: once the log says resolved, none of the incident's degradations is left applied
or half-applied, and every change in flight is owned by a live process or settled.

Each race is driven by fault injection: a flag backend that stops in the middle of a
degradation (a slow write, held until the test lets it go), and a second process killed with
SIGKILL between two flag writes of one degradation or while its action runs. Waits on another
process are reads with a generous upper bound; nothing asserts on wall-clock time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from runbook import flagd
from runbook.catalog import load
from runbook.engine import CommandError, Engine, VirtualClock
from runbook.engine import effects as effects_module
from runbook.engine.metrics import verify
from runbook.pluginapi import process_start
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL") or not os.path.exists("/proc/self/stat"),
                                reason="needs POSIX signals and /proc")

HERE = Path(__file__).parent
CHILD = HERE / "helpers" / "race_child.py"
INCIDENT = "INC-RACE01"
FLAGS = ("t.a", "t.b", "t.c", "t.d")
BOUND = 60.0  # upper bound for any wait on another process; never reached when healthy

PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: four-flags
title: Four flags
service: rtc
severity: SEV2
escalation: ladder
symptoms: [{id: s, summary: Something}]
degradations:
  t:
    summary: Four flags off
    set: {t.a: false, t.b: false, t.c: false, t.d: false}
steps:
  - id: long
    kind: action
    title: A long action
    run: ["{python}", "-c", "import pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text('up'); time.sleep(600)",
          "{marker}"]
    with: {python: PYTHON, marker: MARKER}
    timeout: 10m
  - {id: fix, title: Fix it}
"""


class World:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.catalog_dir = tmp / "catalog"
        self.catalog_dir.mkdir()
        (self.catalog_dir / "policies.yaml").write_text((HERE / "engine_catalog" / "policies.yaml").read_text())
        self.marker = tmp / "action-started"
        (self.catalog_dir / "pb.yaml").write_text(PLAYBOOK.replace("PYTHON", sys.executable)
                                                  .replace("MARKER", str(self.marker)))
        self.db, self.flags = str(tmp / "db.sqlite"), str(tmp / "flags.json")
        self.catalog = load([str(self.catalog_dir)])
        self.stores: list[Store] = []
        first = self.engine()
        for flag in FLAGS:
            first.plugins.set_flag(flag, True)
        first.open("four-flags", "ana", incident=INCIDENT)

    def engine(self, clock=None) -> Engine:
        store = Store(self.db)
        self.stores.append(store)
        host = PluginHost(Settings(flags_file=self.flags, plugins_dir=None), entry_points=False)
        return Engine(store, clock or VirtualClock(), host, self.catalog)

    def flag_values(self) -> dict:
        data = flagd.read(self.flags)
        return {name: flagd.state(data, name).value for name in FLAGS}

    def child(self, mode: str, **args) -> subprocess.Popen:
        payload = {"db": self.db, "flags": self.flags, "catalog": str(self.catalog_dir), "incident": INCIDENT,
                   "actor": "bo", **args}
        path = os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")])
        env = {**os.environ, "PYTHONPATH": path}
        return subprocess.Popen([sys.executable, str(CHILD), mode, json.dumps(payload)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)

    def close(self):
        for store in self.stores:
            store.close()


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


def read_line(proc: subprocess.Popen, prefix: str) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(BOUND)
    line = result[0] if result else ""
    assert line.startswith(prefix), f"expected {prefix!r} from the child, got {line!r}; stderr: " \
                                    f"{proc.stderr.read() if proc.poll() is not None else '(still running)'}"
    return line.strip()


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(BOUND)


def assert_invariant(engine: Engine, world: World) -> None:
    state = engine.state(INCIDENT)
    assert state.resolved
    assert not any(deg.touched or deg.pending for deg in state.degradations.values())
    assert world.flag_values() == dict.fromkeys(FLAGS, True), "flags left degraded after resolve"
    types = [e.type for e in state.events]
    assert "degradation_applied" not in types[types.index("resolved"):], "a change was recorded after resolve"
    ok, message = verify(engine.store.events(INCIDENT))
    assert ok, message


class SlowFlags:
    """Fault injection: flag writes of one engine wait at the second write until released."""

    def __init__(self, engine: Engine, hold_at: int = 2):
        self.writing, self.release = threading.Event(), threading.Event()
        real, count = engine.plugins.set_flag, [0]

        def set_flag(name, *args, **kwargs):
            count[0] += 1
            if count[0] == hold_at:
                self.writing.set()
                assert self.release.wait(BOUND)
            return real(name, *args, **kwargs)
        engine.plugins.set_flag = set_flag


def test_resolve_while_a_degrade_is_still_writing_refuses_then_waits_then_restores(world, monkeypatch):
    a, b = world.engine(), world.engine()
    slow = SlowFlags(a)
    degrading = threading.Thread(target=a.degrade, args=(INCIDENT, "ana", "t"))
    degrading.start()
    assert slow.writing.wait(BOUND)
    b.resolve_wait = 0
    with pytest.raises(CommandError, match=rf"not resolved: degradation 't' is being applied by ana "
                                           rf"\(process {os.getpid()} on "):
        b.resolve(INCIDENT, "bob")
    assert b.reconcile(INCIDENT, force=True) == []  # resume never settles a change whose owner is alive
    assert not b.state(INCIDENT).resolved

    def sleep(seconds):  # the resolver waits; meanwhile the slow write finishes
        slow.release.set()
        degrading.join(BOUND)
    monkeypatch.setattr(effects_module.time, "sleep", sleep)
    b.resolve_wait = BOUND
    b.resolve(INCIDENT, "bob")
    assert_invariant(b, world)
    types = [e.type for e in b.state(INCIDENT).events]
    assert types.index("degradation_applied") < types.index("degradation_restored") < types.index("resolved")


def test_degrade_killed_between_flag_writes_then_resolve_restores_every_flag(world):
    child = world.child("degrade", degradation="t", stop_at=2)
    try:
        pid = int(read_line(child, "stopped").split()[1])
        responder = world.engine()
        responder.resolve_wait = 0
        with pytest.raises(CommandError, match=rf"being applied by bo \(process {pid} on "):
            responder.resolve(INCIDENT, "ana")  # stopped, not dead: its change is still its own
        assert responder.reconcile(INCIDENT, force=True) == []
    finally:
        kill(child)
    assert world.flag_values() == {"t.a": False, "t.b": False, "t.c": True, "t.d": True}
    responder.resolve(INCIDENT, "ana")  # the owner is gone: settled, then both written flags restored
    assert_invariant(responder, world)
    failed = [e for e in responder.state(INCIDENT).events if e.type == "degradation_failed"]
    assert "interrupted half-way: t.a, t.b are degraded, t.c, t.d not" in failed[0].data["reason"]


def test_a_half_applied_degradation_restores_to_the_values_from_before(world):
    child = world.child("degrade", degradation="t", stop_at=1)
    read_line(child, "stopped")
    kill(child)
    responder = world.engine(VirtualClock())
    responder.reconcile(INCIDENT)  # owner gone: settled as half-applied without waiting for a lease
    assert responder.state(INCIDENT).degradations["t"].flags.keys() == {"t.a"}
    responder.restore(INCIDENT, "ana", "t")
    assert world.flag_values() == dict.fromkeys(FLAGS, True)
    responder.degrade(INCIDENT, "ana", "t")
    olds = {e.data["flag"]: e.data["old"]["value"] for e in responder.state(INCIDENT).events
            if e.type == "flag_changed" and e.data["op"] == "apply" and not e.data.get("reconciled")}
    assert olds == dict.fromkeys(FLAGS, True), "a half-degraded value was taken for the value to restore"


def test_leftover_degradations_of_a_resolved_incident_can_still_be_restored(world):
    engine = world.engine()
    engine.degrade(INCIDENT, "ana", "t")
    engine.resolve(INCIDENT, "ana", keep_degradations=True)
    assert engine.state(INCIDENT).events[-1].data == {"kept_degradations": ["t"]}
    engine.note(INCIDENT, "ana", "notes still work")
    with pytest.raises(CommandError, match="resolved"):
        engine.degrade(INCIDENT, "ana", "t")
    engine.restore(INCIDENT, "ana", "t")
    assert world.flag_values() == dict.fromkeys(FLAGS, True)
    assert not engine.state(INCIDENT).degradations["t"].touched


def test_an_action_orphaned_by_kill_9_is_killed_before_it_is_settled_and_never_runs_twice(world):
    child = world.child("run")
    try:
        read_line(child, "running")
        intent = None
        for _ in range(int(BOUND / 0.05)):  # the action's process starts, then records its group
            events = world.engine().state(INCIDENT).events
            intent = next((e for e in events if e.type == "action_started"), None)
            if world.marker.exists() and intent and os.path.exists(intent.data["pidfile"]):
                break
            time.sleep(0.05)
        pgid = int(Path(intent.data["pidfile"]).read_text().split()[0])
        assert process_start(pgid) is not None
        other = world.engine()
        with pytest.raises(CommandError, match="already running"):
            other.run(INCIDENT, "ana")  # a retry while it runs never starts a second copy
        assert other.reconcile(INCIDENT, force=True) == []  # its owner is alive
    finally:
        kill(child)
    assert process_start(pgid) is not None, "the action should have outlived its runner (own session)"
    settled = world.engine().reconcile(INCIDENT)
    assert [e.type for e in settled] == ["action_finished"]
    assert f"orphaned process group {pgid} was killed" in settled[0].data["summary"]
    for _ in range(int(BOUND / 0.05)):
        if process_start(pgid) is None or _zombie(pgid):
            break
        time.sleep(0.05)
    assert process_start(pgid) is None or _zombie(pgid), "the orphaned action is still running"


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2:].split()[0] == b"Z"


def test_resume_never_settles_a_newer_change_with_what_it_read_about_an_abandoned_one(world):
    """Found by benchmarks/stress_kill9.py's reading of the race: resume reads an abandoned
    intent's flags (slowly) while another responder settles that intent and starts restoring;
    resume must not then append its stale settlement over the restore in flight."""
    child = world.child("degrade", degradation="t", stop_at=2)
    read_line(child, "stopped")
    kill(child)  # an apply abandoned half-way
    resume, other = world.engine(), world.engine()
    real_get, reading, go_on = resume.plugins.get_flag, threading.Event(), threading.Event()

    def get_flag(name, *args, **kwargs):  # a slow flag backend: resume is still reading
        reading.set()
        assert go_on.wait(BOUND)
        return real_get(name, *args, **kwargs)
    resume.plugins.get_flag = get_flag
    settled: list = []
    resuming = threading.Thread(target=lambda: settled.append(resume.reconcile(INCIDENT)))
    resuming.start()
    assert reading.wait(BOUND)
    slow = SlowFlags(other, hold_at=1)
    real_restore = other.plugins.restore_flag

    def restore_flag(name, *args, **kwargs):  # the other responder's restore is held in flight
        slow.writing.set()
        assert slow.release.wait(BOUND)
        return real_restore(name, *args, **kwargs)
    other.plugins.restore_flag = restore_flag
    assert [e.type for e in other.reconcile(INCIDENT)][-1] == "degradation_failed"  # settled by the other one
    restoring = threading.Thread(target=other.restore, args=(INCIDENT, "ana", "t"))
    restoring.start()
    assert slow.writing.wait(BOUND)
    try:
        go_on.set()
        resuming.join(BOUND)
        pending = world.engine().state(INCIDENT).degradations["t"].pending
    finally:
        slow.release.set()
        restoring.join(BOUND)
    assert settled == [[]], "resume settled a change that was already settled, under a live restore"
    assert pending and pending["op"] == "restore"
    responder = world.engine()
    responder.resolve(INCIDENT, "ana")
    assert_invariant(responder, world)
