"""The incident store and engine beside the floor SQLite sets for the same durability.

    .venv/bin/python benchmarks/engine_store.py [--ops 2000] [--fold 100000] [--incidents 10000] [--dir DIR]

a) Durable appends. The floor: raw sqlite3 INSERTs of one event-sized row, each in its own
   transaction, with the store's pragmas (journal_mode=WAL, synchronous=FULL) into a table
   shaped like `events`. Beside it `Store.append` (the store alone: expected-sequence check,
   hash chain, projection update) and `Engine.note` (the real command path: re-read, check,
   append, fold the new event, plugin observers). The three alternate in blocks so drift
   and noise of a shared machine hit them alike. Per-op latency (median, p90), ops/s, and
   the ratio to the floor (goal: engine <= 2x).
b) Folding a 100,000-event incident: `store.events()`, the pure `fold`, the hash-chain
   `verify`, and the full `Engine.state()` load from a fresh Engine. Events/s.
c) Listing 10,000 incidents from the `incidents` projection. ms per query.

Everything goes to a fresh temporary directory (on the same disk as /tmp unless --dir).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from runbook.catalog import load
from runbook.engine import Engine, SystemClock
from runbook.engine.clock import iso
from runbook.engine.events import fold
from runbook.engine.metrics import verify
from runbook.engine.snapshot import Snapshot
from runbook.plugins import PluginHost
from runbook.settings import Settings
from runbook.store import Store

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK = "video-call-degraded"
BLOCK = 250


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, lat: list[float], total: float) -> dict:
    return {"name": name, "median_ms": statistics.median(lat) * 1000, "p90_ms": pct(lat, 0.9) * 1000,
            "ops_s": len(lat) / total}


# a) durable appends --------------------------------------------------------------------------

def raw_floor(path: Path):
    conn = sqlite3.connect(str(path), isolation_level=None)
    assert conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE events (incident TEXT, seq INTEGER, ts TEXT NOT NULL, actor TEXT, type TEXT NOT NULL, "
                 "data TEXT, prev_hash TEXT, hash TEXT NOT NULL, PRIMARY KEY (incident, seq))")
    prev = "0" * 64
    seq = 0

    def op(i: int) -> None:
        nonlocal seq
        seq += 1
        data = json.dumps({"text": f"note {i}"})
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     ["INC-RAW", seq, "2026-01-05T09:00:00.000000Z", "ana", "note_added", data, prev, prev])
        conn.execute("COMMIT")
    return op, conn.close


def store_append(path: Path, catalog):
    store = Store(str(path))
    incident = Engine(store, SystemClock(), None, catalog).open(PLAYBOOK, "ana").id
    seq = store.last_seq(incident)

    def op(i: int) -> None:
        nonlocal seq
        stored = store.append(incident, seq, [{"ts": iso(datetime.now(UTC)), "actor": "ana",
                                               "type": "note_added", "data": {"text": f"note {i}"}}])
        seq = stored[-1].seq
    return op, store.close


def engine_note(path: Path, catalog, flags: Path):
    store = Store(str(path))
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
    engine = Engine(store, SystemClock(), host, catalog)
    incident = engine.open(PLAYBOOK, "ana").id

    def op(i: int) -> None:
        engine.note(incident, "ana", f"note {i}")
    return op, store.close


def bench_appends(tmp: Path, catalog, ops: int) -> list[dict]:
    contenders = {"raw sqlite3 INSERT (floor)": raw_floor(tmp / "raw.sqlite"),
                  "Store.append": store_append(tmp / "store.sqlite", catalog),
                  "Engine.note": engine_note(tmp / "engine.sqlite", catalog, tmp / "flags.json")}
    lat = {name: [] for name in contenders}
    for op, _ in contenders.values():  # warm up: first fsyncs of a new file, caches
        for i in range(20):
            op(-i - 1)
    done = 0
    while done < ops:
        n = min(BLOCK, ops - done)
        for name, (op, _) in contenders.items():
            for i in range(done, done + n):
                start = time.perf_counter()
                op(i)
                lat[name].append(time.perf_counter() - start)
        done += n
    for _, close in contenders.values():
        close()
    return [summary(name, values, sum(values)) for name, values in lat.items()]


# b) fold ------------------------------------------------------------------------------------

def build_long_incident(path: Path, catalog, total: int, start: datetime | None = None) -> str:
    """An incident of `total` events (notes, a reminder every tenth), appended through Store.append
    1,000 per call, timed from `start` (default 2026-01-05 09:00 UTC) a second apart."""
    store = Store(str(path))
    store.conn.execute("PRAGMA synchronous = OFF")  # building only; timings use a fresh connection
    incident = Engine(store, SystemClock(), None, catalog).open(PLAYBOOK, "ana").id
    seq = store.last_seq(incident)
    start = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    while seq < total:
        batch = []
        for i in range(seq, min(total, seq + 1000)):
            ts = iso(start + timedelta(seconds=i))
            if i % 10 == 9:
                batch.append({"ts": ts, "actor": "runbook", "type": "reminder_fired",
                              "data": {"reminder": "status-update", "n": i // 10, "message": "Post a status update"}})
            else:
                batch.append({"ts": ts, "actor": f"user{i % 7}", "type": "note_added",
                              "data": {"text": f"observation {i}: p95 latency {i % 900} ms in eu-west"}})
        seq = store.append(incident, seq, batch)[-1].seq
    store.close()
    return incident


def best(fn, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def bench_fold(tmp: Path, catalog, total: int) -> list[tuple[str, float, int]]:
    path = tmp / "fold.sqlite"
    start = time.perf_counter()
    incident = build_long_incident(path, catalog, total)
    build = time.perf_counter() - start
    store = Store(str(path))
    snapshot = Snapshot.load(store.snapshot(incident))
    t_read, events = best(lambda: store.events(incident), 3)
    n = len(events)
    t_fold, state = best(lambda: fold(incident, events, snapshot), 3)
    assert state.last_seq == n
    t_verify, (ok, _) = best(lambda: verify(events), 3)
    assert ok
    t_state, state = best(lambda: Engine(Store(str(path))).state(incident), 3)
    assert state.last_seq == n
    store.close()
    return [("build through Store.append, 1,000 events per call (synchronous=OFF)", build, n),
            ("store.events(id): read and decode", t_read, n),
            ("fold(events) (pure)", t_fold, n),
            ("verify(events) (hash chain)", t_verify, n),
            ("Engine(fresh).state(id): snapshot + read + fold", t_state, n)]


# c) listing -----------------------------------------------------------------------------------

def bench_listing(tmp: Path, count: int) -> tuple[float, list[tuple[str, float, int]], dict]:
    path = tmp / "list.sqlite"
    store = Store(str(path))
    store.conn.execute("PRAGMA synchronous = OFF")  # building only
    snapshot = {"playbook": PLAYBOOK, "hash": "0" * 64, "text": "", "documents": []}
    start = datetime(2025, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    for i in range(count):
        ts = iso(start + timedelta(minutes=53 * i))
        events = [{"ts": ts, "actor": "ana", "type": "opened", "data": {"playbook": PLAYBOOK, "severity": "SEV2"}}]
        if i % 10:  # nine in ten are resolved
            events.append({"ts": ts, "actor": "ana", "type": "resolved", "data": {"kept_degradations": []}})
        store.create_incident(f"INC-{i:06X}", snapshot, {"playbook": PLAYBOOK if i % 3 else "login-outage",
                                                         "title": f"incident {i}", "service": "rtc-media",
                                                         "severity": "SEV2", "drill": i % 17 == 0}, events)
    build = time.perf_counter() - began
    store.close()
    store = Store(str(path))
    queries = {"incidents(limit=50)  (resolve_id's suggestions)": dict(limit=50),
               "incidents(open_only=True)  (`incident list`)": dict(open_only=True),
               "incidents(open_only=True, drills=False)": dict(open_only=True, drills=False),
               "incidents()  (all, `incident list --all`)": {}}
    out = []
    for label, kwargs in queries.items():
        times = []
        rows = store.incidents(**kwargs)
        for _ in range(20):
            t = time.perf_counter()
            rows = store.incidents(**kwargs)
            times.append(time.perf_counter() - t)
        out.append((label, statistics.median(times), len(rows)))
    plans = {}
    for label, sql in (("limit=50", "SELECT * FROM incidents ORDER BY opened_at DESC, id LIMIT 50"),
                       ("open_only", "SELECT * FROM incidents WHERE status != 'resolved' ORDER BY opened_at DESC, id")):
        plans[label] = "; ".join(row[3] for row in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall())
    store.close()
    return build, out, plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--fold", type=int, default=100_000)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--dir", help="where the temporary databases go (default: the system temp dir)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="runbook-bench-", dir=args.dir))
    try:
        catalog = load([str(ROOT / "playbooks")])
        print(f"databases in {tmp} (sqlite {sqlite3.sqlite_version})\n")

        print(f"a) durable appends, {args.ops:,} each, alternating blocks of {BLOCK}")
        rows = bench_appends(tmp, catalog, args.ops)
        floor = rows[0]
        print(f"   {'':30} {'median':>9} {'p90':>9} {'ops/s':>8} {'median/floor':>13} {'ops/s floor/x':>14}")
        for r in rows:
            print(f"   {r['name']:30} {r['median_ms']:7.3f}ms {r['p90_ms']:7.3f}ms {r['ops_s']:8.0f} "
                  f"{r['median_ms'] / floor['median_ms']:12.2f}x {floor['ops_s'] / r['ops_s']:13.2f}x")
        engine = rows[-1]
        ratio = floor["ops_s"] / engine["ops_s"]
        print(f"   Engine.note / floor: {engine['median_ms'] / floor['median_ms']:.2f}x median latency, "
              f"{ratio:.2f}x time per op (goal <= 2x): {'met' if ratio <= 2 else 'NOT met'}")

        print(f"\nb) fold of a {args.fold:,}-event incident (best of 3)")
        for label, seconds, n in bench_fold(tmp, catalog, args.fold):
            print(f"   {label:64} {seconds * 1000:9.0f} ms {n / seconds:12,.0f} events/s")

        print(f"\nc) listing {args.incidents:,} incidents (median of 20)")
        build, listing, plans = bench_listing(tmp, args.incidents)
        print(f"   (built with Store.create_incident in {build:.1f} s, synchronous=OFF)")
        for label, seconds, n in listing:
            print(f"   {label:52} {seconds * 1000:8.2f} ms  {n:6,} rows")
        for label, plan in plans.items():
            print(f"   plan {label}: {plan}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
