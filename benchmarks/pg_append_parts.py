"""Where a PostgreSQL append's time goes: the server's CPU time per `engine.note` with one part of
the append taken away at a time, beside the full append and a raw insert and commit.

    .venv/bin/python benchmarks/pg_append_parts.py [--appends 400] [--rounds 5] [--where /dev/shm]

A diagnostic, not a way to run: each variant breaks a guarantee (no trigger: any event goes in; no
summary: the incident list goes stale...). On a throw-away cluster (fsync on, under `--where`;
/dev/shm by default, so that the disk's fsync, the same for every side, does not drown the
differences), the variants take turns, each `--appends` notes long, A B A B for `--rounds`:

- the append as the newest migration defines it (postgres_migrations/14_append.sql), and as
  migration 5 did (it read the log's end itself too, and checked the status with the executor);
- without the event trigger; without the summary's update; without the ordering lock; without
  NOTIFY; without the type index or the request index;
- the function with its INSERT alone (no trigger, no summary, lock, NOTIFY, nor the two indexes);
- a raw INSERT and commit (BEGIN, INSERT, COMMIT) of the same columns into a plain table.

CPU time (/proc/PID/schedstat of the server's process; time.process_time() here) is what the work
costs whatever else the machine runs; the wall time is printed too. Medians of the rounds.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

UPDATE = re.compile(r"\s*UPDATE incidents SET.*?WHERE id = p_incident;", re.S)
LOCK = "PERFORM pg_advisory_xact_lock(7304917, 1);"
NOTIFY = "PERFORM pg_notify('runbook_events', p_incident || ' ' || p_last_seq);"
INDEXES = {"idx_events_type_incident": "CREATE INDEX IF NOT EXISTS idx_events_type_incident ON events (type, incident)",
           "idx_events_request": "CREATE UNIQUE INDEX IF NOT EXISTS idx_events_request ON events (incident, request) "
                                 "WHERE request IS NOT NULL"}


def variants(frozen) -> dict[str, tuple[str, bool, tuple[str, ...]]]:
    """name -> (the function's definition, whether the event trigger runs, indexes dropped)."""
    newest = frozen("14_append.sql")
    alone = UPDATE.sub("", newest).replace(LOCK, "").replace(NOTIFY, "")
    return {"append (migration 14)": (newest, True, ()),
            "append (migration 5)": (frozen("5_append.sql"), True, ()),
            "  without the trigger": (newest, False, ()),
            "  without the summary": (UPDATE.sub("", newest), True, ()),
            "  without the lock": (newest.replace(LOCK, ""), True, ()),
            "  without NOTIFY": (newest.replace(NOTIFY, ""), True, ()),
            "  without the type index": (newest, True, ("idx_events_type_incident",)),
            "  without the request index": (newest, True, ("idx_events_request",)),
            "  its INSERT alone": (alone, False, tuple(INDEXES))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appends", type=int, default=400, help="appends per turn")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--where", default="/dev/shm", help="the directory the throw-away cluster is made in")
    args = parser.parse_args()

    import psycopg
    from helpers.pg_cluster import start_cluster
    from pg_append import server_cpu

    from runbook.catalog import load
    from runbook.engine import Engine, SystemClock
    from runbook.store import open_store
    from runbook.store.postgres import frozen

    sides = variants(frozen)
    cluster = start_cluster(args.where)
    try:
        store = open_store(cluster.new_schema(), key=None)
        conn = store.conn
        engine = Engine(store, SystemClock(), None, load([str(ROOT / "tests" / "fixtures" / "catalog" / "playbooks")]))
        incident = engine.open("video-call-degraded", "bench").id
        raw = psycopg.connect(cluster.url)
        raw.execute("CREATE TABLE raw_events (incident text, seq int, ts text, actor text, type text, data text, "
                    "prev_hash text, hash text, PRIMARY KEY (incident, seq))")
        raw.commit()
        seq = [0]

        def raw_append():
            seq[0] += 1
            raw.execute("INSERT INTO raw_events VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        ["INC-RAW", seq[0], "2026-11-30T12:00:00+00:00", "bench", "note_added",
                         json.dumps({"text": "a note"}), "0" * 64, "f" * 64])
            raw.commit()

        def turn(append, server) -> tuple[float, float, float]:
            pid = server.info.backend_pid
            cpu, here, wall = server_cpu(pid), time.process_time(), time.perf_counter()
            for _ in range(args.appends):
                append()
            return tuple((end - start) / args.appends for start, end in (
                (cpu, server_cpu(pid)), (here, time.process_time()), (wall, time.perf_counter())))

        def note():
            engine.note(incident, "bench", "a note")

        for _ in range(args.appends):  # warm up
            note()
            raw_append()
        results: dict[str, list] = {name: [] for name in [*sides, "raw insert + commit"]}
        for _ in range(args.rounds):
            for name, (function, trigger, dropped) in sides.items():
                conn.execute(function)
                conn.execute(f"ALTER TABLE events {'ENABLE' if trigger else 'DISABLE'} TRIGGER events_checked")
                for index in dropped:
                    conn.execute(f"DROP INDEX {index}")
                for _ in range(20):  # plans made again for the changed function and table
                    note()
                results[name].append(turn(note, conn))
                for index in dropped:
                    conn.execute(INDEXES[index])
                results["raw insert + commit"].append(turn(raw_append, raw))
        raw.close()
        store.close()
    finally:
        cluster.stop()

    print(f"PostgreSQL in {args.where}, fsync on; {args.rounds} rounds of {args.appends} appends a variant; "
          "per append, medians of the rounds:")
    print(f"  {'variant':30} {'server CPU':>11} {'client CPU':>11} {'wall':>10}")
    for name, rows in results.items():
        server, client, wall = (statistics.median(row[i] for row in rows) * 1e6 for i in range(3))
        print(f"  {name:30} {server:8.1f} us {client:8.1f} us {wall:7.1f} us")


if __name__ == "__main__":
    main()
