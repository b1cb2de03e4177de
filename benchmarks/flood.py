"""A flood of deliveries beside 1,000 live viewers: nothing lost, nothing duplicated, intake p99.

One `runbook serve` with the status page on. Each round, alternating A B A B:

- A (the peer): no viewer connected;
- B: VIEWERS clients hold /live open (server-sent events), as browsers on the status page do.

In each round SENDERS threads post DELIVERIES deliveries (one connection each, as Alertmanager
does), each carrying one alert of a pool of ALERTS new alerts, so every alert is delivered
DELIVERIES / ALERTS times and its repeats race each other across senders. An answer other than
200 is retried after a moment (as Alertmanager does) and counted. Once the log is still, the
database is read on a connection of its own:

- lost: alerts of the pool without a ledger row linked to an incident that opened;
- duplicated: incidents opened in the round beyond one per alert, and deliveries counted beyond
  those posted (the ledger's `deliveries` column summed over the pool; negative: fewer);
- every viewer must have been sent every change appended while it watched (within a minute of
  the log being still: this benchmark's one client thread reads 1,000 streams).

At the end, SIGTERM with the viewers of a last B phase connected: the time until the server
exited, and whether its log holds a traceback (goal: within 2 s, none).

    .venv/bin/python benchmarks/flood.py [--viewers 1000] [--deliveries 2000] [--alerts 500] [--senders 10] [--rounds 2]

`--viewers 0`: no viewers on either side, the noise of the measure on this machine (an A A run).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from intake import CATALOG, TOKEN, percentile, start, stop
from viewers import VIEW, Viewers, settled


def body(n: int) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "receiver": "runbook", "alerts": [{
        "status": "firing", "labels": {"alertname": "DiskFull", "instance": f"flood{n}.example", "severity": "warning"},
        "annotations": {"summary": "flood"}, "startsAt": "2026-11-30T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "", "fingerprint": f"{n:016x}"}]}).encode()


def flood(port: int, pool: list[int], deliveries: int, senders: int) -> tuple[list[float], int]:
    """Post `deliveries` deliveries over the alerts of `pool`; (each answer's time, retries)."""
    retries = 0

    def send(n: int) -> float:
        nonlocal retries
        payload = body(pool[n % len(pool)])
        t0 = time.perf_counter()
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("POST", "/alertmanager", payload, {"Authorization": f"Bearer {TOKEN}",
                                                             "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status == 200:
                return time.perf_counter() - t0
            retries += 1
            time.sleep(0.5)

    with ThreadPoolExecutor(senders) as threads:
        return list(threads.map(send, range(deliveries))), retries


def incidents(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM incidents").fetchone()[0]


def tally(db: Path, pool: list[int], before: int) -> tuple[int, int, int]:
    """(alerts of `pool` lost, incidents opened beyond one per alert, deliveries the ledger
    counted for `pool`), `before` incidents there were before the round."""
    fingerprints = [f"{n:016x}" for n in pool]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(f"SELECT a.deliveries, i.id FROM alerts a LEFT JOIN incidents i ON i.id = a.incident "
                            f"WHERE a.outcome = 'opened' AND a.fingerprint IN ({','.join('?' * len(pool))})",
                            fingerprints).fetchall()
        opened = conn.execute("SELECT count(*) FROM incidents").fetchone()[0] - before
    linked = sum(1 for _, incident in rows if incident is not None)
    return len(pool) - linked, opened - linked, sum(d or 0 for d, _ in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--alerts", type=int, default=500, help="distinct alerts per round (the rest are repeats)")
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="runbook-flood-bench-"))
    db = tmp / "flood.db"
    env = {**os.environ, "RUNBOOK_DB": str(db), "RUNBOOK_SERVE_TOKEN": TOKEN, "RUNBOOK_VIEW_TOKEN": VIEW,
           "HOME": str(tmp), "RUNBOOK_PLUGINS_DIR": str(tmp / "none"), "XDG_CACHE_HOME": str(tmp / "cache")}
    argv = [sys.executable, "-m", "runbook", *[word for c in CATALOG for word in ("--catalog", c)], "serve",
            "--port", "0", "--log-level", "warning", "--max-viewers", str(max(args.viewers, 1))]
    proc, port = start(argv, env, tmp / "serve.log")
    results = {"A": [], "B": []}
    stopped = None
    try:
        for r in range(args.rounds):
            for kind in "AB":
                first = (r * 2 + (kind == "B") + 1) * 10_000_000
                pool = list(range(first, first + args.alerts))
                start_at, before = settled(db), incidents(db)
                viewers = Viewers(port, args.viewers) if kind == "B" and args.viewers else None
                answers, retries = flood(port, pool, args.deliveries, args.senders)
                appended = settled(db) - start_at
                lost, duplicated, counted = tally(db, pool, before)
                sent = None
                if viewers is not None:
                    give_up = time.monotonic() + 60  # the last changes on their way (and this client's reading)
                    while min(viewers.changes) < appended and time.monotonic() < give_up:
                        time.sleep(0.1)
                    sent = min(viewers.changes)
                    if sent != appended:
                        print(f"  round {r + 1}: a viewer was sent {sent} of the {appended} changes appended")
                    viewers.close()
                results[kind].append((answers, retries, lost, duplicated, counted - args.deliveries, sent, appended))
        viewers = Viewers(port, args.viewers) if args.viewers else None
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        stopped = time.monotonic() - t0
        if viewers is not None:
            viewers.close()
    finally:
        if proc.poll() is None:
            stop(proc)
    log = (tmp / "serve.log").read_text()
    print(f"runbook serve, {args.deliveries} deliveries over {args.alerts} new alerts by {args.senders} senders, with "
          f"{args.viewers} live viewers (B) and none (A), {args.rounds} rounds A B A B:")
    for kind, name in (("A", "no viewers (peer)"), ("B", f"{args.viewers} viewers")):
        runs = results[kind]
        each = [t for answers, *_ in runs for t in answers]
        print(f"  {name:<18} intake p50 {percentile(each, 50) * 1000:6.2f} ms  "
              f"p99 {percentile(each, 99) * 1000:6.2f} ms  max {max(each) * 1000:7.1f} ms; "
              f"lost {sum(x[2] for x in runs)}, duplicated incidents "
              f"{sum(x[3] for x in runs)}, deliveries counted beyond those posted "
              f"{sum(x[4] for x in runs)}, retried {sum(x[1] for x in runs)}"
              + (f"; each viewer sent {', '.join(f'{x[5]} of {x[6]}' for x in runs)} changes" if kind == "B" else ""))
    a = [t for answers, *_ in results["A"] for t in answers]
    b = [t for answers, *_ in results["B"] for t in answers]
    print(f"  intake p99 ratio (viewers / none) {percentile(b, 99) / percentile(a, 99):.2f}x")
    print(f"  SIGTERM with {args.viewers} viewers connected: exited in {stopped:.2f} s (goal: within 2 s), "
          f"{'a traceback in its log' if 'Traceback' in log else 'no traceback in its log'}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
