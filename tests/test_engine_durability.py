"""Durability of the incident store and engine under kill -9 and concurrent writers.

The kill -9 harness runs worker processes (tests/helpers/durability_child.py) that issue real
engine commands (notes, acknowledge, two-phase degrade/restore against a flag file) on one
incident in one database that grows across trials. Each worker prints "done <seq> ..." after a
command returned; the parent SIGKILLs it at a seeded random point and then checks that every
acknowledged event is there, that the log is contiguous with an intact hash chain, that the
state folds, and that `reconcile` settles any half-done degradation so that the flag file and
the state agree. Some trials kill at a crash point between a degradation's intent and its
result (the worker stops itself there), so reconciliation is exercised on every run.

No test waits on wall-clock time: every wait is a read of a worker's output with a generous
upper bound, so a slow machine makes the tests slower, never flaky.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest

from runbook import flagd
from runbook.catalog import load
from runbook.engine import Engine, VirtualClock
from runbook.engine.metrics import verify
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import IncidentStore, Store, open_store

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
                                reason="needs POSIX fork and SIGKILL")

ROOT = Path(__file__).resolve().parent.parent
HELPER = Path(__file__).resolve().parent / "helpers" / "durability_child.py"
# not the shipped ones: editing an example must not break these
PLAYBOOKS = ROOT / "tests" / "fixtures" / "catalog" / "playbooks"
INCIDENT = "INC-CHAOS1"
TRIALS = 60
MAX_DONE = 40  # a trial kills after 1..MAX_DONE acknowledged commands
LINE_TIMEOUT = 120.0  # upper bound for any single line from a worker; never reached when healthy
DEGRADATIONS = ("low-bitrate", "audio-only")


class Lines:
    """Lines of a pipe, read by a thread, so every wait has an upper bound."""

    def __init__(self, stream):
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream) -> None:
        with stream:
            for line in stream:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def next(self, what: str, timeout: float = LINE_TIMEOUT) -> str | None:
        """The next line, or None at end of file."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from the worker within {timeout:.0f}s while waiting for {what}") from None


def _stderr(path: Path) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-4000:] or "(no stderr)"


class Zygote:
    """One `durability_child.py zygote` process that forks a fresh worker per trial."""

    def __init__(self, tmp: Path):
        self.err = tmp / "zygote.stderr"
        with self.err.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, str(HELPER), "zygote"], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        self.lines = Lines(self.proc.stdout)
        line = self.lines.next("the zygote to start")
        assert line == "zygote ready", f"zygote said {line!r}: {_stderr(self.err)}"

    def start(self, args: dict):
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        return self.lines

    def finish(self, pid: int, lines: Lines) -> tuple[list[str], bool]:
        """Lines still in the pipe after the kill, and whether the worker died of SIGKILL."""
        rest = []
        while True:
            line = lines.next("the zygote to reap the worker")
            assert line is not None, f"the zygote died: {_stderr(self.err)}"
            if line.startswith("reaped "):
                _, reaped, status = line.split()
                assert int(reaped) == pid
                status = int(status)
                return rest, os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            rest.append(line)

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Direct:
    """A worker run directly as `sys.executable durability_child.py work ...` (no zygote)."""

    def __init__(self, tmp: Path):
        self.err = tmp / "direct.stderr"
        self.proc = None

    def start(self, args: dict):
        with self.err.open("w") as err:
            self.proc = subprocess.Popen([sys.executable, str(HELPER), "work", json.dumps(args)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
                                         bufsize=1)
        return Lines(self.proc.stdout)

    def finish(self, pid: int, lines: Lines) -> tuple[list[str], bool]:
        rest = []
        while (line := lines.next("the worker's pipe to close")) is not None:
            rest.append(line)
        return rest, self.proc.wait(timeout=LINE_TIMEOUT) == -signal.SIGKILL

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _run_trial(runner, args: dict, kill_after: int) -> tuple[list[tuple[int, str]], str | None]:
    """Start a worker, SIGKILL it after `kill_after` "done" lines or at its crash point.

    Returns every (seq, what) the worker acknowledged, including lines that were already in
    the pipe when the kill landed, and the crash-point line if the kill was at one.
    """
    lines = runner.start(args)
    first = lines.next("the worker's pid")
    assert first is not None and first.startswith("pid "), f"worker said {first!r}: {_stderr(runner.err)}"
    pid = int(first.split()[1])
    done: list[tuple[int, str]] = []
    phase = None

    def take(line: str) -> None:
        assert line.startswith("done "), f"unexpected worker output {line!r}: {_stderr(runner.err)}"
        _, seq, what = line.split(" ", 2)
        done.append((int(seq), what))

    while True:
        line = lines.next("the worker's next command")
        assert line is not None and not line.startswith("reaped "), \
            f"the worker ended before it was killed: {_stderr(runner.err)}"
        if line.startswith("phase "):
            phase = line
            break
        take(line)
        if len(done) >= kill_after:
            break
    os.kill(pid, signal.SIGKILL)  # immediately: no sleep between the acknowledgement and the kill
    rest, killed = runner.finish(pid, lines)
    for line in rest:
        take(line)
    assert killed, f"worker {pid} did not die of SIGKILL: {_stderr(runner.err)}"
    return done, phase


def _host(flags: Path) -> PluginHost:
    return PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)


