"""Alert intake while a tick waits on a slow Prometheus, beside the same intake while idle.

Two `runbook serve` processes on databases of their own, the same catalog, the same alerts:

- slow: one open incident holds a staged degradation whose check runs every second against a
  fake Prometheus (in this process) that takes SLOW seconds (8) to answer each query, so the
  server's timer pass is nearly always inside a query;
- idle (the peer): no incident, nothing to tick.

One client posts new alerts (each opens an incident) to each server one at a time, alternating
blocks A B A B, and times each answer. p50/p99 per server, the ratio, and how many of the slow
server's alerts were answered while a query was in flight (the case that matters).

    .venv/bin/python benchmarks/intake_lanes.py [--alerts 200] [--rounds 4] [--slow 8]
    PYTHONPATH=/tmp/old/src .venv/bin/python benchmarks/intake_lanes.py   # an older tree's server
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from intake import CATALOG, TOKEN, percentile, round_trips, start, stop

ROOT = Path(__file__).resolve().parent.parent

STAGED = """apiVersion: runbook/v1
kind: Playbook
id: bench-staged
title: Staged degradation under a slow Prometheus
service: bench
severity: SEV2
escalation: rtc-default
symptoms:
  - id: slow
    summary: Benchmark only
    match: {labels: {alertname: BenchStaged}}
degradations:
  fallback:
    summary: Fall back
    set: {bench.feature: false}
    restore: {bench.feature: true}
    rollout:
      by: userId
      stages: [10, 50, 100]
      hold: 1h
      check_every: 1s
      checks:
        - name: drops
          prometheus:
            query: bench_drop_ratio
            expect: "< 0.02"
steps:
  - Watch it
"""


class SlowPrometheus(ThreadingHTTPServer):
    """Answers every query after `delay` seconds; counts the queries in flight."""

    daemon_threads = True

    def __init__(self, delay: float):
        self.delay, self.in_flight, self.answered = delay, 0, 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)

    def busy(self) -> bool:
        with self.lock:
            return self.in_flight > 0


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        server: SlowPrometheus = self.server
        with server.lock:
            server.in_flight += 1
        try:
            time.sleep(server.delay)
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [time.time(), "0.001"]}]}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1
                server.answered += 1

    def log_message(self, *args):
        pass


def prepare_staged(db: Path, catalog: list[str], flags: Path) -> None:
    """An incident with the staged degradation applied, as a responder would have left it."""
    from runbook import flagd
    from runbook.catalog.loader import load_catalog
    from runbook.engine import Engine, SystemClock
    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.store import Store

    data = flagd.empty()
    flagd.set_value(data, "bench.feature", True)
    data["flags"]["bench.feature"].pop("metadata")
    flagd.write_atomic(str(flags), data)
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
    store = Store(str(db), key=None)
    engine = Engine(store, SystemClock(), host, load_catalog(catalog))
    incident = engine.open("bench-staged", "bench").id
    engine.degrade(incident, "bench", "fallback")
    engine.close()
    store.close()


def server(tmp: Path, name: str, catalog: list[str], env: dict) -> tuple:
    db = tmp / f"{name}.db"
    env = {**os.environ, "RUNBOOK_DB": str(db), "RUNBOOK_SERVE_TOKEN": TOKEN, "HOME": str(tmp),
           "RUNBOOK_PLUGINS_DIR": str(tmp / "none"), "XDG_CACHE_HOME": str(tmp / "cache"), **env}
    argv = [sys.executable, "-m", "runbook", *[word for c in catalog for word in ("--catalog", c)], "serve",
            "--port", "0", "--log-level", "warning"]
    proc, port = start(argv, env, tmp / f"{name}.log")
    return proc, port, db


def timed(port: int, count: int, offset: int, prometheus: SlowPrometheus | None) -> list[tuple[float, bool]]:
    """(seconds, whether a slow query was in flight when the alert was posted) per alert."""
    out = []
    for n in range(offset, offset + count):
        busy = prometheus.busy() if prometheus else False
        out.append((round_trips(port, 1, n)[0], busy))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=200, help="alerts per server")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--slow", type=float, default=8.0, help="seconds Prometheus takes per query")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="runbook-lanes-bench-"))
    (tmp / "staged").mkdir()
    (tmp / "staged" / "bench-staged.yaml").write_text(STAGED)
    catalog = [*CATALOG, str(tmp / "staged")]
    prometheus = SlowPrometheus(args.slow)
    threading.Thread(target=prometheus.serve_forever, daemon=True).start()
    flags = tmp / "flags.json"
    prepare_staged(tmp / "slow.db", catalog, flags)
    env = {"RUNBOOK_FLAGS": str(flags), "RUNBOOK_PROMETHEUS_URL": f"http://127.0.0.1:{prometheus.server_port}"}
    slow, slow_port, slow_db = server(tmp, "slow", catalog, env)
    idle, idle_port, _ = server(tmp, "idle", catalog, {"RUNBOOK_FLAGS": str(tmp / "idle-flags.json")})
    try:
        deadline = time.monotonic() + 30
        while not prometheus.busy():  # the slow server's timer pass is inside its first query
            if time.monotonic() > deadline:
                sys.exit("the slow server never queried Prometheus")
            time.sleep(0.05)
        round_trips(idle_port, 10, 90_000_000)  # warm-up
        a, b = [], []
        per = args.alerts // args.rounds
        for r in range(args.rounds):  # A B A B
            a += timed(slow_port, per, 1_000_000 + r * per, prometheus)
            b += timed(idle_port, per, 2_000_000 + r * per, None)
        queries = prometheus.answered
    finally:
        stop(slow)
        stop(idle)
        prometheus.shutdown()
    from runbook.store import Store

    with Store(str(slow_db), key=None) as store:
        ledger = store.alerts()
    assert len(ledger) == len(a), "an alert posted to the slow server is not in its ledger"
    slow_all = [t for t, _ in a]
    during = [t for t, busy in a if busy]
    idle_all = [t for t, _ in b]

    def line(name, values):
        return (f"  {name:<34} n={len(values):4d}  p50 {percentile(values, 50) * 1000:8.2f} ms  "
                f"p99 {percentile(values, 99) * 1000:8.2f} ms  max {max(values) * 1000:8.2f} ms")
    print(f"intake latency, alert posted -> answered ({args.rounds} rounds A B A B; Prometheus {args.slow:g}s "
          f"per query, {queries} queries answered meanwhile):")
    print(line("slow Prometheus (all alerts)", slow_all))
    if during:
        print(line("slow Prometheus (query in flight)", during))
    print(line("idle (peer)", idle_all))
    print(f"  ratio p50 {percentile(slow_all, 50) / percentile(idle_all, 50):.2f}x   "
          f"p99 {percentile(slow_all, 99) / percentile(idle_all, 99):.2f}x   (goal: p99 under 50 ms, as idle)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
