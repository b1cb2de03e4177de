"""Simulated drills: how many per second, and a 20-step automated drill against Chaos Toolkit.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/drills.py [--runs 10000]

1. `runbook drill run DRILL --auto --runs N` for each shipped drill, as a fresh process:
   simulated runs per second (the goal: 10,000 runs of a shipped drill in under 10 s).
2. An automated drill of a generated 20-step playbook (one simulated run) against `chaos run`
   of an equivalent experiment with 20 activities (probes that run `true`), each a fresh
   process, as a ratio (the goal: runbook faster than Chaos Toolkit).
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


def timed(cmd, cwd, env=None, repeat=3) -> float:
    env = env or ENV
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
        runs.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"{cmd[0]} failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return statistics.median(runs)


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
    activities = [{"type": "probe", "name": f"step-{i}", "provider": {"type": "process", "path": "true"}}
                  for i in range(1, 21)]
    (directory / "experiment.json").write_text(json.dumps({
        "version": "1.0.0", "title": "Twenty activities", "description": "Equivalent of a 20-step drill",
        "steady-state-hypothesis": {"title": "always", "probes": []}, "method": activities, "rollbacks": []}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(f"1. simulated runs, {args.runs:,} per drill, fresh process each")
        for drill in ("surprise-ack", "weekly-audio-fallback", "escalation-stress"):
            seconds = timed([str(BIN / "runbook"), "--db", str(directory / "db.sqlite"), "drill", "run", drill,
                             "--auto", "--runs", str(args.runs), "--json"], ROOT, repeat=1)
            print(f"   {drill:<24} {seconds:6.1f} s  {args.runs / seconds:8,.0f} runs/s  "
                  f"(goal: {args.runs:,} in < 10 s: {'met' if seconds < 10 else 'not met'})")
        twenty_steps(directory)
        chaos = shutil.which("chaos", path=str(BIN)) or shutil.which("chaos")
        if chaos is None:
            print("2. chaos (Chaos Toolkit) is not installed: .venv/bin/pip install -e '.[bench]'")
            return
        ours_cmd = [str(BIN / "runbook"), "--catalog", str(directory / "catalog"), "--db", str(directory / "db2.sqlite"),
                    "drill", "run", "twenty-drill", "--auto", "--runs", "1"]
        theirs_cmd = [chaos, "--no-log-file", "run", str(directory / "experiment.json")]
        timed(ours_cmd, directory, repeat=1)  # warm: first start writes caches (bytecode, schema cache)
        timed(theirs_cmd, directory, repeat=1)
        mine, others = [], []
        for _ in range(9):  # alternate, so both see the same machine load
            mine.append(timed(ours_cmd, directory, repeat=1))
            others.append(timed(theirs_cmd, directory, repeat=1))
        ours, theirs = statistics.median(mine), statistics.median(others)
        print("2. a 20-step automated drill vs a 20-activity Chaos Toolkit experiment (median of 9, alternating)")
        print(f"   runbook drill run --auto --runs 1 : {ours:6.2f} s")
        print(f"   chaos run                         : {theirs:6.2f} s")
        print(f"   ratio runbook / chaos             : {ours / theirs:6.2f}  (goal < 1)")


if __name__ == "__main__":
    main()