def _check_log(store: IncidentStore, incident: str) -> list:
    events = store.events(incident)
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "sequence numbers are not contiguous"
    ok, message = verify(events)
    assert ok, message
    assert store.incident(incident)["last_seq"] == len(events), "the incidents projection lags the log"
    return events


def _check_acknowledged(events: list, done: list[tuple[int, str]]) -> None:
    seqs = [seq for seq, _ in done]
    assert seqs == sorted(set(seqs)), f"acknowledged sequence numbers go backwards: {seqs}"
    for seq, what in done:
        assert seq <= len(events), f"event {seq} ({what}) was acknowledged but is not in the store ({len(events)})"
        event = events[seq - 1]
        kind, _, arg = what.partition(":")
        if kind == "note":
            assert (event.type, event.data.get("text")) == ("note_added", arg), (seq, what, event)
        elif kind == "acknowledge":
            assert event.type == "acknowledged", (seq, what, event)
        elif kind == "open":
            assert events[0].type == "opened", events[0]
        else:
            ends = {"degrade": "degradation_applied", "restore": "degradation_restored"}[kind]
            assert event.type in (ends, "degradation_failed") and event.data["degradation"] == arg, (seq, what, event)


def _check_flags_agree(state, flags: Path) -> None:
    """Each flag of each degradation holds its degraded value exactly when the state says it was changed."""
    data = flagd.read(str(flags))  # also: the file is whole, valid flagd JSON after the kill
    for name, spec in state.playbook.degradations.items():
        deg = state.degradations[name]
        assert not deg.pending, f"degradation {name} is still pending"
        assert deg.applied == bool(deg.flags), (name, deg)
        for flag, value in spec.set.items():
            current = flagd.state(data, flag)
            degraded = current.exists and current.value == value and type(current.value) is type(value)
            assert degraded == (flag in deg.flags), \
                f"{name}: flag {flag} is {current} in the file but the state has {deg.flags}"


def _trial_plan(trial: int) -> tuple[int, int, str]:
    """(kill after this many acknowledgements, crash point M or 0, crash phase), seeded by the trial."""
    rng = random.Random(trial)
    kill_after = rng.randint(1, MAX_DONE)
    if rng.random() < 0.4:
        return 10_000, rng.randint(1, 6), rng.choice(["before", "after"])
    return kill_after, 0, ""


