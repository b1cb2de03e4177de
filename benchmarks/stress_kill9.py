"""kill -9 stress of the engine: every state-changing command, kill points over the whole run, races.

    PYTHONPATH=src .venv/bin/python benchmarks/stress_kill9.py [--trials 200] [--seed 1]
    RUNBOOK_CHECKPOINT_EVERY=3 PYTHONPATH=src .venv/bin/python benchmarks/stress_kill9.py  # checkpoints often

One database and one flagd file (in a temporary directory) for the whole run. Each trial forks
worker processes from a zygote (runbook imported once) that issue real engine commands and
print "done <incident> <seq> <hash> <kind>" after each command returned (the hash is the last
event's, so the whole command is pinned down through the hash chain):

- single trials: one worker opens an incident and drives it with randomly chosen commands
  (acknowledge, note, step done/skip/fail, choose, approve, degrade, restore, severity,
  mitigate, escalate now, run an action step, resolve, then open the next one). It is killed
  at a random moment uniform over a whole worker's run time, or at a crash point: it stops
  itself (SIGSTOP) before or after its Mth flag write, or reports that its action is running,
  and the parent's SIGKILL lands right there. Some trials are not killed (controls).
- race trials: on one incident, a flipper degrades/restores both degradations (slow flag
  writes: a change stays in flight for tens of ms), a resolver works the incident and resolves
  it, and a third process runs `resume` (reconcile + tick, slow flag reads) in a loop. One of
  the first two is killed (at a random moment, or the flipper between two flag writes).

After each trial, with every worker dead: (1) lost = acknowledged commands whose last event is
missing or differs (hash); (2) duplicated = events the state before them rules out (see
`Checker`); (3) chain breaks = incidents whose hash chain fails `verify` or whose projection's
last_seq is not the log's, whose record (checkpoint included) fails `incident verify`'s checks,
or whose state as a fresh process reads it (from its checkpoint) is not the fold of its log; (4)
every incident left unresolved is resolved by a fresh engine, then flags left degraded = flags
of the playbook's degradations that do not hold their value from before the run, plus resolved
incidents whose state still has a degradation touched or pending, plus changes recorded after
`resolved`. Exit status 1 if any of the four is non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK_ID = "stress"
INITIAL = {"q.a": True, "q.b": True, "q.c": True, "q.d": True, "p.x": "hd", "p.y": 1000}
DEGRADATIONS = ("quad", "pair")
KINDS = ("open", "ack", "note", "step-done", "step-skip", "step-fail", "choose", "approve", "degrade", "restore",
         "severity", "mitigate", "escalate", "run", "resolve")  # every state-changing command a worker issues

PLAYBOOK = """\
apiVersion: runbook/v1
kind: Playbook
id: stress
title: Stress playbook
service: rtc
severity: SEV2
escalation: ladder
symptoms: [{id: s, summary: Something}]
roles:
  commander: {title: Commander}
degradations:
  quad:
    summary: Four flags off
    set: {q.a: false, q.b: false, q.c: false, q.d: false}
  pair:
    summary: Lower quality
    set: {p.x: sd, p.y: 300}
steps:
  - id: scope
    title: Scope it
  - id: which
    kind: choose
    question: How bad?
    options:
      - {label: Very bad, degradation: quad}
      - {label: Bad, next: cap}
  - id: probe
    kind: action
    title: Probe
    run: ["sleep", "0.15"]
    timeout: 30s
  - id: fix
    kind: verify
    title: Fixed?
    on_fail: scope
    next: unpair
  - id: cap
    kind: degrade
    title: Lower quality
    degradation: pair
    approval: {by: commander}
    next: probe
  - id: unpair
    kind: restore
    title: Quality back
    degradation: pair
  - id: unquad
    kind: restore
    title: Flags back
    degradation: quad
