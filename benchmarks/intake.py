"""Alert intake: from an alert posted to `runbook serve` to its incident stored, and throughput.

Two measures, each against a peer in the same run:

1. Latency, alert posted -> alert durable: one client posts new alerts one at a time and times
   the round trip; the answer is sent once the alert's row (with its reserved incident id) is
   committed with synchronous=FULL, and each opens an incident right after (the snapshot, the
   first events), which the benchmark checks at the end are all in the database. p50/p99, beside the
   same client's round trip to a bare "hello" endpoint on the same stack (Starlette on Uvicorn).
2. Throughput under load: wrk (Debian package) posting new alerts over 8 connections for a few
   seconds, against the hello endpoint under the same wrk; alternated A B A B; ratio of medians.

    .venv/bin/python benchmarks/intake.py [--alerts 300] [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "benchmark-intake-token-0123456789"
CATALOG = [str(ROOT / "tests" / "serve_catalog"), str(ROOT / "tests" / "fixtures" / "catalog" / "playbooks")]

HELLO_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
async def hello(request):
    await request.body()
    return PlainTextResponse("hello")
app = Starlette(routes=[Route("/alertmanager", hello, methods=["POST"])])
print("listening on http://127.0.0.1:" + sys.argv[1], file=sys.stderr, flush=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

WRK_SCRIPT = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  run = args[1] or "0"
end
request = function()
  counter = counter + 1
  local fp = string.format("%s%02d%010d", run, id, counter)
  local body = '{"version":"4","status":"firing","receiver":"runbook","alerts":[{"status":"firing",' ..
    '"labels":{"alertname":"DiskFull","instance":"h' .. fp .. '.example","severity":"warning"},' ..
    '"annotations":{"summary":"bench"},"startsAt":"2026-11-30T10:00:00Z","endsAt":"0001-01-01T00:00:00Z",' ..
    '"generatorURL":"","fingerprint":"' .. fp .. '"}]}'
  return wrk.format("POST", "/alertmanager", {["Authorization"] = "Bearer %TOKEN%",
                                               ["Content-Type"] = "application/json"}, body)
end
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv: list[str], env: dict, log: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on http://[^:]+:(\d+)", log.read_text())
        if found:
            return proc, int(found.group(1))
        if proc.poll() is not None:
            sys.exit(f"server exited: {log.read_text()}")
        time.sleep(0.05)
    sys.exit("server did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def runbook_server(tmp: Path, name: str) -> tuple[subprocess.Popen, int, Path]:
    db = tmp / f"{name}.db"
    env = {**os.environ, "RUNBOOK_DB": str(db), "RUNBOOK_SERVE_TOKEN": TOKEN, "HOME": str(tmp),
           "RUNBOOK_PLUGINS_DIR": str(tmp / "none"), "XDG_CACHE_HOME": str(tmp / "cache")}
    argv = [sys.executable, "-m", "runbook", *(arg for c in CATALOG for arg in ("--catalog", c)), "serve",
            "--port", "0", "--log-level", "warning"]
    proc, port = start(argv, env, tmp / f"{name}.log")
    return proc, port, db


def hello_server(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    return start([sys.executable, "-c", HELLO_APP, str(port)], dict(os.environ), tmp / "hello.log")[0], port


def alert_body(n: int) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "receiver": "runbook", "alerts": [{
        "status": "firing", "labels": {"alertname": "DiskFull", "instance": f"lat{n}.example", "severity": "warning"},
        "annotations": {"summary": "bench"}, "startsAt": "2026-11-30T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "", "fingerprint": f"{n:016x}"}]}).encode()


def round_trips(port: int, count: int, offset: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    times = []
    for n in range(offset, offset + count):
        body = alert_body(n)
        t0 = time.perf_counter()
        conn.request("POST", "/alertmanager", body, headers)
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - t0)
        if response.status != 200:
            sys.exit(f"HTTP {response.status}")
    conn.close()
    return times


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def wrk(port: int, seconds: int, script: Path, run: int) -> float:
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "-s", str(script), f"http://127.0.0.1:{port}",
                          "--", str(run)], capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        sys.exit(f"wrk saw {non2xx.group(1)} failed responses:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="runbook-intake-bench-"))
    script = tmp / "post.lua"
    script.write_text(WRK_SCRIPT.replace("%TOKEN%", TOKEN))
    serve, serve_port, db = runbook_server(tmp, "intake")
    hello, hello_port = hello_server(tmp)
    try:
        round_trips(serve_port, 20, 10_000_000)  # warm both up
        round_trips(hello_port, 20, 0)
        lat_a, lat_b = [], []
        for r in range(args.rounds):  # A B A B
            lat_a += round_trips(serve_port, args.alerts // args.rounds, r * 100_000)
            lat_b += round_trips(hello_port, args.alerts // args.rounds, 0)
        rate_a, rate_b = [], []
        for r in range(args.rounds):
            rate_a.append(wrk(serve_port, args.seconds, script, r + 1))
            rate_b.append(wrk(hello_port, args.seconds, script, r + 1))
    finally:
        stop(serve)
        stop(hello)
    from runbook.store import Store

    store = Store(str(db), key=None)
    stored = len(store.incidents())
    ledger = store.alerts()
    store.close()
    assert all(r["outcome"] == "opened" for r in ledger), "an alert did not open its incident"
    assert stored == len(ledger) == len({r["incident"] for r in ledger}), "alerts and incidents differ"
    print(f"incidents stored: {stored} (one per alert posted: {len(ledger)})")
    print(f"latency, alert posted -> incident stored ({len(lat_a)} alerts, one at a time):")
    print(f"  runbook serve  p50 {percentile(lat_a, 50) * 1000:6.2f} ms   p99 {percentile(lat_a, 99) * 1000:6.2f} ms")
    print(f"  hello endpoint p50 {percentile(lat_b, 50) * 1000:6.2f} ms   p99 {percentile(lat_b, 99) * 1000:6.2f} ms")
    print(f"  ratio p50 {percentile(lat_a, 50) / percentile(lat_b, 50):.1f}x")
    a, b = statistics.median(rate_a), statistics.median(rate_b)
    print(f"throughput (wrk -t2 -c8, {args.seconds}s, new alert per request, {args.rounds} rounds A B A B):")
    print(f"  runbook serve  {a:8.0f} alerts/s  (rounds: {', '.join(f'{x:.0f}' for x in rate_a)})")
    print(f"  hello endpoint {b:8.0f} req/s     (rounds: {', '.join(f'{x:.0f}' for x in rate_b)})")
    print(f"  ratio {a / b:.3f} (durable incident per request vs bare endpoint, same stack)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