def test_kill_9_loses_nothing_acknowledged_and_reconcile_settles_intents(tmp_path, store_location):
    db, flags = store_location, tmp_path / "flags.json"
    host = _host(flags)
    zygote = Zygote(tmp_path)
    direct = Direct(tmp_path)
    outcomes: Counter = Counter()
    try:
        for trial in range(TRIALS):
            kill_after, stop_at, phase = _trial_plan(trial)
            runner = direct if trial % 20 == 0 else zygote  # trial 0 opens the incident in a plain subprocess
            args = {"db": str(db), "flags": str(flags), "incident": INCIDENT, "trial": trial,
                    "playbooks": str(PLAYBOOKS), "commands": 10_000, "stop_at": stop_at, "phase": phase}
            done, crashed_at = _run_trial(runner, args, kill_after)
            assert bool(crashed_at) == bool(stop_at), (trial, crashed_at)

            with open_store(db) as store:
                events = _check_log(store, INCIDENT)
                _check_acknowledged(events, done)
                notes = Counter(e.data["text"] for e in events if e.type == "note_added")
                assert max(notes.values()) == 1, f"duplicated notes: {[t for t, n in notes.items() if n > 1]}"

                engine = Engine(store, VirtualClock(), host, None)
                state = engine.state(INCIDENT)  # a fresh fold of the whole log
                assert state.last_seq == len(events)
                assert len(state.notes) == len(notes)
                pending = sorted(name for name, deg in state.degradations.items() if deg.pending)
                if crashed_at:
                    assert pending, f"trial {trial}: killed at '{crashed_at}' but no intent is pending"
                if pending:
                    settled = engine.reconcile(INCIDENT, force=True)
                    outcomes.update(f"{e.type}:{e.data['degradation']}" for e in settled
                                    if e.type.startswith("degradation_"))
                    events = _check_log(store, INCIDENT)
                    state = Engine(store, VirtualClock(), host, None).state(INCIDENT)
                    assert state.last_seq == len(events)
                    assert engine.reconcile(INCIDENT, force=True) == [], "reconcile is not idempotent"
                outcomes["pending after kill" if pending else "nothing pending after kill"] += 1
                _check_flags_agree(state, flags)
    finally:
        zygote.close()
        direct.close()
    print(f"\n{TRIALS} kills; final log {len(events)} events; {dict(sorted(outcomes.items()))}")
    # the crash-point trials (seeded, so the same every run) reach both kinds of recovery
    assert outcomes["pending after kill"] >= 10
    assert any(k.startswith("degradation_failed") for k in outcomes)
    assert any(k.startswith(("degradation_applied", "degradation_restored")) for k in outcomes)


@pytest.mark.parametrize("writers, per_writer", [(4, 100), (8, 200)])
def test_processes_append_concurrently_without_loss_or_duplicates(tmp_path, store_location, writers, per_writer):
    db = store_location
    catalog = load([str(PLAYBOOKS)])
    with open_store(db) as store:
        opened = Engine(store, VirtualClock(), None, catalog).open("video-call-degraded", "ana", incident=INCIDENT)
    opening = opened.last_seq

    procs, readers, errs = [], [], []
    try:
        for i in range(writers):
            err = tmp_path / f"writer{i}.stderr"
            errs.append(err)
            with err.open("w") as stderr:
                procs.append(subprocess.Popen(
                    [sys.executable, str(HELPER), "notes",
                     json.dumps({"db": str(db), "incident": INCIDENT, "writer": f"w{i}", "count": per_writer})],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1))
            readers.append(Lines(procs[-1].stdout))
        for reader, err in zip(readers, errs):  # barrier: everyone has imported and opened the database
            line = reader.next("the writer to get ready")
            assert line == "ready", f"writer said {line!r}: {_stderr(err)}"
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            proc.stdin.close()
        acknowledged: dict[str, list[tuple[int, str]]] = {}
        conflicts = 0
        for i, (reader, proc, err) in enumerate(zip(readers, procs, errs)):
            done = []
            while not (line := reader.next(f"writer w{i}") or "").startswith("finished "):
                assert line.startswith("done "), f"writer w{i}: {line!r}: {_stderr(err)}"
                _, seq, what = line.split(" ", 2)
                done.append((int(seq), what))
            conflicts += int(line.split()[1])
            assert proc.wait(timeout=LINE_TIMEOUT) == 0, _stderr(err)
            acknowledged[f"w{i}"] = done
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if not proc.stdin.closed:
                proc.stdin.close()

    with open_store(db) as store:
        events = _check_log(store, INCIDENT)
        assert len(events) == opening + writers * per_writer
        assert [e.type for e in events[:opening]] == [e.type for e in opened.events]
        notes = [e for e in events if e.type == "note_added"]
        assert len(notes) == writers * per_writer
        assert all(e.seq > opening for e in notes)
        texts = Counter(e.data["text"] for e in notes)
        for w, done in acknowledged.items():
            expected = [f"{w}-{k}" for k in range(per_writer)]
            assert all(texts[t] == 1 for t in expected), f"{w}: notes missing or duplicated"
            mine = [e for e in notes if e.actor == w]
            assert [e.data["text"] for e in mine] == expected, f"{w}: notes out of order"
            assert [(e.seq, f"note:{e.data['text']}") for e in mine] == done, f"{w}: acknowledged seqs differ"
        state = Engine(store, VirtualClock(), None, None).state(INCIDENT)
        assert len(state.notes) == writers * per_writer and state.last_seq == len(events)
    switches = sum(1 for a, b in pairwise(notes) if a.actor != b.actor)
    print(f"\n{len(events)} events; the writers took turns {switches} times; {conflicts} conflicts retried")


