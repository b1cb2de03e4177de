"""Worker processes for tests/test_engine_durability.py (run with sys.executable, never imported by pytest).

    durability_child.py work '<json>'    one worker: issue commands until killed
    durability_child.py zygote           import runbook once, then fork one worker per JSON line on stdin
    durability_child.py notes '<json>'   concurrent writer: "ready", wait for "go" on stdin, N notes,
                                         "finished <conflicts retried>"

Every line goes to stdout with a single flushed write (shorter than PIPE_BUF, so lines from a
worker and its zygote never interleave inside a line). A worker prints "pid <pid>" first, then
"done <seq> <what>" after each command returned, seq being the last event of that command.

The zygote exists for speed: importing runbook costs about half a second, and the kill -9
test runs dozens of workers. Each forked worker opens its own database connection and plugin
host after the fork, so it is an independent process as far as SQLite and the flag file go; the
zygote itself never touches the database. It reaps each worker and prints "reaped <pid> <status>".

Crash points: with "stop_at" = M, the worker wraps the plugin host's set_flag/restore_flag and,
at the M-th flag call, prints "phase <before|after>-flag ..." and stops itself (SIGSTOP), so the
parent's SIGKILL lands exactly between a recorded intent and its result, deterministically.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback

DEGRADATIONS = ("low-bitrate", "audio-only")
PLAYBOOK = "video-call-degraded"


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _runbook():
    from runbook.engine import Engine, SystemClock
    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.store import open_store
    return Engine, SystemClock, PluginHost, Settings, open_store


def _install_crash_point(host, stop_at: int, phase: str) -> None:
    calls = {"n": 0}

    def wrap(name):
        real = getattr(host, name)

        def wrapper(flag, *args, **kwargs):
            calls["n"] += 1
            hit = calls["n"] == stop_at
            if hit and phase == "before":
                emit(f"phase before-flag {name} {flag}")
                os.kill(os.getpid(), signal.SIGSTOP)
            result = real(flag, *args, **kwargs)
            if hit and phase == "after":
                emit(f"phase after-flag {name} {flag}")
                os.kill(os.getpid(), signal.SIGSTOP)
            return result
        setattr(host, name, wrapper)

    wrap("set_flag")
    wrap("restore_flag")


def work(args: dict) -> None:
    """Open or reuse the incident, then: note, note, flip a degradation, note, note, flip the other..."""
    emit(f"pid {os.getpid()}")
    Engine, SystemClock, PluginHost, Settings, open_store = _runbook()
    store = open_store(args["db"])
    host = PluginHost(Settings(flags_file=args["flags"], plugins_dir=None), entry_points=False)
    if args.get("stop_at"):
        _install_crash_point(host, args["stop_at"], args["phase"])
    incident, trial, actor = args["incident"], args["trial"], f"chaos-{args['trial']}"
    catalog = None
    if store.incident(incident) is None:
        from runbook.catalog import load
        catalog = load([args["playbooks"]])
    engine = Engine(store, SystemClock(), host, catalog)
    if catalog is not None:
        state = engine.open(PLAYBOOK, actor, incident=incident)
        emit(f"done {state.last_seq} open")
    for i in range(args["commands"]):
        if i % 3 == 2:
            name = DEGRADATIONS[(i // 3) % 2]
            deg = engine.state(incident).degradations[name]
            if deg.applied:
                events = engine.restore(incident, actor, name)
                what = f"restore:{name}"
            else:
                events = engine.degrade(incident, actor, name)
                what = f"degrade:{name}"
        elif i == 4 and engine.state(incident).acknowledged_at is None:
            events = engine.acknowledge(incident, actor)
            what = "acknowledge"
        else:
            text = f"t{trial}-c{i}"
            events = engine.note(incident, actor, text)
            what = f"note:{text}"
        emit(f"done {events[-1].seq} {what}")


def notes(args: dict) -> None:
    Engine, SystemClock, _PluginHost, _Settings, open_store = _runbook()
    from runbook.store import ConflictError
    store = open_store(args["db"])
    conflicts = [0]
    real_append = store.append

    def append(*a, **kw):  # count the optimistic-concurrency retries the engine makes
        try:
            return real_append(*a, **kw)
        except ConflictError:
            conflicts[0] += 1
            raise
    store.append = append
    engine = Engine(store, SystemClock(), None, None)
    incident, who = args["incident"], args["writer"]
    engine.state(incident)  # warm: the first command must not pay for the snapshot load
    emit("ready")
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected 'go'")
    for k in range(args["count"]):
        text = f"{who}-{k}"
        events = engine.note(incident, who, text)
        emit(f"done {events[-1].seq} note:{text}")
    emit(f"finished {conflicts[0]}")


def zygote() -> None:
    _runbook()  # import once; forked workers inherit the loaded modules
    import runbook.catalog  # noqa: F401  (the first trial opens the incident)
    emit("zygote ready")
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        args = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                work(args)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        emit(f"reaped {pid} {status}")


def main() -> None:
    mode = sys.argv[1]
    if mode == "zygote":
        zygote()
    elif mode == "work":
        work(json.loads(sys.argv[2]))
    elif mode == "notes":
        notes(json.loads(sys.argv[2]))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