"""

SEVERITY_AND_ESCALATION = (ROOT / "tests" / "engine_catalog" / "policies.yaml").read_text()


# ---------------------------------------------------------------------------------- children

def emit(tag: str, line: str) -> None:
    os.write(1, f"{tag} {line[:3000]}\n".encode())  # one write (< PIPE_BUF): lines never interleave


def _engine(args: dict, catalog=True):
    from runbook.catalog import load
    from runbook.engine import Engine, SystemClock
    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.store import Store

    host = PluginHost(Settings(flags_file=args["flags"], plugins_dir=None), entry_points=False)
    return Engine(Store(args["db"]), SystemClock(), host, load([args["catalog"]]) if catalog else None)


def _fault_injection(engine, args: dict, tag: str) -> None:
    """Slow flag writes/reads, a crash point at the Mth flag write, an 'action running' report."""
    host, writes = engine.plugins, [0]
    slow_write, slow_read = args.get("slow_write", 0.0), args.get("slow_read", 0.0)
    stop_at, phase = args.get("stop_at", 0), args.get("phase", "")

    def wrap(name):
        real = getattr(host, name)

        def wrapper(flag, *a, **kw):
            writes[0] += 1
            hit = writes[0] == stop_at
            if slow_write:
                time.sleep(random.uniform(0, slow_write))
            if hit and phase == "before":
                emit(tag, f"phase flag before {name} {flag}")
                os.kill(os.getpid(), signal.SIGSTOP)
            result = real(flag, *a, **kw)
            if hit and phase == "after":
                emit(tag, f"phase flag after {name} {flag}")
                os.kill(os.getpid(), signal.SIGSTOP)
            return result
        setattr(host, name, wrapper)
    wrap("set_flag")
    wrap("restore_flag")
    if slow_read:
        real_get = host.get_flag

        def get_flag(flag, *a, **kw):
            time.sleep(random.uniform(0, slow_read))
            return real_get(flag, *a, **kw)
        host.get_flag = get_flag
    if args.get("action_phase"):
        real_run = host.run_action

        def run_action(request):
            emit(tag, "phase action")
            return real_run(request)
        host.run_action = run_action


class Worker:
    def __init__(self, args: dict):
        self.args, self.tag = args, args["tag"]
        self.rng = random.Random(args["rng"])
        self.engine = _engine(args)
        _fault_injection(self.engine, args, self.tag)
        self.actor = args["role"] + str(args["trial"])
        self.k = 0

    def do(self, incident: str, kind: str, call, suffix: str = "") -> list:
        from runbook.errors import RunbookError

        emit(self.tag, f"begin {kind}")
        try:
            events = call()
        except RunbookError as exc:
            emit(self.tag, f"refused {kind} {type(exc).__name__}: {str(exc)[:200]}")
            return None
        if events:
            emit(self.tag, f"done {incident} {events[-1].seq} {events[-1].hash} {kind}{suffix}")
        else:
            emit(self.tag, f"done {incident} - - {kind}")
        return events

    def note(self, incident):
        self.k += 1
        text = f"{self.tag}-n{self.k}"
        return self.do(incident, "note", lambda: self.engine.note(incident, self.actor, text))

    def open(self) -> str:
        self.k += 1
        incident = f"INC-{self.tag.upper()}{self.k}"
        emit(self.tag, f"incident {incident}")

        def call():
            state = self.engine.open(PLAYBOOK_ID, self.actor, incident=incident)
            return state.events
        self.do(incident, "open", call)
        return incident

    def resolve(self, incident, tries: int = 1):
        for _ in range(tries):
            box = []

            def call():
                box[:] = self.engine.resolve(incident, self.actor)
                return box
            events = self.do(incident, "resolve", call)
            if events is not None:
                settled = sum(1 for e in events if e.type.startswith("degradation_") and e.data.get("reconciled"))
                if settled:
                    emit(self.tag, f"settled {settled} resolve")
                return events
        return None

    def one(self, incident: str) -> str:
        """One random command that the incident's state makes plausible (some get refused)."""
        eng, rng, who = self.engine, self.rng, self.actor
        state = eng.state(incident)
        current = state.current_steps()
        step = state.playbook.step(current[0]) if current else None
        choices = [("note", 3), ("ack", 2 if not state.acknowledged_at else 0.2), ("severity", 1),
                   ("mitigate", 1 if not state.mitigated_at else 0.1), ("escalate", 1),
                   ("degrade", 1.5), ("restore", 1.5), ("resolve", 0.8)]
        if step is not None:
            if step.kind in ("decision", "choose"):
                choices += [("choose", 6)]
            elif step.kind == "action":
                choices += [("run", 5), ("step-done", 1)]
            elif step.approval and not state.steps[step.id].approved:
                choices += [("approve", 5), ("step-done", 1)]
            else:
                choices += [("step-done", 6 if step.id != "fix" else 2), ("step-fail", 1)]
            choices += [("step-skip", 0.7)]
        kind = rng.choices([c for c, _ in choices], [w for _, w in choices])[0]
        if kind == "note":
            self.note(incident)
        elif kind == "ack":
            self.do(incident, kind, lambda: eng.acknowledge(incident, who))
        elif kind == "severity":
            to = "SEV1" if state.severity != "SEV1" else rng.choice(["SEV2", "SEV4"])
            self.do(incident, kind, lambda: eng.severity(incident, who, to, "stress"))
        elif kind == "mitigate":
            self.do(incident, kind, lambda: eng.mitigate(incident, who))
        elif kind == "escalate":
            self.do(incident, kind, lambda: eng.escalate_now(incident, who))
        elif kind in ("degrade", "restore"):
            name = rng.choice(DEGRADATIONS)
            fn = eng.degrade if kind == "degrade" else eng.restore
            self.do(incident, kind, lambda: fn(incident, who, name))
        elif kind == "resolve":
            if self.resolve(incident) is not None:
                return self.open()
        elif kind == "choose":
            option = rng.choice(["1", "2", "Bad"])
            self.do(incident, kind, lambda: eng.choose(incident, who, option))
        elif kind == "run":
            self.do(incident, kind, lambda: eng.run(incident, who))
        elif kind == "approve":
            self.do(incident, kind, lambda: eng.approve(incident, who))
        elif kind == "step-done":
            self.do(incident, kind, lambda: eng.complete(incident, who))
        elif kind == "step-fail":
            self.do(incident, kind, lambda: eng.fail(incident, who, None, "stress"))
        elif kind == "step-skip":
            self.do(incident, kind, lambda: eng.skip(incident, who, None, "stress"))
        return incident


