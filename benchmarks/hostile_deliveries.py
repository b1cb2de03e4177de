"""What reading an Alertmanager delivery costs, each alert checked on its own, beside only decoding it.

    .venv/bin/python benchmarks/hostile_deliveries.py [--repeat 7]

For each delivery (a full one of valid alerts, and hostile ones) it times
`runbook.serve.alertmanager.parse(body)` (JSON decoding, then each alert validated on its own,
a malformed one turned into a rejected alert with its reason) against the peer
`json.loads(body)` on the same bytes: the floor, decoding alone, which checks nothing (and on
a 100,000-digit number raises, which was the server's 500). Runs alternate ours, peer, ours,
peer...; medians of `--repeat` runs each, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from runbook.serve.alertmanager import parse


def alert(n: int, **labels) -> dict:
    return {"status": "firing", "labels": {"alertname": "DiskFull", "instance": f"db-{n}.example",
                                           "severity": "warning", **labels},
            "annotations": {"summary": f"disk {n} is filling up", "runbook_url": "https://wiki.example/disk"},
            "startsAt": "2026-11-30T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example/graph?g0.expr=up", "fingerprint": f"{n:016x}"}


def body(alerts) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "receiver": "runbook", "alerts": alerts}).encode()


CASES = {
    "1,000 valid alerts": body([alert(n) for n in range(1000)]),
    "1,000 alerts, each a lone surrogate": body([alert(n, region="\udc80") for n in range(1000)]),
    "1 alert, a 100,000-digit number": body([alert(0, region="NUMBER")]).replace(b'"NUMBER"', b"7" * 100_000),
    "1 alert, a 1 MB label name": body([alert(0, **{"x" * 1_000_000: "v"})]),
    "1 alert, 64 labels of 4,000 characters": body([alert(0, **{f"l{m}": "v" * 4000 for m in range(61)})]),
}


def timed(fn) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        result = fn()
        outcome = "ok"
    except Exception as exc:  # the peer raising is part of the comparison
        result, outcome = None, f"raised {type(exc).__name__}"
    elapsed = time.perf_counter() - start
    if isinstance(result, tuple):
        alerts = result[0]
        outcome = f"{sum(1 for a in alerts if not a.rejected)} taken, {sum(1 for a in alerts if a.rejected)} rejected"
    return elapsed, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print("| delivery | size | parse (ours) | its outcome | json.loads (peer) | its outcome | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, data in CASES.items():
        ours, peer = [], []
        for _ in range(args.repeat):
            t, our_outcome = timed(lambda: parse(data))
            ours.append(t)
            t, peer_outcome = timed(lambda: json.loads(data))
            peer.append(t)
        a, b = statistics.median(ours), statistics.median(peer)
        print(f"| {name} | {len(data) / 1e6:.2f} MB | {a * 1000:.1f} ms | {our_outcome} | {b * 1000:.1f} ms | "
              f"{peer_outcome} | {a / b:.1f}x |")


if __name__ == "__main__":
    main()
