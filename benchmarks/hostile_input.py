"""How long runbook takes to refuse hostile files, beside libyaml's safe C loader on the same bytes.

    .venv/bin/python benchmarks/hostile_input.py [--repeat 5]

Each case prints our time, peak traced memory and verdict, and what `yaml.load(data,
Loader=yaml.CSafeLoader)` (the peer: the fastest safe loader a naive tool would use, the same
libyaml runbook's loader is built on) makes of the same input. Times are the median of
`--repeat` runs, ours and the peer's alternating; peak memory comes from one more, traced run.
"""

from __future__ import annotations

import argparse
import statistics
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


def timed(fn):
    start = time.perf_counter()
    outcome = _run(fn)
    return time.perf_counter() - start, outcome


def peak(fn) -> int:
    """Peak memory of one traced run (tracing slows it down, so it is not timed)."""
    tracemalloc.start()
    _run(fn)
    _, top = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not hasattr(yaml, "CSafeLoader"):
        raise SystemExit("PyYAML was built without libyaml: no CSafeLoader to compare with")
    print(f"{'case':32} {'runbook':>9} {'peak MB':>8}  verdict  |  {'CSafeLoader':>11} {'peak MB':>8}  outcome")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in CASES.items():
            path = Path(tmp) / "case.yaml"
            path.write_bytes(data)

            def ours():
                docs, problems = load_file(str(path))
                return problems[0].message[:60] if problems else f"{len(docs)} document(s)"

            def peer():
                value = yaml.load(data, Loader=yaml.CSafeLoader)  # the safe C loader
                return f"loaded {type(value).__name__}"

            a, b = [], []
            for _ in range(args.repeat):  # A B A B
                t, v1 = timed(ours)
                a.append(t)
                t, v2 = timed(peer)
                b.append(t)
            t1, t2 = statistics.median(a), statistics.median(b)
            m1, m2 = peak(ours), peak(peer)
            print(f"{name:32} {t1 * 1000:7.1f}ms {m1 / 1e6:8.1f}  {v1}")
            print(f"{'':32} {'':9} {'':8}  {'':7}  |  {t2 * 1000:9.1f}ms {m2 / 1e6:8.1f}  {v2[:60]}")


if __name__ == "__main__":
    main()