def child_single(args: dict) -> None:
    w = Worker(args)
    incident = w.open()
    for _ in range(args["commands"]):
        incident = w.one(incident)


def child_flipper(args: dict) -> None:
    w, incident = Worker(args), args["incident"]
    for i in range(args["commands"]):
        name = DEGRADATIONS[i % 2] if w.rng.random() < 0.7 else w.rng.choice(DEGRADATIONS)
        deg = w.engine.state(incident).degradations[name]
        kind = "restore" if deg.touched else "degrade"
        fn = w.engine.restore if kind == "restore" else w.engine.degrade
        w.do(incident, kind, lambda: fn(incident, w.actor, name))
        if w.engine.state(incident).resolved and w.rng.random() < 0.5:
            break


def child_resolver(args: dict) -> None:
    w, incident = Worker(args), args["incident"]
    w.engine.resolve_wait = 5.0
    for _ in range(args["commands"]):
        kind = w.rng.choice(["note", "ack", "step-done", "severity", "note"])
        if kind == "note":
            w.note(incident)
        elif kind == "ack":
            w.do(incident, kind, lambda: w.engine.acknowledge(incident, w.actor))
        elif kind == "severity":
            w.do(incident, kind, lambda: w.engine.severity(incident, w.actor, "SEV1", "race"))
        else:
            w.do(incident, kind, lambda: w.engine.complete(incident, w.actor))
    w.resolve(incident, tries=20)


def child_resume(args: dict) -> None:
    w, incident = Worker(args), args["incident"]
    while True:
        box = []

        def call():
            box[:] = w.engine.reconcile(incident) + w.engine.tick(incident)
            return box
        emit(w.tag, "begin resume")
        events = call()
        if events:
            emit(w.tag, f"done {incident} {events[-1].seq} {events[-1].hash} resume")
            settled = sum(1 for e in events if e.type.startswith("degradation_") and e.data.get("reconciled"))
            if settled:
                emit(w.tag, f"settled {settled} resume")
        time.sleep(0.002)


CHILDREN = {"single": child_single, "flipper": child_flipper, "resolver": child_resolver, "resume": child_resume}


