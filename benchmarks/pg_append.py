"""Appending to an incident on PostgreSQL, against a raw psycopg insert and commit with the same
durability, and how soon another connection hears of it (what another machine's TUI waits for).

    .venv/bin/python benchmarks/pg_append.py [--events 300] [--rounds 6] [--block N] [--where DIR]

A throw-away cluster is started in a new directory under `--where` (default /tmp: this machine's
disk; /dev/shm, memory, is a disk whose fsync costs nothing, where the appends' own work shows
most), fsync on, `synchronous_commit = on` for every side.

A:  runbook appends a note to one incident (`engine.note` on the state it holds): the engine's
    checks and fold, the hash chain, then one call of `runbook_append` (the summary row, the event
    trigger, the ordering lock, NOTIFY, the commit).
B:  the peer: one INSERT of the same columns into a plain table and a commit, as psycopg does it by
    default (BEGIN, INSERT, COMMIT).
B1: the floor: the same INSERT on an autocommit connection (one round trip, the commit in it).
They alternate in blocks (A B B1 A B B1 ...), each `--events` appends long unless `--block` says;
the ratios are of the medians. A block of 300 lasts about 0.1 s on a fast disk, long enough for
other work on a shared machine to fall on one side more than another; `--block 1` alternates
append by append, so every side meets the same load.

Where the time goes, for each side: the round trips to the server per append (counted in libpq's
trace of the messages sent: each Sync or simple Query waits for the server), and the CPU time per
append of the server's process (/proc/PID/schedstat) and of this one (the Python client): CPU time
is what the work costs, whatever else the machine runs; wall time waits for the other jobs too.

Then the notification: a listener on its own connection (the TUI's gateway uses the same
`store.listen`) timestamps each NOTIFY; the time from just before an append to its
notification, p50 and p99.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def server_cpu(pid: int) -> float:
    """Seconds the server process `pid` has run on a CPU."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def round_trips(conn, append, count: int = 5) -> float:
    """Round trips to the server per `append()` on `conn`, from libpq's trace of what it sent."""
    import psycopg

    with tempfile.TemporaryFile("w+") as trace:
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        for _ in range(count):
            append()
        conn.pgconn.untrace()
        trace.seek(0)
        sent = [line.split("\t") for line in trace.read().splitlines() if line.startswith("F")]
    return sum(1 for message in sent if message[2].split()[0] in ("Sync", "Query")) / count


class Side:
    def __init__(self, name: str, conn, append):
        self.name, self.conn, self.append = name, conn, append
        self.times: list[float] = []
        self.server = self.client = 0.0

    def block(self, size: int) -> None:
        pid = self.conn.info.backend_pid
        server, client = server_cpu(pid), time.process_time()
        for _ in range(size):
            t0 = time.perf_counter()
            self.append()
            self.times.append(time.perf_counter() - t0)
        self.server += server_cpu(pid) - server
        self.client += time.process_time() - client

    def median(self) -> float:
        return statistics.median(self.times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300, help="appends per round, each side")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--block", type=int, default=None, help="appends in a row before the other side's turn "
                        "(default: --events)")
    parser.add_argument("--where", default="/tmp", help="the directory the throw-away cluster is made in")
    args = parser.parse_args()
    args.block = args.block or args.events

    import psycopg
    from helpers.pg_cluster import start_cluster

    from runbook.catalog import load
    from runbook.engine import Engine, SystemClock
    from runbook.store import open_store

    cluster = start_cluster(args.where)
    try:
        url = cluster.new_schema()
        store = open_store(url, key=None)
        engine = Engine(store, SystemClock(), None, load([str(ROOT / "tests" / "fixtures" / "catalog" / "playbooks")]))
        incident = engine.open("video-call-degraded", "bench").id
        raw = psycopg.connect(cluster.url)
        raw.execute("SET synchronous_commit = on")
        raw.execute("CREATE TABLE raw_events (incident text, seq int, ts text, actor text, type text, data text, "
                    "prev_hash text, hash text, PRIMARY KEY (incident, seq))")
        raw.commit()
        floor = psycopg.connect(cluster.url, autocommit=True)
        floor.execute("SET synchronous_commit = on")
        fsync = raw.execute("SHOW fsync").fetchone()[0]
        sync = store.conn.execute("SHOW synchronous_commit").fetchone()[0]
        seq = [0]

        def insert(conn):
            seq[0] += 1
            conn.execute("INSERT INTO raw_events VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                         ["INC-RAW", seq[0], "2026-11-30T12:00:00+00:00", "bench", "note_added",
                          json.dumps({"text": f"note {seq[0]}"}), "0" * 64, "f" * 64])

        def raw_append():
            insert(raw)
            raw.commit()

        sides = [Side("runbook append (note)", store.conn, lambda: engine.note(incident, "bench", "a note")),
                 Side("raw insert + commit", raw, raw_append),
                 Side("raw insert, autocommit", floor, lambda: insert(floor))]
        for side in sides:  # warm up every side (psycopg prepares a statement run often)
            for _ in range(args.events):
                side.append()
        trips = [round_trips(side.conn, side.append) for side in sides]
        for _ in range(args.rounds * args.events // args.block):
            for side in sides:
                side.block(args.block)

        heard: dict[int, float] = {}
        listener = store.listen(
            lambda inc, s: inc == incident and s is not None and heard.setdefault(s, time.perf_counter()))
        listener.connected.wait(10)
        sent: dict[int, float] = {}
        for n in range(200):
            t0 = time.perf_counter()
            seq_now = engine.note(incident, "bench", f"heard {n}")[-1].seq
            sent[seq_now] = t0
        deadline = time.monotonic() + 10
        while len([s for s in sent if s in heard]) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.01)
        listener.close()
        latencies = sorted(heard[s] - t for s, t in sent.items() if s in heard)
        raw.close()
        floor.close()
        store.close()
    finally:
        cluster.stop()

    us = lambda v: f"{v * 1e6:7.1f} us"  # noqa: E731
    appends = len(sides[0].times)
    print(f"PostgreSQL in {args.where}, fsync={fsync}, synchronous_commit={sync}; {appends} appends each side, "
          f"blocks of {args.block} alternating")
    print(f"  {'side':24} {'median':>10} {'p99':>10} {'round trips':>12} {'server CPU':>11} {'client CPU':>11}"
          "   (per append)")
    for side, trip in zip(sides, trips):
        print(f"  {side.name:24} {us(side.median())} {us(sorted(side.times)[int(0.99 * appends)])} {trip:12.1f} "
              f"{us(side.server / appends)} {us(side.client / appends)}")
    runbook = sides[0].median()
    for side in sides[1:]:
        print(f"  ratio (medians) to {side.name}: {runbook / side.median():.2f}   "
              f"(runbook {(runbook - side.median()) * 1e6:+.1f} us)")
    if latencies:
        print(f"append -> another connection notified ({len(latencies)} of {len(sent)}): "
              f"p50 {us(latencies[len(latencies) // 2])}   p99 {us(latencies[int(0.99 * (len(latencies) - 1))])}")
    else:
        print("no notification heard")


if __name__ == "__main__":
    main()
