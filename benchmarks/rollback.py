"""Breach to rollback: from a metric going wrong to the staged degradation's rollback in the flag file.

End to end with real processes: a metrics exporter (a thread here) serving `bench_error_ratio`,
a real Prometheus (Debian's package, on loopback, fresh data dir) scraping it every second, and
a real `runbook serve` (`--tick 0.1`) whose timer pass runs the stage checks of open incidents.
The playbook's degradation is staged (`stages: [10, 100]`, `hold: 1h`, `check_every: 1s`, one
check `bench_error_ratio < 0.02`, `on_failure: restore`). Each run waits a random 0-1 s, opens
an incident and degrades with the CLI (so its checks fall at any phase of the scrapes), waits
until a check held and another random 0-1 s (so the breach lands at any phase of both cycles),
then flips the exporter from 0.001 to 0.05 (t0) and polls the flag file every 2 ms (stat, and
a read when it changed) until the fractional targeting is gone (t1).

The floor in the same run: a breach is seen only at Prometheus's next scrape (up to 1 s) and
then at the next stage check (up to check_every 1 s, plus up to one 0.1 s tick), so 2.1 s
bounds the sampling, and with uniform phases its mean is about half that. Beside it the pure
pieces: a bare instant query round trip to Prometheus, and a flag-file write
(`runbook.flagd.update`, what `runbook flags set` does). Each run is also split by what the
store and Prometheus recorded: t0 -> first scrape that saw the breach -> the failing check's
event -> the rollback's flag write seen in the file.

    PYTHONPATH=src .venv/bin/python benchmarks/rollback.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from prometheus_helpers import free_port  # noqa: E402

from runbook import flagd  # noqa: E402

TOKEN = "benchmark-rollback-token-0123456789"
FLAG = "bench.feature.enabled"
GOOD, BAD = 0.001, 0.05
SCRAPE, CHECK_EVERY, TICK = 1.0, 1.0, 0.1
RUNBOOK = [sys.executable, "-m", "runbook"]

PLAYBOOK = f"""\
apiVersion: runbook/v1
kind: Playbook
id: bench-rollback
title: Benchmark feature failing
service: bench
severity: SEV2
escalation: ladder
symptoms:
  - id: errors
    summary: Errors above 2%
steps:
  - Look at the error dashboards
degradations:
  feature-off:
    summary: Turn the benchmark feature off
    set: {{{FLAG}: false}}
    restore: {{{FLAG}: true}}
    rollout:
      by: userId
      stages: [10, 100]
      hold: 1h
      check_every: {CHECK_EVERY:g}s
      checks:
        - name: errors
          prometheus: {{query: bench_error_ratio, expect: "< 0.02"}}
      on_failure: restore
"""

POLICIES = """\
apiVersion: runbook/v1
kind: SeverityPolicy
id: sev
levels:
  - {id: SEV1, title: Critical, targets: {acknowledge: 5m, mitigate: 30m, resolve: 2h}}
  - {id: SEV2, title: Major, targets: {acknowledge: 10m, mitigate: 1h, resolve: 4h}}
---
apiVersion: runbook/v1
kind: EscalationPolicy
id: ladder
repeat: 1
levels:
  - notify: [{rotation: primary}]
    escalate_after: 5m
---
apiVersion: runbook/v1
kind: Roster
id: team
timezone: UTC
people:
  - {id: ana, name: Ana}
rotations:
  - {id: primary, members: [ana], shift: 1d, start: "2026-01-05T00:00"}