def zygote() -> None:
    """Import runbook once; fork a worker per JSON line on stdin; report each reaped worker."""
    import runbook.catalog
    import runbook.catalog.loader
    import runbook.engine
    import runbook.plugins
    import runbook.store  # noqa: F401
    emit("zygote", "ready")
    tags: dict[int, str] = {}
    buffer, open_stdin = b"", True
    while open_stdin or tags:
        readable, _, _ = select.select([0] if open_stdin else [], [], [], 0.01)
        if readable:
            chunk = os.read(0, 65536)
            if not chunk:
                open_stdin = False
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                args = json.loads(line)
                pid = os.fork()
                if pid == 0:
                    code = 0
                    try:
                        emit(args["tag"], f"pid {os.getpid()}")
                        CHILDREN[args["role_kind"]](args)
                        emit(args["tag"], "end")
                    except BaseException:
                        emit(args["tag"], "error " + traceback.format_exc().replace("\n", " | ")[-3000:])
                        code = 1
                    finally:
                        os._exit(code)
                tags[pid] = args["tag"]
        while tags:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            emit(tags.pop(pid, "?"), f"reaped {pid} {status}")


# ------------------------------------------------------------------------------------ parent

class Zygote:
    def __init__(self, tmp: Path):
        env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp / "run"))
        (tmp / "run").mkdir(mode=0o700)
        self.err = open(tmp / "zygote.stderr", "w")
        self.proc = subprocess.Popen([sys.executable, __file__, "zygote"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, env=env)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        tag, line = self.lines.get(timeout=120)
        assert (tag, line) == ("zygote", "ready"), (tag, line)

    def _pump(self):
        for raw in self.proc.stdout:
            tag, _, line = raw.decode(errors="replace").rstrip("\n").partition(" ")
            self.lines.put((tag, line))
        self.lines.put(("zygote", "eof"))

    def start(self, args: dict) -> None:
        self.proc.stdin.write((json.dumps(args) + "\n").encode())
        self.proc.stdin.flush()

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


class Run:
    """One worker as the parent sees it."""

    def __init__(self, tag: str, role: str):
        self.tag, self.role = tag, role
        self.pid = None
        self.t0 = None
        self.done: list[tuple[str, int, str, str]] = []  # (incident, seq, hash, kind)
        self.incidents: list[str] = []
        self.last_begin = None  # kind of a command begun and not yet finished
        self.phase = None
        self.ended = False
        self.status = None
        self.killed = False
        self.kill_point = None
        self.errors: list[str] = []
        self.refused = 0
        self.settled = Counter()

    def take(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word == "pid":
            self.pid, self.t0 = int(rest), time.monotonic()
        elif word == "begin":
            self.last_begin = rest
        elif word == "done":
            incident, seq, digest, kind = rest.split(" ", 3)
            if seq != "-":
                self.done.append((incident, int(seq), digest, kind))
            self.last_begin = None
        elif word == "refused":
            self.refused += 1
            self.last_begin = None
        elif word == "incident":
            self.incidents.append(rest)
        elif word == "phase":
            self.phase = rest
        elif word == "settled":
            n, who = rest.split()
            self.settled[who] += int(n)
        elif word == "end":
            self.ended = True
        elif word == "error":
            self.errors.append(rest)
        elif word == "reaped":
            self.status = int(rest.split()[1])
        else:
            self.errors.append(f"unexpected line {line!r}")


def run_trial(zyg: Zygote, specs: list[dict], victim: str | None, kill_at: float | None,
              stop_last: str | None, kill_begin: tuple[str, int, float] | None = None,
              bound: float = 90.0) -> dict[str, Run]:
    """Start the workers; SIGKILL `victim` at `kill_at` seconds after it started, or `kill_begin`
    = (kind, k, d): d seconds after the first command of that kind begun after its k-th, or at
    its crash point; SIGKILL `stop_last`
    (the resume loop) once every other worker is gone. Returns the runs, reaped."""
    runs = {s["tag"]: Run(s["tag"], s["role"]) for s in specs}
    begun = 0
    for spec in specs:
        zyg.start(spec)
    start = time.monotonic()

    def kill(run: Run, point: str) -> None:
        if run.pid and not run.killed and run.status is None:
            os.kill(run.pid, signal.SIGKILL)
            run.killed, run.kill_point = True, point

    while any(r.status is None for r in runs.values()):
        now = time.monotonic()
        wait = 0.05
        if victim and kill_at is not None and not runs[victim].killed and runs[victim].t0:
            wait = max(0.0, min(wait, runs[victim].t0 + kill_at - now))
        try:
            tag, line = zyg.lines.get(timeout=wait)
            if tag == "zygote":
                raise RuntimeError(f"the zygote ended: {line}")
            runs[tag].take(line)
            if kill_begin and tag == victim and line.startswith("begin "):
                begun += 1
                kind, after, delay = kill_begin
                if begun > after and line == f"begin {kind}" and kill_at is None:
                    kill_at = time.monotonic() + delay - runs[victim].t0
        except queue.Empty:
            pass
        now = time.monotonic()
        if victim:
            v = runs[victim]
            if v.phase and not v.killed:
                kill(v, "phase")
            elif kill_at is not None and v.t0 and now >= v.t0 + kill_at and not v.killed:
                kill(v, "time")
        if stop_last and all(r.status is not None for t, r in runs.items() if t != stop_last):
            kill(runs[stop_last], "end")
        if now - start > bound:
            for r in runs.values():
                r.errors.append(f"hung: still running after {bound:.0f}s (last begun: {r.last_begin})")
                kill(r, "hung")
            bound = float("inf")
    for r in runs.values():
        if r.killed and r.kill_point in ("time", "end"):
            # what it was doing when the kill landed: read after every line it wrote was taken
            r.kill_point = f"{r.last_begin} (mid-command)" if r.last_begin else "between commands"
        elif r.killed and r.kill_point == "phase":
            r.kill_point = (f"{r.last_begin} (between flag writes)" if r.phase.startswith("flag")
                            else f"{r.last_begin} (action running)")
        if r.killed and not (os.WIFSIGNALED(r.status) and os.WTERMSIG(r.status) == signal.SIGKILL):
            r.killed = False  # it had already ended on its own
    return runs


class Checker:
    """The four figures for one trial's incidents, with every worker dead."""

    def __init__(self, db: str, flags: str, catalog):
        from runbook.plugins import PluginHost
        from runbook.settings import Settings
        from runbook.store import Store

        self.store = Store(db)
        self.flags = flags
        self.catalog = catalog
        self.host = PluginHost(Settings(flags_file=flags, plugins_dir=None), entry_points=False)
        self.figures = Counter()
        self.problems: list[str] = []

    def engine(self):
        from runbook.engine import Engine, SystemClock

        return Engine(self.store, SystemClock(), self.host, self.catalog)

    def problem(self, figure: str, text: str, n: int = 1) -> None:
        self.figures[figure] += n
        if len(self.problems) < 50:
            self.problems.append(f"{figure}: {text}")

    def check(self, trial: int, runs: dict[str, Run]) -> None:
        from runbook.engine.metrics import verify

        incidents = []
        for r in runs.values():
            incidents += [i for i in r.incidents if i not in incidents]
        acknowledged = [d for r in runs.values() for d in r.done]
        for incident in incidents:
            if self.store.incident(incident) is None:
                if any(d[0] == incident for d in acknowledged):
                    self.problem("lost", f"trial {trial}: {incident} was acknowledged open but is not in the store")
                continue  # killed before its opening committed
            self.figures["incidents"] += 1
            # (1) lost: before anything else appends, every acknowledged command is there, unchanged
            events = self.store.events(incident)
            by_seq = {e.seq: e for e in events}
            for inc, seq, digest, kind in acknowledged:
                if inc == incident:
                    self.figures["acknowledged"] += 1
                    if seq not in by_seq or by_seq[seq].hash != digest:
                        self.problem("lost", f"trial {trial}: {incident} event {seq} ({kind}) acknowledged but "
                                             f"{'missing' if seq not in by_seq else 'different'}")
            # (4) resolve what the kill left unresolved, from a fresh engine
            engine = self.engine()
            state = engine.state(incident)
            if not state.resolved:
                try:
                    out = engine.resolve(incident, "stress")
                    self.figures["resolved by the check"] += 1
                    settled = sum(1 for e in out if e.type.startswith("degradation_") and e.data.get("reconciled"))
                    self.figures["settled by resolve (check)"] += settled
                    self.figures["resolves that settled (check)"] += bool(settled)
                except Exception as exc:  # a figure, not a crash of the benchmark
                    self.problem("left degraded", f"trial {trial}: resolve of {incident} failed: "
                                                  f"{type(exc).__name__}: {exc}")
            # actions orphaned by a kill are settled too (resolve leaves actions to resume)
            for e in engine.reconcile(incident):
                self.figures["actions settled (check)"] += e.type == "action_finished"
            events = self.store.events(incident)
            self.figures["events"] += len(events)
            # (3) the chain and the projection
            ok, message = verify(events)
            if not ok:
                self.problem("chain breaks", f"trial {trial}: {incident}: {message}")
            elif self.store.incident(incident)["last_seq"] != events[-1].seq:
                self.problem("chain breaks", f"trial {trial}: {incident}: projection last_seq "
                                             f"{self.store.incident(incident)['last_seq']} != log {events[-1].seq}")
            else:  # the whole record (checkpoint included), and the state a fresh process reads
                from runbook.engine.events import fold
                from runbook.engine.snapshot import Snapshot

                fresh = self.engine()
                check = fresh.integrity(incident)
                if not check.ok:
                    self.problem("chain breaks", f"trial {trial}: {incident}: {check.summary}")
                elif fresh.state(incident) != fold(incident, events, Snapshot.load(self.store.snapshot(incident))):
                    self.problem("chain breaks", f"trial {trial}: {incident}: the state read from its checkpoint "
                                                 "is not the fold of its log")
                self.figures["checkpoints read"] += fresh.state(incident).base_seq > 0
            # (2) duplicates, and changes after resolved
            self.duplicates(trial, incident, events)
            state = self.engine().state(incident)
            if not state.resolved:
                self.problem("left degraded", f"trial {trial}: {incident} is still not resolved")
            bad = [n for n, d in state.degradations.items() if d.touched or d.pending]
            if bad:
                self.problem("left degraded", f"trial {trial}: {incident} resolved with {bad} touched or pending")
        # (4) the flag file holds the values from before every degradation
        from runbook import flagd

        data = flagd.read(self.flags)
        for flag, value in INITIAL.items():
            now = flagd.state(data, flag)
            if not (now.exists and now.value == value and type(now.value) is type(value)):
                self.problem("left degraded", f"trial {trial}: flag {flag} is {now.value!r}, was {value!r}")
                self.host.set_flag(flag, value)  # so one failure does not count again in every later trial

    def duplicates(self, trial: int, incident: str, stored) -> None:
        from runbook.engine.events import Event, apply
        from runbook.engine.snapshot import Snapshot
        from runbook.engine.state import ACTIVE, FAILED, new_state

        state = new_state(incident, Snapshot.load(self.store.snapshot(incident)))
        notes: set = set()
        changed: dict[str, set] = {}
        for raw in stored:
            ev = Event.from_stored(raw)
            t, d = ev.type, ev.data
            why = None
            if t == "opened" and ev.seq != 1:
                why = "opened again"
            elif t == "acknowledged" and state.acknowledged_at:
                why = "acknowledged twice"
            elif t == "mitigated" and state.mitigated_at:
                why = "mitigated twice"
            elif t == "resolved" and state.resolved:
                why = "resolved twice"
            elif t == "severity_changed" and d.get("from") != state.severity:
                why = f"severity change from {d.get('from')} while {state.severity}"
            elif t == "note_added":
                why = "note recorded twice" if d["text"] in notes else None
                notes.add(d["text"])
            elif t == "step_started" and not d.get("retry") and state.steps[d["step"]].status == ACTIVE:
                why = f"step {d['step']} started while active"
            elif t in ("step_completed", "decision_made", "step_skipped", "step_failed"):
                step = state.steps[d["step"]]
                allowed = (ACTIVE, FAILED) if t == "step_skipped" else (ACTIVE,)
                if state.current.get(d["track"]) != d["step"] or step.status not in allowed:
                    why = f"{t} for {d['step']} while it was {step.status}"
            elif t == "approval_granted" and state.steps[d["step"]].approved:
                why = f"{d['step']} approved twice"
            elif t == "degradation_started":
                if state.degradations[d["degradation"]].pending:
                    why = f"{d['degradation']} started while another change of it was in flight"
                elif d["op"] == "apply" and state.resolved:
                    self.problem("left degraded", f"trial {trial}: {incident} event {ev.seq}: apply after resolved")
                changed[d["degradation"]] = set()
            elif t == "flag_changed":
                pending = state.degradations[d["degradation"]].pending
                seen = changed.setdefault(d["degradation"], set())
                if not pending or pending["op"] != d["op"] or d["flag"] not in pending["flags"] or d["flag"] in seen:
                    why = f"flag {d['flag']} ({d['op']}) recorded outside its change or twice"
                seen.add(d["flag"])
            elif t in ("degradation_applied", "degradation_restored", "degradation_failed"):
                pending = state.degradations[d["degradation"]].pending
                op = d.get("op") or ("apply" if t == "degradation_applied" else "restore")
                if not pending or pending["op"] != op:
                    why = f"{t} of {d['degradation']} with no matching change in flight"
            elif t == "action_started" and d["step"] in state.actions_pending:
                why = f"action of {d['step']} started twice"
            elif t == "action_finished" and d["step"] not in state.actions_pending:
                why = f"action of {d['step']} finished twice"
            elif t == "notified" and not any(e.record.level == d["level"] and e.record.round == d["round"]
                                             for e in state.escalation.unnotified):
                why = f"level {d['level']} round {d['round']} notified twice"
            if why:
                self.problem("duplicated", f"trial {trial}: {incident} event {ev.seq} ({t}): {why}")
            apply(state, ev)


def plan_trial(rng: random.Random, trial: int, seed: int,
               durations: dict) -> tuple[list[dict], str | None, float | None, str | None, str]:
    common = {"trial": trial}
    if rng.random() < 0.6:
        tag = f"t{trial}s"
        spec = {**common, "tag": tag, "role": "single", "role_kind": "single", "rng": f"{seed}-{trial}",
                "commands": rng.randint(25, 45), "slow_write": rng.choice([0.0, 0.0, 0.01, 0.03])}
        r = rng.random()
        if r < 0.30:
            spec.update(stop_at=rng.randint(1, 10), phase=rng.choice(["before", "after"]))
            return [spec], tag, None, None, "single, crash point at a flag write"
        if r < 0.40:
            spec.update(action_phase=True)
            return [spec], tag, None, None, "single, killed while its action runs"
        if r < 0.47:
            return [spec], None, None, None, "single, not killed"
        if r < 0.80:
            target = (rng.choice(KINDS), rng.randint(0, spec["commands"] // 2), rng.uniform(0, 0.003))
            return [spec], tag, target, None, "single, killed 0-3 ms after a command of a chosen kind began"
        full = statistics.median(durations["single"]) if durations["single"] else 1.0
        return [spec], tag, rng.uniform(0, 1.1 * full), None, "single, killed at a random time"
    incident = f"INC-T{trial}R"
    base = {**common, "incident": incident}
    flipper = {**base, "tag": f"t{trial}f", "role": "flipper", "role_kind": "flipper", "rng": f"{seed}-{trial}-f",
               "commands": rng.randint(4, 12), "slow_write": rng.choice([0.01, 0.03, 0.06])}
    resolver = {**base, "tag": f"t{trial}r", "role": "resolver", "role_kind": "resolver", "rng": f"{seed}-{trial}-r",
                "commands": rng.randint(0, 6)}
    resume = {**base, "tag": f"t{trial}m", "role": "resume", "role_kind": "resume", "rng": f"{seed}-{trial}-m",
              "slow_read": rng.choice([0.0, 0.005, 0.02])}
    specs = [flipper, resolver, resume]
    r = rng.random()
    full = statistics.median(durations["race"]) if durations["race"] else 0.8
    if r < 0.4:
        flipper.update(stop_at=rng.randint(1, 8), phase=rng.choice(["before", "after"]))
        return specs, flipper["tag"], None, resume["tag"], "race, flipper stopped at a flag write and killed"
    if r < 0.7:
        return specs, flipper["tag"], rng.uniform(0, 1.1 * full), resume["tag"], "race, flipper killed at a random time"
    if r < 0.92:
        return (specs, resolver["tag"], rng.uniform(0, 1.1 * full), resume["tag"],
                "race, resolver killed at a random time")
    return specs, None, None, resume["tag"], "race, only resume killed (at the end)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    opts = parser.parse_args()

    from runbook.catalog import load
    from runbook.engine import Engine, SystemClock

    tmp = Path(tempfile.mkdtemp(prefix="runbook-stress-"))
    started = time.monotonic()
    catalog_dir = tmp / "catalog"
    catalog_dir.mkdir()
    (catalog_dir / "policies.yaml").write_text(SEVERITY_AND_ESCALATION)
    (catalog_dir / "stress.yaml").write_text(PLAYBOOK)
    db, flags = str(tmp / "db.sqlite"), str(tmp / "flags.json")
    catalog = load([str(catalog_dir)])
    checker = Checker(db, flags, catalog)
    for flag, value in INITIAL.items():
        checker.host.set_flag(flag, value)
    zyg = Zygote(tmp)
    rng = random.Random(opts.seed)
    durations = {"single": [], "race": []}
    kinds, points, settled, refused, errors = Counter(), Counter(), Counter(), 0, []
    kills = 0
    try:
        for trial in range(opts.trials):
            specs, victim, kill_at, stop_last, kind = plan_trial(rng, trial, opts.seed, durations)
            for spec in specs:
                spec.update(db=db, flags=flags, catalog=str(catalog_dir))
            if specs[0]["role_kind"] != "single":
                with_clock = Engine(checker.store, SystemClock(), checker.host, catalog)
                with_clock.open(PLAYBOOK_ID, "opener", incident=specs[0]["incident"])
            kinds[kind] += 1
            t0 = time.monotonic()
            kill_begin = kill_at if isinstance(kill_at, tuple) else None
            runs = run_trial(zyg, specs, victim, None if kill_begin else kill_at, stop_last, kill_begin)
            if victim is None or not runs[victim].killed:
                durations["race" if stop_last else "single"].append(time.monotonic() - t0)
            for spec in specs:
                if "incident" in spec:  # race workers share the incident the parent opened
                    runs[spec["tag"]].incidents = [spec["incident"]]
            for r in runs.values():
                refused += r.refused
                settled.update(r.settled)
                errors += [f"trial {trial} {r.tag}: {e}" for e in r.errors]
                if r.killed:
                    if r.tag == stop_last:
                        points[f"resume loop: {r.kill_point} (stopped at the end)"] += 1
                    else:
                        kills += 1
                        points[r.kill_point] += 1
            checker.check(trial, runs)
            if (trial + 1) % 25 == 0:
                f = checker.figures
                print(f"  {trial + 1} trials, {kills} kills, {f['events']} events; lost {f['lost']}, duplicated "
                      f"{f['duplicated']}, chain breaks {f['chain breaks']}, left degraded {f['left degraded']} "
                      f"({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        zyg.close()
        checker.store.close()
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    wall = time.monotonic() - started
    f = checker.figures
    print()
    print(f"trials: {opts.trials} (seed {opts.seed})")
    for k, n in sorted(kinds.items()):
        print(f"  {k}: {n}")
    print(f"kills (kill -9 of a command worker): {kills}")
    print("kill points by command kind:")
    for k, n in sorted(points.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {k}: {n}")
    print(f"incidents: {f['incidents']}, events: {f['events']}, acknowledged commands: {f['acknowledged']}, "
          f"refused commands: {refused}")
    print(f"resolved by the check: {f['resolved by the check']}; settled intents: by a racing resolve "
          f"{settled['resolve']}, by resume {settled['resume']}, by the check's resolve "
          f"{f['settled by resolve (check)']} (in {f['resolves that settled (check)']} resolves); "
          f"orphaned actions settled {f['actions settled (check)']}")
    print(f"incidents a fresh process read from a checkpoint: {f['checkpoints read']} of {f['incidents']}")
    print()
    print("| figure | count |")
    print("|---|---|")
    for name in ("lost", "duplicated", "chain breaks", "left degraded"):
        label = {"lost": "lost events", "duplicated": "duplicated events",
                 "left degraded": "flags left degraded after resolve"}.get(name, name)
        print(f"| {label} | **{f[name]}** |")
    print(f"| wall time | {wall:.0f} s |")
    if errors:
        print(f"\nworker errors ({len(errors)}):")
        for e in errors[:20]:
            print("  " + e[:1500])
    if checker.problems:
        print("\nproblems:")
        for p in checker.problems:
            print("  " + p)
    return 1 if any(f[n] for n in ("lost", "duplicated", "chain breaks", "left degraded")) or errors else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "zygote":
        zygote()
    else:
        sys.exit(main())
