"""The public status page under a crowd: /status and /api/v2/summary.json with 200 concurrent readers.

A `runbook serve --public` process on a database holding 90 days of history: HISTORY resolved
incidents spread over the window, each with public updates and a degradation, and OPEN open ones
(a staged degradation among them). wrk (Debian package) holds 200 connections open, each reading
as fast as it is answered, for SECONDS; its latency distribution gives p50 and p99.

The peer, in the same run: a bare Starlette app on Uvicorn (the same stack) answering the same
path with the same bytes, fetched from runbook once before the run; what serving those bytes to
200 readers costs on this machine without computing anything. Rounds alternate A B A B. The
figure is the ratio of runbook's p99 to the peer's.

    .venv/bin/python benchmarks/public_status.py [--seconds 10] [--rounds 2] [--history 60] [--open 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from intake import TOKEN, free_port, start, stop

ROOT = Path(__file__).resolve().parent.parent
READERS = 200
PEER_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
body = open(sys.argv[2], "rb").read()
kind = sys.argv[3]
async def serve(request):
    return Response(body, media_type=kind)
app = Starlette(routes=[Route(sys.argv[4], serve)])
print("listening on http://127.0.0.1:" + sys.argv[1], file=sys.stderr, flush=True)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", backlog=1024)
"""


def populate(db: Path, history: int, open_: int) -> None:
    """HISTORY resolved incidents over the last 89 days and OPEN open ones, with public updates
    posted by their communicate steps and degradations applied, as responders would leave them."""
    from runbook.catalog.loader import load_catalog
    from runbook.engine import Engine, VirtualClock
    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.store import Store

    catalog = load_catalog([str(ROOT / "playbooks")])
    now = datetime.now(UTC)
    clock = VirtualClock(now - timedelta(days=89))
    flags = db.parent / "flags.json"
    host = PluginHost(Settings(flags_file=str(flags), plugins_dir=None), entry_points=False)
    engine = Engine(Store(str(db), key=None), clock, host, catalog)
    step = timedelta(days=88) / max(history, 1)
    for n in range(history + open_):
        if n == history:
            clock.advance(seconds=(now - clock.now()).total_seconds() - 3600)
        playbook = catalog.models("Playbook")["login-outage" if n % 2 else "calls-failing-one-region"]
        params = {name: "eu-west-1" for name in playbook.parameters if name == "region"}
        iid = engine.open(playbook.id, "ana", params=params).id
        for _ in range(60):  # walk every track until done: the customer updates get posted on the way
            state = engine.state(iid)
            current = next((s for track, s in state.current.items() if s and track != "followup"), None)
            if current is None:
                break
            try:
                if state.playbook.step(current).kind in ("decision", "choose"):
                    engine.choose(iid, "ana", 0, current)
                else:
                    engine.complete(iid, "ana", current)
            except Exception:  # a step this walk cannot do (a wait, an approval, a plugin): skipped
                engine.skip(iid, "ana", current, "benchmark walk")
            clock.advance(minutes=3)
        if n < history:
            engine.resolve(iid, "ana")
            clock.advance(seconds=step.total_seconds())
    engine.store.close()


def wrk(port: int, path: str, seconds: int) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{READERS}", f"-d{seconds}s", "--latency", "--timeout", "10s",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or "Socket errors" in out:
        sys.exit(f"wrk saw failures:\n{out}")

    def ms(text: str) -> float:
        found = re.match(r"([\d.]+)(us|ms|s|m)$", text)
        if found is None:
            sys.exit(f"cannot read wrk's latency {text!r}:\n{out}")
        value, unit = found.groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]

    return {"p50": ms(re.search(r"50%\s+(\S+)", out).group(1)), "p99": ms(re.search(r"99%\s+(\S+)", out).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--history", type=int, default=60)
    parser.add_argument("--open", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="public-status-"))
    db = tmp / "incidents.db"
    populate(db, args.history, args.open)
    env = {**os.environ, "RUNBOOK_DB": str(db), "RUNBOOK_SERVE_TOKEN": TOKEN, "HOME": str(tmp),
           "RUNBOOK_PLUGINS_DIR": str(tmp / "none"), "XDG_CACHE_HOME": str(tmp / "cache"),
           "RUNBOOK_FLAGS": str(tmp / "flags.json")}
    proc, port = start([sys.executable, "-m", "runbook", "--catalog", str(ROOT / "playbooks"), "serve", "--public",
                        "--port", "0", "--log-level", "warning"], env, tmp / "serve.log")
    results: dict = {}
    try:
        listed = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/incidents.json").read())
        updates = sum(len(i["incident_updates"]) for i in listed["incidents"])
        print(f"the page shows {len(listed['incidents'])} incidents with {updates} public updates", flush=True)
        for path, kind in (("/status", "text/html; charset=utf-8"), ("/api/v2/summary.json", "application/json")):
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}").read()
            (tmp / "body").write_bytes(body)
            peer_port = free_port()
            peer, _ = start([sys.executable, "-c", PEER_APP, str(peer_port), str(tmp / "body"), kind, path],
                            dict(os.environ), tmp / "peer.log")
            try:
                for n in range(args.rounds):
                    order = [("runbook", port), ("peer", peer_port)]
                    for name, at in order if n % 2 == 0 else reversed(order):
                        results.setdefault((path, name), []).append(wrk(at, path, args.seconds))
            finally:
                stop(peer)
            print(f"{path}: {len(body)} bytes", flush=True)
    finally:
        stop(proc)
    print(f"\n{READERS} concurrent readers, {args.seconds} s per run, {args.rounds} rounds (A B A B); "
          f"{args.history} resolved and {args.open} open incidents over 90 days")
    print(f"{'path':<24} {'server':<8} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for path in ("/status", "/api/v2/summary.json"):
        for name in ("runbook", "peer"):
            runs = results[(path, name)]
            p50, p99, rps = (statistics.median(r[key] for r in runs) for key in ("p50", "p99", "rps"))
            print(f"{path:<24} {name:<8} {p50:>8.1f} {p99:>8.1f} {rps:>8.0f}")
        ratio = statistics.median(r["p99"] for r in results[(path, "runbook")]) / \
            statistics.median(r["p99"] for r in results[(path, "peer")])
        print(f"{path:<24} p99 ratio runbook/peer: {ratio:.2f}")


if __name__ == "__main__":
    main()