"""


class Exporter:
    """`GET /metrics` in Prometheus text format: one gauge whose value the benchmark flips."""

    def __init__(self):
        self.value = GOOD
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = (f"# HELP bench_error_ratio Share of failing requests.\n# TYPE bench_error_ratio gauge\n"
                        f"bench_error_ratio {exporter.value}\n").encode()
                self.send_response(200 if self.path.startswith("/metrics") else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def wait_until(what: str, test, within: float, every: float = 0.05):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = test()
        if result:
            return result
        time.sleep(every)  # waiting on real processes to get somewhere, not part of a measured path
    sys.exit(f"gave up waiting: {what} (within {within}s)")


class Prometheus:
    def __init__(self, tmp: Path, target: str):
        config = tmp / "prometheus.yml"
        config.write_text(f"global: {{scrape_interval: {SCRAPE:g}s, scrape_timeout: {SCRAPE:g}s, "
                          f"evaluation_interval: 1m}}\n"
                          f"scrape_configs:\n  - job_name: bench\n    static_configs: [{{targets: ['{target}']}}]\n")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(tmp / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp / 'prometheus-data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until("prometheus ready", self._ready, 60, 0.1)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            sys.exit(f"prometheus exited with {self.process.returncode}; see {self.log.name}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def get(self, path: str, **params) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}?{urllib.parse.urlencode(params)}", timeout=5) as response:
            return json.load(response)

    def value(self) -> float | None:
        result = self.get("/api/v1/query", query="bench_error_ratio")["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def first_scrape_of(self, value: float, after: float) -> float | None:
        """When Prometheus first stored `value` at or after `after` (the scrape's timestamp)."""
        result = self.get("/api/v1/query", query="bench_error_ratio[60s]", time=f"{time.time():.3f}")["data"]["result"]
        for ts, v in result[0]["values"] if result else []:
            if ts >= after and float(v) == value:
                return ts
        return None

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def runbook(env: dict, *args: str) -> str:
    done = subprocess.run([*RUNBOOK, *args], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        sys.exit(f"runbook {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    return done.stdout


def start_serve(tmp: Path, env: dict) -> subprocess.Popen:
    log = tmp / "serve.log"
    proc = subprocess.Popen([*RUNBOOK, "serve", "--port", "0", "--tick", f"{TICK:g}", "--log-level", "info"],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))

    def listening():
        if proc.poll() is not None:
            sys.exit(f"runbook serve exited: {log.read_text()}")
        return "listening on" in log.read_text()

    wait_until("runbook serve listening", listening, 30)
    return proc


def events(db: Path, incident: str, kind: str) -> list[tuple[str, dict]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute("SELECT ts, data FROM events WHERE incident = ? AND type = ? ORDER BY seq",
                            [incident, kind]).fetchall()
    finally:
        conn.close()
    return [(ts, json.loads(data)) for ts, data in rows]


def epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def staged_in(path: Path) -> bool:
    flag = json.loads(path.read_text())["flags"][FLAG]
    return "fractional" in json.dumps(flag.get("targeting") or {})


def one_run(n: int, env: dict, db: Path, flags: Path, exporter: Exporter, prometheus: Prometheus) -> dict:
    exporter.value = GOOD
    wait_until("prometheus sees the good value", lambda: prometheus.value() == GOOD, 30)
    # that wait ends just after a scrape; without this the checks (due every check_every from the
    # degrade) would start at about the same phase of the scrapes in every run
    time.sleep(random.uniform(0, SCRAPE))
    incident = json.loads(runbook(env, "incident", "open", "bench-rollback", "--as", "bench", "--json"))["id"]
    runbook(env, "incident", "degrade", incident, "feature-off", "--as", "bench")
    if not staged_in(flags):
        sys.exit(f"run {n}: degrade did not write the fractional targeting")
    wait_until("a stage check that holds", lambda: any(
        r["outcome"] == "holds" for _, d in events(db, incident, "stage_checked") for r in d["results"]), 30)
    time.sleep(random.uniform(0, SCRAPE))  # the breach at any phase of the scrape and check cycles
    t0 = time.time()
    exporter.value = BAD
    deadline = t0 + 30
    last = None
    while True:  # stat + read every 2 ms; a changed file is read whole
        st = os.stat(flags)
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != last:
            last = key
            if not staged_in(flags):
                t1 = time.time()
                break
        if time.time() > deadline:
            sys.exit(f"run {n}: {incident} never rolled back within 30 s; see {db}")
        time.sleep(0.002)
    scraped = prometheus.first_scrape_of(BAD, t0)
    checks = [(epoch(ts), d["results"][0]["outcome"]) for ts, d in events(db, incident, "stage_checked")]
    failing = [at for at, outcome in checks if outcome == "not-yet"]
    # a check after the breach's scrape that still held would mean a stale read, not the cycles
    stale = sum(1 for at, outcome in checks if scraped and at > scraped and outcome == "holds")
    runbook(env, "incident", "resolve", incident, "--as", "bench")
    return {"incident": incident, "total": t1 - t0, "scrape": (scraped - t0) if scraped else None,
            "check": (failing[0] - scraped) if failing and scraped else None,
            "write": (t1 - failing[0]) if failing else None, "stale": stale,
            "periods": [b[0] - a[0] for a, b in pairwise(checks)]}


def query_round_trips(prometheus: Prometheus, count: int) -> list[float]:
    times = []
    for _ in range(count):
        t = time.perf_counter()
        prometheus.get("/api/v1/query", query="bench_error_ratio", time=f"{time.time():.3f}")
        times.append(time.perf_counter() - t)
    return times


def flag_writes(tmp: Path, count: int) -> list[float]:
    """`runbook flags set` in-process: a locked read-modify-write with fsync and rename, on a copy
    of the benchmark's flag file in the same directory, alternating two values."""
    path = str(tmp / "flags-write.json")
    data = flagd.empty()
    flagd.set_value(data, FLAG, True)
    flagd.write_atomic(path, data)
    times = []
    for i in range(count):
        value = i % 2 == 0
        t = time.perf_counter()
        flagd.update(path, lambda d: flagd.set_value(d, FLAG, not value))
        times.append(time.perf_counter() - t)
    return times


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None, help="seed for the breach phases")
    args = parser.parse_args()
    if shutil.which("prometheus") is None:
        sys.exit("Debian's prometheus package is not installed (apt-get install prometheus)")
    random.seed(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="runbook-rollback-bench-"))
    (tmp / "catalog").mkdir()
    (tmp / "catalog" / "bench-rollback.yaml").write_text(PLAYBOOK)
    (tmp / "catalog" / "policies.yaml").write_text(POLICIES)
    flags, db = tmp / "flags.json", tmp / "runbook.db"
    data = flagd.empty()
    flagd.set_value(data, FLAG, True)
    data["flags"][FLAG].pop("metadata", None)  # as the service's own file would hold it
    flagd.write_atomic(str(flags), data)
    env = {**os.environ, "RUNBOOK_DB": str(db), "RUNBOOK_FLAGS": str(flags), "HOME": str(tmp),
           "RUNBOOK_CATALOG": str(tmp / "catalog"), "RUNBOOK_SERVE_TOKEN": TOKEN,
           "RUNBOOK_PLUGINS_DIR": str(tmp / "no-plugins"), "XDG_CACHE_HOME": str(tmp / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    exporter = Exporter()
    prometheus = Prometheus(tmp, exporter.address)
    serve = None
    try:
        env["RUNBOOK_PROMETHEUS_URL"] = prometheus.url
        wait_until("the first scrape", lambda: prometheus.value() == GOOD, 30)
        serve = start_serve(tmp, env)
        runs = []
        for n in range(1, args.runs + 1):
            run = one_run(n, env, db, flags, exporter, prometheus)
            runs.append(run)
            part = lambda k: ms(run[k]) if run[k] is not None else "      ?"  # noqa: E731
            print(f"run {n:2d} {run['incident']}: breach -> rollback in flag file {ms(run['total'])}"
                  f"   (to the scrape {part('scrape')}, scrape -> failing check {part('check')},"
                  f" check -> file {part('write')})", flush=True)
        queries = query_round_trips(prometheus, 200)
        writes = flag_writes(tmp, 200)
    finally:
        if serve is not None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=15)
            except subprocess.TimeoutExpired:
                serve.kill()
        prometheus.stop()
        exporter.close()

    totals = sorted(r["total"] for r in runs)
    median = statistics.median(totals)
    p90 = totals[min(len(totals) - 1, round(0.9 * (len(totals) - 1)))]
    bound = SCRAPE + CHECK_EVERY + TICK
    print(f"\nbreach -> rollback in the flag file, {len(runs)} runs:")
    print(f"  median {ms(median)}   p90 {ms(p90)}   max {ms(totals[-1])}   min {ms(totals[0])}")
    for key, label in (("scrape", "t0 -> first scrape with the breach"),
                       ("check", "that scrape -> failing check recorded"),
                       ("write", "failing check -> flag file rolled back")):
        parts = [r[key] for r in runs if r[key] is not None]
        if parts:
            print(f"  {label:40s} median {ms(statistics.median(parts))}   max {ms(max(parts))}")
    print(f"  checks that still held after the breach was scraped: {sum(r['stale'] for r in runs)}")
    periods = sorted(p for r in runs for p in r["periods"])
    if periods:
        print(f"  check period (between stage_checked events): median {ms(statistics.median(periods))}"
              f"   min {ms(periods[0])}   max {ms(periods[-1])}  ({len(periods)})")
    print("floor, same run:")
    period = statistics.median(periods) if periods else CHECK_EVERY + TICK
    print(f"  sampling bound: scrape {SCRAPE:g} s + check_every {CHECK_EVERY:g} s + tick {TICK:g} s = {bound:.1f} s;"
          f" mean with uniform phases: (scrape + check period) / 2 = {(SCRAPE + period) / 2 * 1000:.0f} ms")
    print(f"  bare instant query round trip   median {statistics.median(queries) * 1000:6.2f} ms"
          f"   p90 {sorted(queries)[int(0.9 * len(queries))] * 1000:6.2f} ms  (200)")
    print(f"  flag-file write (flagd.update)  median {statistics.median(writes) * 1000:6.2f} ms"
          f"   p90 {sorted(writes)[int(0.9 * len(writes))] * 1000:6.2f} ms  (200)")
    print(f"ratio median / sampling bound: {median / bound:.2f}   max / bound: {totals[-1] / bound:.2f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