# Races and crashes between the phases of a degradation (found by this harness, now fixed).

def _two_engines(tmp_path):
    def engine(catalog=None):
        return Engine(Store(str(tmp_path / "db.sqlite")), VirtualClock(), _host(tmp_path / "flags.json"), catalog)
    first = engine(load([str(PLAYBOOKS)]))
    first.open("video-call-degraded", "ana", incident=INCIDENT)
    return first, engine(), engine


def test_degrade_that_lost_a_race_is_refused(tmp_path):
    a, b, engine = _two_engines(tmp_path)
    real, raced = b.plugins.get_flag, []

    def get_flag(name, *args, **kwargs):  # B has checked "not applied" and is planning when A degrades
        if not raced:
            raced.append(a.degrade(INCIDENT, "ana", "audio-only"))
        return real(name, *args, **kwargs)
    b.plugins.get_flag = get_flag
    try:
        b.degrade(INCIDENT, "bob", "audio-only")
    except Exception:
        pass  # refused: what the engine's contract promises
    events = engine().state(INCIDENT).events
    assert sum(e.type == "degradation_applied" for e in events) == 1, "the degradation was recorded twice"
    engine().restore(INCIDENT, "carol", "audio-only")
    state = engine().state(INCIDENT)
    _check_flags_agree(state, tmp_path / "flags.json")


def test_reconcile_of_a_half_applied_degradation_tells_the_truth(tmp_path):
    a, _, engine = _two_engines(tmp_path)
    real, calls = a.plugins.set_flag, []

    class Killed(Exception):
        pass

    def set_flag(name, *args, **kwargs):  # the process dies between the two flag writes of audio-only
        calls.append(name)
        if len(calls) == 2:
            raise Killed(name)
        return real(name, *args, **kwargs)
    a.plugins.set_flag = set_flag
    with pytest.raises(Killed):
        a.degrade(INCIDENT, "ana", "audio-only")
    after = engine()
    settled = after.reconcile(INCIDENT, force=True)
    state = after.state(INCIDENT)
    _check_flags_agree(state, tmp_path / "flags.json")  # holds: the state does count one flag as changed
    failed = [e for e in settled if e.type == "degradation_failed"]
    assert failed and state.degradations["audio-only"].flags  # half applied...
    assert "nothing half-done remains" not in failed[0].data["reason"]  # ...and the reason says so
    assert "rtc.video.enabled is degraded" in failed[0].data["reason"]
