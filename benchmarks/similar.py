""""Seen this before": how often the past incident whose mitigation worked is found, and how fast
the store searches 100,000 incidents.

    .venv/bin/python benchmarks/similar.py [--docs 100000] [--queries 400] [--block 50] [--no-postgres]

Replay (Recall@1, Recall@3). A replay set written for it, on the fixture catalog's 8 playbooks
× 7 regions, each pair with two past incidents through the engine: one whose mitigation worked
(a note naming the pair's symptom keyword, the fault that recurs there, and the region; marked
mitigated) and one resolved without a mitigation (another keyword of the playbook: "tried a
restart, no change"), and noise (an incident of a random playbook and region). Then for each
pair the fault recurs: a new incident opens as at minute zero (its region, when the playbook
has the parameter, else a first note naming it; and a first note with the pair's keyword). The
right answer is the pair's incident whose mitigation worked.
A: `engine.similar` (learning.rank: candidates scored by shared words' rarity, same playbook and
   a working mitigation counting double).
B: the store's text rank alone (all the new incident's words, in the store's order).

Latency: `--docs` synthetic incidents' words (playbook, service, region, symptom keywords and a
note of 12 words drawn from 3,000) in the search index of SQLite (FTS5) and PostgreSQL
(tsvector + GIN), the same documents in both; `--queries` searches of a new incident's words
(`learning.rank`: the latest 2,000 incidents' words for how common each word is, the text
search of the rarer words, the playbook's latest 20), alternating in blocks of `--block` (A B A B); p50,
p99 and the ratio of medians. What `similar` adds on top (folding the 3 matches' logs) does not
grow with the number of incidents.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
CATALOG = ROOT / "tests" / "fixtures" / "catalog" / "playbooks"
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "us-west-2", "ap-south-1", "sa-east-1", "ap-northeast-1"]


def keywords(playbook) -> list[str]:
    words = [k for s in playbook.symptoms for k in getattr(s, "keywords", ()) or ()]
    return words or [s.summary for s in playbook.symptoms] or [playbook.title]


def replay(engine, catalog, rng) -> tuple[dict, dict]:
    from runbook.engine import learning

    playbooks = [pb for pb in catalog.models("Playbook").values()]
    expected, queries = {}, []

    def open_at(pb, region, note):
        params = {"region": region} if "region" in pb.parameters else None
        state = engine.open(pb.id, "ana", params=params)
        if params is None:
            engine.note(state.id, "ana", f"only {region}")
        if note:
            engine.note(state.id, "ana", note)
        return state

    history = [(pb, region) for pb in playbooks for region in REGIONS]
    rng.shuffle(history)
    cause = {(pb.id, region): rng.choice(keywords(pb)) for pb, region in history}  # what recurs there
    for pb, region in history:
        words = keywords(pb)
        fixed = open_at(pb, region, f"{cause[(pb.id, region)]} in {region}, fixed by the playbook")
        engine.mitigate(fixed.id, "bo")
        engine.resolve(fixed.id, "bo")
        engine.clock.advance(minutes=30)
        other = [w for w in words if w != cause[(pb.id, region)]] or words
        failed = open_at(pb, region, f"{rng.choice(other)} in {region}; tried a restart, no change")
        engine.resolve(failed.id, "ana")
        engine.clock.advance(minutes=30)
        noise_pb = rng.choice(playbooks)
        engine.resolve(open_at(noise_pb, rng.choice(REGIONS), rng.choice(keywords(noise_pb))).id, "ana")
        engine.clock.advance(minutes=30)
        expected[(pb.id, region)] = fixed.id
    engine.clock.advance(days=7)
    for pb, region in history:
        queries.append(((pb.id, region), open_at(pb, region, cause[(pb.id, region)]).id))
        engine.clock.advance(minutes=5)

    def recall(rank) -> dict:
        hits1 = hits3 = 0
        for key, incident in queries:
            ranked = rank(incident)
            if DEBUG and ranked[:1] != [expected[key]]:
                words = {r["incident"]: r["words"] for r in engine.store.latest_words(10**6, "9")}
                print("miss", key, "\n  query", words[incident], "\n  want ", words[expected[key]],
                      "\n  got  ", words.get(ranked[0]) if ranked else None)
            hits1 += ranked[:1] == [expected[key]]
            hits3 += expected[key] in ranked[:3]
        return {"n": len(queries), "@1": hits1 / len(queries), "@3": hits3 / len(queries)}

    def text_only(incident):
        state = engine.state(incident)
        rows = engine.store.search(learning.terms(learning.words(state))[:learning.MAX_TERMS], 3,
                                   exclude=state.id, before=learning.iso(state.opened_at))
        return [r["incident"] for r in rows]

    return (recall(lambda incident: [m["incident"] for m in engine.similar(incident)]), recall(text_only))


VOCAB_SEED = 7
DEBUG = False


def synthetic_docs(catalog, n: int, rng) -> list[tuple]:
    from runbook.engine import learning

    playbooks = list(catalog.models("Playbook").values())
    vocab = [f"w{i}" for i in range(3000)]
    docs = []
    for i in range(n):
        pb = rng.choice(playbooks)
        text = " ".join([pb.id, pb.service, pb.title, rng.choice(REGIONS), *rng.sample(keywords(pb), 1),
                         *rng.sample(vocab, 12)])
        docs.append((f"INC-{i:06d}", 5, pb.id, f"2026-{1 + i % 12:02d}-01T00:00:{i % 60:02d}.000000Z", False,
                     rng.random() < 0.5, " ".join(learning.terms(text))))
    return docs


def load_docs(store, docs) -> float:
    """Bulk-load the index (one transaction: the product writes one incident at a time)."""
    started = time.perf_counter()
    with store._write():
        for incident, seq, playbook, opened_at, drill, mitigated, words in docs:
            fts = store._put_words(incident, words)
            store._run("INSERT INTO search_docs (incident, seq, playbook, opened_at, drill, mitigated, words, "
                       "fts_rowid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [incident, seq, playbook, opened_at, int(drill), int(mitigated), words, fts])
    return time.perf_counter() - started


def latency(stores: dict, queries: list[tuple[list[str], str]], block: int) -> dict:
    """The store's part of `similar` (learning.rank: the sample, the text search, the playbook's latest)."""
    from runbook.engine import learning

    times = {name: [] for name in stores}
    for start in range(0, len(queries), block):
        for name, store in stores.items():  # A B A B
            for terms, playbook in queries[start:start + block]:
                t = time.perf_counter()
                learning.rank(store, terms, playbook, "INC-new", "2027")
                times[name].append(time.perf_counter() - t)
    return times


def pct(values, q) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--block", type=int, default=50)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()

    from runbook.catalog import load
    from runbook.engine import Engine, VirtualClock, learning
    from runbook.store import open_store

    catalog = load([str(CATALOG)])
    rng = random.Random(30)
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "replay.sqlite"), key=None)
        engine = Engine(store, VirtualClock(), None, catalog)
        ours, text = replay(engine, catalog, rng)
        store.close()
        print(f"replay: {ours['n']} new incidents, each with its past (3 per playbook x region)")
        print(f"  A similar (text rank + playbook + mitigation worked): Recall@1 {ours['@1']:.3f}  "
              f"Recall@3 {ours['@3']:.3f}  (goal @3 >= 0.8)")
        print(f"  B text rank alone:                                   Recall@1 {text['@1']:.3f}  "
              f"Recall@3 {text['@3']:.3f}")

        docs = synthetic_docs(catalog, args.docs, random.Random(VOCAB_SEED))
        stores = {"sqlite": open_store(str(Path(tmp) / "big.sqlite"), key=None)}
        cluster = None
        if not args.no_postgres:
            from helpers.pg_cluster import start_cluster

            cluster = start_cluster()
            stores["postgres"] = open_store(cluster.new_schema(), key=None)
        try:
            for name, s in stores.items():
                print(f"loaded {args.docs} incidents' words into {name} in {load_docs(s, docs):.1f} s")
            if "postgres" in stores:
                stores["postgres"]._run("ANALYZE search_docs")
            qrng = random.Random(11)
            queries = []
            for _ in range(args.queries):
                pb = qrng.choice(list(catalog.models("Playbook").values()))
                queries.append((learning.terms(" ".join([pb.id, pb.service, pb.title, qrng.choice(REGIONS),
                                                         qrng.choice(keywords(pb))]))[:learning.MAX_TERMS], pb.id))
            latency(stores, queries[:20], 10)  # warm-up
            times = latency(stores, queries, args.block)
            for name, values in times.items():
                print(f"  {name}: search over {args.docs} incidents, top 20: p50 {pct(values, .5) * 1000:.1f} ms  "
                      f"p99 {pct(values, .99) * 1000:.1f} ms  max {max(values) * 1000:.1f} ms  (goal p99 <= 50 ms)")
            if len(times) == 2:
                ratio = statistics.median(times["sqlite"]) / statistics.median(times["postgres"])
                print(f"  ratio of medians sqlite / postgres: {ratio:.2f}")
        finally:
            for s in stores.values():
                s.close()
            if cluster is not None:
                cluster.stop()


if __name__ == "__main__":
    main()
