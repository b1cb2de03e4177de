"""Simulated drills: the plan against the engine, and a 20-step automated drill against Chaos Toolkit.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/drills.py [--pairs 3] [--chaos-runs 9]

1. For each shipped drill, A: `runbook drill run DRILL --auto --runs 100000` (the default: the
   drill compiled into a plan, the runs drawn at once) against B: `... --runs 10000 --exact`
   (every run through the engine), each a fresh process, alternating A B A B: the ratio of the
   medians (the goal: 100,000 runs in no more time than 10,000 through the engine, <= 1.0).
2. An automated drill of a generated 20-step playbook (one simulated run) against `chaos run`
   of an experiment with 20 activities, each a fresh process, alternating: once against probes
   that run `true` (Chaos Toolkit spawns 20 processes, runbook none), once against probes that
   call a Python function in-process (the same work on both sides: 20 activities that do
   nothing). The goal: runbook faster than Chaos Toolkit.

runbook runs from this checkout (`python -m runbook` with its src/ first on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


# Python's default: compiled modules are cached as bytecode, as a pip install leaves them (some
# sandboxes set PYTHONDONTWRITEBYTECODE, which would recompile runbook on every start while
# Chaos Toolkit, installed by pip, keeps its bytecode). The warm-up runs fill that cache.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
RUNBOOK = [sys.executable, "-m", "runbook"]
DRILLS = ("surprise-ack", "weekly-audio-fallback", "escalation-stress")


def timed(cmd, cwd, env=None) -> tuple[float, str]:
    """Wall time of one fresh process, and its output."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env or ENV)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return seconds, proc.stdout


def alternate(a, b, cwd, pairs: int) -> tuple[list[float], list[float], str]:
    """A B A B ... after one warm-up of each (the first start writes bytecode and schema caches)."""
    timed(a, cwd)
    timed(b, cwd)
    a_times, b_times, output = [], [], ""
    for _ in range(pairs):
        seconds, output = timed(a, cwd)
        a_times.append(seconds)
        b_times.append(timed(b, cwd)[0])
    return a_times, b_times, output


def twenty_steps(directory: Path) -> None:
    catalog = directory / "catalog"
    catalog.mkdir()
    for name in ("severity.yaml", "escalation-rtc-default.yaml", "roster.yaml"):
        shutil.copy(ROOT / "playbooks" / name, catalog / name)
    steps = "\n".join(f"  - {{id: s{i}, title: Step {i}}}" for i in range(1, 21))
    (catalog / "twenty.yaml").write_text(f"""apiVersion: runbook/v1
kind: Playbook
id: twenty
title: Twenty steps
service: rtc-video
severity: SEV2
escalation: rtc-default
symptoms: [{{id: s, summary: Something}}]
steps:
{steps}
""")
    (catalog / "twenty-drill.yaml").write_text("""apiVersion: runbook/v1
kind: Drill
id: twenty-drill
title: Twenty automated steps
playbook: twenty
responders:
  levels: [{answer: 1.0, ack: {distribution: fixed, mean: 30s}}]
  steps: {default: {distribution: fixed, mean: 10s}}
""")
    for name, provider in (("process", {"type": "process", "path": "true"}),
                           ("python", {"type": "python", "module": "os", "func": "getcwd"})):
        activities = [{"type": "probe", "name": f"step-{i}", "provider": provider} for i in range(1, 21)]
        (directory / f"experiment-{name}.json").write_text(json.dumps({
            "version": "1.0.0", "title": "Twenty activities", "description": "Equivalent of a 20-step drill",
            "steady-state-hypothesis": {"title": "always", "probes": []}, "method": activities, "rollbacks": []}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="A B rounds per drill")
    parser.add_argument("--chaos-runs", type=int, default=9, help="A B rounds against chaos run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(f"1. 100,000 runs on the plan (A) vs 10,000 through the engine (B), fresh processes, "
              f"A B alternating, {args.pairs} pairs")
        ratios = []
        for drill in DRILLS:
            base = [*RUNBOOK, "--db", str(directory / "db.sqlite"), "drill", "run", drill, "--auto", "--json"]
            fast, exact, output = alternate([*base, "--runs", "100000"], [*base, "--runs", "10000", "--exact"], ROOT,
                                            args.pairs)
            method = json.loads(output)["method"]
            a, b = statistics.median(fast), statistics.median(exact)
            ratios.append(a / b)
            print(f"   {drill:<24} A {a:6.2f} s ({method})  B {b:6.2f} s  ratio {a / b:5.2f}  "
                  f"(A {', '.join(f'{t:.2f}' for t in fast)}; B {', '.join(f'{t:.2f}' for t in exact)})")
        print(f"   worst ratio {max(ratios):.2f} (goal <= 1.0: {'met' if max(ratios) <= 1.0 else 'not met'})")
        twenty_steps(directory)
        chaos = shutil.which("chaos", path=str(BIN)) or shutil.which("chaos")
        if chaos is None:
            print("2. chaos (Chaos Toolkit) is not installed: .venv/bin/pip install -e '.[bench]'")
            return
        # both as their console scripts, as a user starts them (`python -m` adds runpy's ~4 ms)
        script = shutil.which("runbook", path=str(BIN))
        ours = [*([script] if script else RUNBOOK), "--catalog", str(directory / "catalog"), "--db",
                str(directory / "db2.sqlite"), "drill", "run", "twenty-drill", "--auto", "--runs", "1"]
        print(f"2. a 20-step automated drill vs a 20-activity Chaos Toolkit experiment "
              f"(median of {args.chaos_runs}, alternating)")
        for name, what in (("process", "probes that run `true` (chaos spawns 20 processes, runbook none)"),
                           ("python", "probes calling os.getcwd in-process (the same work on both sides)")):
            theirs = [chaos, "--no-log-file", "run", str(directory / f"experiment-{name}.json")]
            mine, others, _ = alternate(ours, theirs, directory, args.chaos_runs)
            a, b = statistics.median(mine), statistics.median(others)
            print(f"   vs {what}:")
            print(f"      runbook drill run --auto --runs 1 {a:6.2f} s, chaos run {b:6.2f} s, "
                  f"ratio {a / b:5.2f} (goal < 1)")


if __name__ == "__main__":
    main()
