"""What firing timers under the incident lease costs a face, against the same work unleased.

Two measures, each alternating A (leased, as every face now ticks) and B (the same engine work
with no lease) round by round, on one SQLite file (or PostgreSQL with --postgres URL):

- one-shot: what `runbook incident tick` does in-process: a service on the command's engine,
  one tick of an incident with nothing due, the service closed (A: take the process lease, the
  incident's lease, end the lease at close);
- steady: the TUI's once-a-second tick of an incident it already holds (A: one remembered epoch,
  no extra statement when nothing is due).

    .venv/bin/python benchmarks/lease_faces.py --rounds 9 --ticks 200 [--postgres URL]

Prints medians in ms and the ratio A/B.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from runbook import flagd  # noqa: E402
from runbook.catalog.loader import load_catalog  # noqa: E402
from runbook.engine import Engine, SystemClock  # noqa: E402
from runbook.plugins import PluginHost  # noqa: E402
from runbook.service import EngineService  # noqa: E402
from runbook.settings import Settings  # noqa: E402
from runbook.store import open_store  # noqa: E402


def one_shot(location, host, catalog, incident, leased: bool) -> float:
    start = time.perf_counter()
    store = open_store(location, key=None)
    engine = Engine(store, SystemClock(), host, catalog)
    service = EngineService(engine, one_lane=True)
    if leased:
        service.lease_timers()
    service.command("tick", incident)
    service.close()
    store.close()
    return (time.perf_counter() - start) * 1000


def steady(service, incident, ticks: int) -> float:
    start = time.perf_counter()
    for _ in range(ticks):
        service.ticks.call(lambda engine: engine.tick(incident))
    return (time.perf_counter() - start) * 1000 / ticks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--ticks", type=int, default=200)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL (a fresh schema) instead of SQLite")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="runbook-bench-lease-"))
    location = args.postgres or str(folder / "db.sqlite")
    flags = folder / "flags.json"
    flagd.write_atomic(str(flags), flagd.empty())
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
    catalog = load_catalog([str(ROOT / "playbooks")])
    opener = Engine(open_store(location, key=None), SystemClock(), host, catalog)
    incident = opener.open("stickers-not-loading", "bench").id  # SEV4: nothing pages, nothing due
    opener.tick(incident)
    services = {}
    for leased in (True, False):
        services[leased] = EngineService(Engine(open_store(location, key=None), SystemClock(), host, catalog))
        if leased:
            services[leased].lease_timers()
        steady(services[leased], incident, 5)  # warm: the fold, the lease taken
    shots, ticks = {True: [], False: []}, {True: [], False: []}
    for _ in range(args.rounds):
        for leased in (True, False):  # A B A B
            shots[leased].append(one_shot(location, host, catalog, incident, leased))
            ticks[leased].append(steady(services[leased], incident, args.ticks))
    for service in services.values():
        service.close()
    for name, data in (("one-shot tick (ms)", shots), ("steady tick (ms)", ticks)):
        a, b = statistics.median(data[True]), statistics.median(data[False])
        ratios = [x / y for x, y in zip(data[True], data[False], strict=True)]
        print(f"{name}: leased {a:.3f}, unleased {b:.3f}, ratio {a / b:.2f} "
              f"(per round {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
