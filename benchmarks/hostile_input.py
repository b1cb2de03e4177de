"""How long runbook takes to refuse hostile files, beside PyYAML's own safe_load on the same bytes.

    .venv/bin/python benchmarks/hostile_input.py

Each case prints our time, peak traced memory and verdict, and what yaml.safe_load (the peer:
what a naive loader would do) makes of the same input.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml

from runbook.catalog.loader import load_file
from runbook.catalog.yamlsource import MAX_FILE_BYTES


def laughs(levels: int) -> bytes:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return ("\n".join(lines) + "\n").encode()


CASES = {
    "billion laughs (10 levels)": laughs(10),
    "block nesting, 5,000 levels": ("- " * 5000 + "x\n").encode(),
    "flow nesting, 100,000 levels": b"[" * 100_000 + b"]" * 100_000,
    "1 MB file, 61,000 keys": b"".join(b"k%07d: value\n" % i for i in range(MAX_FILE_BYTES // 17)),
    "just over the size limit": b"a: " + b"x" * MAX_FILE_BYTES,
    "binary (NUL bytes)": bytes(range(256)) * 100,
    "latin-1, not UTF-8": "title: caf\u00e9\n".encode("latin-1") * 1000,
}


def _run(fn):
    try:
        return fn()
    except BaseException as exc:  # the peer may blow the stack; that is the point of comparing
        return f"raised {type(exc).__name__}"


def measure(fn):
    """Wall time of a plain run, then peak memory of a second, traced run (tracing slows it down)."""
    start = time.perf_counter()
    outcome = _run(fn)
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    _run(fn)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak, outcome


def main() -> None:
    print(f"{'case':32} {'runbook':>9} {'peak MB':>8}  verdict  |  {'safe_load':>9} {'peak MB':>8}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in CASES.items():
            path = Path(tmp) / "case.yaml"
            path.write_bytes(data)

            def ours():
                docs, problems = load_file(str(path))
                return problems[0].message[:60] if problems else f"{len(docs)} document(s)"

            def peer():
                value = yaml.safe_load(data)
                return f"loaded {type(value).__name__}"

            t1, m1, v1 = measure(ours)
            t2, m2, v2 = measure(peer)
            print(f"{name:32} {t1 * 1000:7.0f}ms {m1 / 1e6:8.1f}  {v1}")
            print(f"{'':32} {'':9} {'':8}  {'':7}  |  {t2 * 1000:7.0f}ms {m2 / 1e6:8.1f}  {v2[:60]}")


if __name__ == "__main__":
    main()
