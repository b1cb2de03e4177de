"""An alert storm: 10,000 alerts in 100 deliveries, against `runbook serve` and a bare endpoint.

CLIENTS senders (Alertmanager sends each alert group's notification on its own) post 100
deliveries of 100 new alerts each (every alert a new incident); the storm is answered when the
last delivery is. Right after the last answer, the database is read on a connection of its own:
every alert must be in the ledger by then (each delivery is one transaction, committed with
synchronous=FULL before its answer). Beside it, in the same run, the same deliveries posted the
same way to a bare endpoint on the same stack (Starlette on Uvicorn) that reads each body and
answers; rounds alternate A B A B. Then, for information: how long the server took to open the
incidents after answering (its ticks lane).

    .venv/bin/python benchmarks/storm.py [--alerts 10000] [--deliveries 100] [--clients 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from intake import TOKEN, hello_server, percentile, runbook_server, stop


def delivery(first: int, count: int) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "receiver": "runbook", "alerts": [{
        "status": "firing", "labels": {"alertname": "DiskFull", "instance": f"storm{n}.example",
                                       "severity": "warning"},
        "annotations": {"summary": "storm"}, "startsAt": "2026-11-30T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "", "fingerprint": f"{n:016x}"} for n in range(first, first + count)]}).encode()


def post_all(port: int, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    """(seconds until the last answer, each delivery's answer time)."""
    def send(body: bytes) -> float:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        t0 = time.perf_counter()
        conn.request("POST", "/alertmanager", body, {"Authorization": f"Bearer {TOKEN}",
                                                      "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 200:
            sys.exit(f"HTTP {response.status}")
        return time.perf_counter() - t0
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(send, bodies))
    return time.perf_counter() - start, answers


def ledger(db: Path) -> tuple[int, int]:
    """(alerts in the ledger, alerts whose incident is open), read on a connection of its own."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return (conn.execute("SELECT count(*) FROM alerts").fetchone()[0],
                conn.execute("SELECT count(*) FROM alerts WHERE outcome = 'opened'").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--deliveries", type=int, default=100)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    per = args.alerts // args.deliveries
    tmp = Path(tempfile.mkdtemp(prefix="runbook-storm-bench-"))
    serve, serve_port, db = runbook_server(tmp, "storm")
    hello, hello_port = hello_server(tmp)
    storms, peers, opened_after = [], [], []
    try:
        for r in range(args.rounds):  # A B A B
            first = (r + 1) * 10_000_000
            bodies = [delivery(first + d * per, per) for d in range(args.deliveries)]
            before = ledger(db)[0]
            took, answers = post_all(serve_port, bodies, args.clients)
            stored, _ = ledger(db)
            if stored - before != args.alerts:
                sys.exit(f"round {r + 1}: {stored - before} of {args.alerts} alerts in the ledger at the last answer")
            storms.append((took, answers))
            peers.append(post_all(hello_port, bodies, args.clients))
            t0 = time.perf_counter()
            while ledger(db)[1] < stored:  # the incidents opened after the answers
                time.sleep(0.5)
            opened_after.append(time.perf_counter() - t0 + took)
    finally:
        stop(serve)
        stop(hello)
    print(f"alert storm: {args.alerts:,} new alerts in {args.deliveries} deliveries of {per}, {args.clients} senders, "
          f"{args.rounds} rounds A B A B:")
    for name, runs in (("runbook serve", storms), ("bare endpoint (peer)", peers)):
        took = [t for t, _ in runs]
        each = [a for _, answers in runs for a in answers]
        print(f"  {name:<22} answered in {statistics.median(took):6.2f} s (rounds "
              f"{', '.join(f'{t:.2f}' for t in took)}); per delivery p50 {percentile(each, 50) * 1000:7.1f} ms  "
              f"p99 {percentile(each, 99) * 1000:7.1f} ms")
    print(f"  ratio {statistics.median(t for t, _ in storms) / statistics.median(t for t, _ in peers):.1f}x the bare "
          f"endpoint; every alert was in the ledger at the last answer (goal: answered within 10 s)")
    print(f"  incidents all opened {statistics.median(opened_after):.1f} s after the first delivery (rounds "
          f"{', '.join(f'{t:.1f}' for t in opened_after)}; the ticks lane, after the answers)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
