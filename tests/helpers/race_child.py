"""A responder's process for tests/test_degradation_races.py (run with sys.executable).

    race_child.py degrade '<json>'   degrade a degradation; at the Nth flag write (after it),
                                     print "stopped <pid>" and stop (SIGSTOP) until killed
    race_child.py run '<json>'       run the current step's action; print "running <pid>" once the
                                     action's intent is recorded

The fault injection is a plugin wrapper around the host's flag writes: the process dies exactly
between two flag writes of one degradation when the parent SIGKILLs it.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def engine(args: dict):
    from runbook.catalog import load
    from runbook.engine import Engine, SystemClock
    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.store import Store

    host = PluginHost(Settings(flags_file=args["flags"], plugins_dir=None), entry_points=False)
    return Engine(Store(args["db"]), SystemClock(), host, load([args["catalog"]]))


def degrade(args: dict) -> None:
    eng = engine(args)
    real, writes = eng.plugins.set_flag, [0]

    def set_flag(name, *a, **kw):
        result = real(name, *a, **kw)
        writes[0] += 1
        if writes[0] == args["stop_at"]:
            emit(f"stopped {os.getpid()}")
            os.kill(os.getpid(), signal.SIGSTOP)
        return result
    eng.plugins.set_flag = set_flag
    eng.degrade(args["incident"], args["actor"], args["degradation"])
    emit("finished")


def run(args: dict) -> None:
    eng = engine(args)
    real = eng.plugins.run_action

    def run_action(request):
        emit(f"running {os.getpid()}")
        return real(request)
    eng.plugins.run_action = run_action
    eng.run(args["incident"], args["actor"])
    emit("finished")


if __name__ == "__main__":
    {"degrade": degrade, "run": run}[sys.argv[1]](json.loads(sys.argv[2]))
