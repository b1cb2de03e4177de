"""Appending to an incident on PostgreSQL, against a raw psycopg insert with the same durability,
and how soon another connection hears of it (what another machine's TUI waits for).

    .venv/bin/python benchmarks/pg_append.py [--events 300] [--rounds 6] [--block N]

A throw-away cluster is started under /tmp (Debian's postgresql; initdb and pg_ctl as the
postgres user), fsync on, `synchronous_commit = on` for both sides.

A: runbook appends a note to one incident (`engine.note`): the expected-sequence check, the
   hash chain, the summary row, NOTIFY, one commit.
B: the floor: one INSERT of the same columns into a plain table and one commit, on one
   connection, nothing else.
They alternate in blocks (A B A B), each `--events` appends long unless `--block` says; the ratio
is of the medians. A block of 300 lasts about 0.1 s, long enough for other work on a shared
machine to fall on one side more than the other; `--block 1` alternates append by append, so
both sides meet the same load. Then the notification: a
listener on its own connection (the TUI's gateway uses the same `store.listen`) timestamps each
`NOTIFY`; the time from just before an append to its notification, p50 and p99.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300, help="appends per round, each side")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--block", type=int, default=None, help="appends in a row before the other side's turn "
                        "(default: --events)")
    args = parser.parse_args()
    args.block = args.block or args.events

    import psycopg
    from helpers.pg_cluster import start_cluster

    from runbook.catalog import load
    from runbook.engine import Engine, SystemClock
    from runbook.store import open_store

    cluster = start_cluster()
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
        fsync = raw.execute("SHOW fsync").fetchone()[0]
        sync = store.conn.execute("SHOW synchronous_commit").fetchone()[0]
        seq = [0]

        def runbook_block(size):
            out = []
            for n in range(size):
                t0 = time.perf_counter()
                engine.note(incident, "bench", f"note {n}")
                out.append(time.perf_counter() - t0)
            return out

        def raw_block(size):
            out = []
            for n in range(size):
                seq[0] += 1
                t0 = time.perf_counter()
                raw.execute("INSERT INTO raw_events VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                            ["INC-RAW", seq[0], "2026-11-30T12:00:00+00:00", "bench", "note_added",
                             json.dumps({"text": f"note {n}"}), "0" * 64, "f" * 64])
                raw.commit()
                out.append(time.perf_counter() - t0)
            return out

        runbook_block(args.events), raw_block(args.events)  # warm up both
        a, b = [], []
        for _ in range(args.rounds * args.events // args.block):
            a += runbook_block(args.block)
            b += raw_block(args.block)

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
        store.close()
    finally:
        cluster.stop()

    ms = lambda v: f"{v * 1000:6.2f} ms"  # noqa: E731
    print(f"PostgreSQL, fsync={fsync}, synchronous_commit={sync}; {len(a)} appends each side, blocks of "
          f"{args.block} alternating")
    print(f"  runbook append (note)   median {ms(statistics.median(a))}   p99 {ms(sorted(a)[int(0.99 * len(a))])}")
    print(f"  raw psycopg insert      median {ms(statistics.median(b))}   p99 {ms(sorted(b)[int(0.99 * len(b))])}")
    print(f"  ratio (medians) {statistics.median(a) / statistics.median(b):.2f}")
    if latencies:
        print(f"append -> another connection notified ({len(latencies)} of {len(sent)}): "
              f"p50 {ms(latencies[len(latencies) // 2])}   p99 {ms(latencies[int(0.99 * (len(latencies) - 1))])}")
    else:
        print("no notification heard")


if __name__ == "__main__":
    main()
