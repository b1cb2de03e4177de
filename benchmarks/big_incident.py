"""A 100,000-event incident against a 100-event one, in fresh processes, alternating.

    .venv/bin/python benchmarks/big_incident.py [--events 100000] [--rounds 9] [--size 80x24]

One database holds both incidents, on the shipped `video-call-degraded` playbook, their events
appended through `Store.append` (notes, and a reminder every tenth event; 1,000 per call) as
`benchmarks/engine_store.py` builds its long incident. Then:

1. the first `runbook incident show BIG`: no checkpoint exists yet, so it folds every event (the
   cost of every open before checkpoints) and writes one;
2. `runbook incident show SMALL` (A) against `runbook incident show BIG` (B), fresh processes, A B
   A B, `--rounds` pairs: the wall time of the whole command as a person waits for it;
3. `runbook resume SMALL` against `runbook resume BIG` on a real pseudo-terminal: the time to the
   first bytes that show the incident id (`benchmarks/tui_pty.py`'s measure), alternating.

Ratios are of the medians, and the median of the per-pair ratios. Children run with bytecode
caching on (see benchmarks/README.md), after one warm-up of each.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine_store import build_long_incident  # noqa: E402
from tui_pty import run_in_pty  # noqa: E402

from runbook.catalog import load  # noqa: E402


def build(path: Path, catalog, total: int) -> str:
    # events a second apart, ending a minute ago (engine_store's builder, as its long incident)
    return build_long_incident(path, catalog, total, datetime.now(UTC) - timedelta(seconds=total + 60))


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0 or "WARNING" in proc.stderr:
        raise RuntimeError(f"{' '.join(argv[3:])}: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return took


def report(name: str, a: list[float], b: list[float], goal: float) -> None:
    pairs = statistics.median(y / x for x, y in zip(a, b))
    print(f"  {name}")
    print(f"    100 events      median {statistics.median(a) * 1000:6.0f} ms  (min {min(a) * 1000:.0f}, "
          f"max {max(a) * 1000:.0f})")
    print(f"    big incident    median {statistics.median(b) * 1000:6.0f} ms  (min {min(b) * 1000:.0f}, "
          f"max {max(b) * 1000:.0f})")
    print(f"    ratio of medians {statistics.median(b) / statistics.median(a):.2f}, median of pair ratios "
          f"{pairs:.2f}   (goal <= {goal})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--size", default="80x24")
    args = parser.parse_args()
    size = tuple(int(n) for n in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="runbook-big-incident-"))
    catalog = load([str(ROOT / "playbooks")])
    db = tmp / "db.sqlite"
    started = time.perf_counter()
    small = build(db, catalog, 100)
    big = build(db, catalog, args.events)
    print(f"built {small} (100 events) and {big} ({args.events:,} events) in {time.perf_counter() - started:.1f} s")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "COLUMNS", "LINES")}
    env.update(RUNBOOK_DB=str(db), HOME=str(tmp), TERM="xterm-256color", RUNBOOK_FLAGS=str(tmp / "flags.json"),
               XDG_CACHE_HOME=str(tmp / "cache"), RUNBOOK_USER="bench")
    show = [sys.executable, "-m", "runbook", "--catalog", str(ROOT / "playbooks"), "incident", "show"]
    first = timed(show + [big], env)
    print(f"1. first `incident show` of the big incident (no checkpoint yet: folds every event, writes one): "
          f"{first * 1000:.0f} ms")
    timed(show + [small], env)
    a, b = [], []
    for _ in range(args.rounds):
        a.append(timed(show + [small], env))
        b.append(timed(show + [big], env))
    print(f"2. `runbook incident show`, fresh processes, {args.rounds} alternating pairs:")
    report("whole command", a, b, 1.5)

    resume = [sys.executable, "-m", "runbook", "--catalog", str(ROOT / "playbooks"), "resume"]
    for incident in (small, big):  # warm-up
        run_in_pty(resume + [incident], env, incident.encode(), size)
    a, b = [], []
    for _ in range(args.rounds):
        a.append(run_in_pty(resume + [small], env, small.encode(), size))
        b.append(run_in_pty(resume + [big], env, big.encode(), size))
    print(f"3. `runbook resume`, first frame holding the incident id on a {size[0]}x{size[1]} pty, "
          f"{args.rounds} alternating pairs:")
    report("first frame", a, b, 1.5)


if __name__ == "__main__":
    main()
