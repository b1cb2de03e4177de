"""What a misbehaving event observer costs a command, against the same command without one.

    .venv/bin/python benchmarks/observers.py [--runs 21] [--grace SECONDS]

`runbook incident note ID TEXT` as a fresh process, in rounds that alternate three plugin
directories, each with its own incident:
  A  no observer plugin (the floor),
  B  an observer whose event_appended never returns,
  C  an observer whose event_appended raises.
Prints the medians and the ratios B/A (the goal: <= 1.2) and C/A, each the median of the
per-round ratios, then checks that B and C left their plugin_error records in the timeline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Python's default: compiled modules cached as bytecode, as a pip install leaves them (see the
# README); the warm-up run fills that cache. The children run this checkout's sources.
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "RUNBOOK_LOAD_PLUGINS",
                                                        "RUNBOOK_OBSERVER_GRACE", "RUNBOOK_CATALOG")}
ENV["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))

PLUGINS = {
    "A": None,
    "B": '''import threading
from runbook.pluginapi import hookimpl

@hookimpl
def event_appended(settings, event):
    threading.Event().wait()  # never returns
''',
    "C": '''from runbook.pluginapi import hookimpl

@hookimpl
def event_appended(settings, event):
    raise RuntimeError("observer broke")
''',
}


def runbook(args, directory: Path, variant: str) -> tuple[float, str]:
    env = {**ENV, "RUNBOOK_DB": str(directory / "runbook.db"), "RUNBOOK_FLAGS": str(directory / "flags.json"),
           "RUNBOOK_PLUGINS_DIR": str(directory / variant), "RUNBOOK_USER": "bench"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "runbook", *args], cwd=directory, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"runbook {' '.join(args)} failed: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return elapsed, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="rounds of A, B, C (default 21)")
    parser.add_argument("--grace", help="RUNBOOK_OBSERVER_GRACE for the children (default: runbook's)")
    args = parser.parse_args()
    if args.grace is not None:
        ENV["RUNBOOK_OBSERVER_GRACE"] = args.grace
    with tempfile.TemporaryDirectory(prefix="runbook-bench-observers-") as tmp:
        directory = Path(tmp)
        incidents = {}
        for variant, source in PLUGINS.items():
            (directory / variant).mkdir()
            if source:
                (directory / variant / "observer.py").write_text(source)
            _, out = runbook(["--catalog", str(ROOT / "playbooks"), "incident", "open", "gifts-feature-failing"],
                             directory, variant)
            incidents[variant] = out.strip()
            runbook(["incident", "note", incidents[variant], "warm-up"], directory, variant)
        times = {variant: [] for variant in PLUGINS}
        for n in range(args.runs):
            for variant in PLUGINS:
                times[variant].append(runbook(["incident", "note", incidents[variant], f"note {n}"],
                                              directory, variant)[0])
        median = {variant: statistics.median(values) for variant, values in times.items()}
        grace = f", observer grace {args.grace} s" if args.grace is not None else ""
        print(f"runbook incident note, fresh processes, {args.runs} alternating rounds{grace}")
        for variant, label in (("A", "no observer"), ("B", "observer that never returns"),
                               ("C", "observer that raises")):
            print(f"  {variant}  {label:<28} median {median[variant] * 1000:6.1f} ms")
        for variant in ("B", "C"):
            ratios = sorted(b / a for a, b in zip(times["A"], times[variant]))
            q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
            goal = "  (goal <= 1.2: " + ("met" if statistics.median(ratios) <= 1.2 else "NOT met") + ")" \
                if variant == "B" else ""
            print(f"  {variant}/A  {statistics.median(ratios):.2f} (quartiles {q1:.2f}-{q3:.2f}){goal}")
        for variant in ("B", "C"):
            _, out = runbook(["incident", "show", incidents[variant], "--json"], directory, variant)
            records = [e["data"]["message"] for e in json.loads(out)["events"]
                       if e["type"] == "plugin_error" and e["data"]["hook"] == "event_appended"]
            print(f"  {variant}: {len(records)} observer failures in the timeline, e.g. {records[-1]!r}")


if __name__ == "__main__":
    main()
