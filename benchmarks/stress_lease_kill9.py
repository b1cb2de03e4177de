"""kill -9 one of two `runbook serve` processes on one database, during intake and stage changes,
in a loop; the other must take the dead one's work over once its lease ends. Counts the damage.

Each trial: a fresh database (a SQLite file, or a PostgreSQL schema with --postgres), two servers
on it "on two hosts" (the second with RUNBOOK_HOSTNAME=stress-b), each with --lease LEASE and a
flag backend that takes 20-80 ms a write (a remote flag service: stage changes are in flight long
enough for a kill to land in one). The catalog is generated: ALERTS playbooks, each matching one
alert and applying its own staged degradation by itself (auto_degrade; stages 10/50/100 %, 1 s
hold, so stage changes keep coming from both servers' timer passes). Three clients post random
deliveries of the trial's alerts to both servers (as behind a load balancer); one server (A and B
in turn) is killed with SIGKILL after a random 50-1500 ms; every alert is then re-sent to the
survivor (Alertmanager retries). Then, from the database:

- lost: an alert with no row, or whose row did not end "opened"
- duplicated: two incidents for one alert, or an incident no alert row names
- pending: a row still pending when the trial ends (once all is quiet, at most 30 s after the kill)
- stranded: a flag change (degradation_started) without its result when the trial ends
- rollouts short: an incident whose staged degradation never reached 100 % (its stage changes
  stopped)
- take-over: from the kill until the dead server's leftover work (rows pending, changes in
  flight, owned by it) is all settled, for the trials where it left some; goal: within one lease
  (plus the survivor's work of taking it over: it wakes when the dead server's lease ends)

    PYTHONPATH=src .venv/bin/python benchmarks/stress_lease_kill9.py [--trials 200] [--lease 2] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
TOKEN = "stress-lease-token-0123456789"
ALERTS = 8
LAST_STAGE = 2  # of the generated playbooks' rollout: 10, 50, 100 %
DEADLINE = 30.0

PLAYBOOK = """apiVersion: runbook/v1
kind: Playbook
id: stress-{n}
title: Stress {n}
service: stress-{n}
severity: SEV2
escalation: rtc-default
symptoms:
  - id: bad
    summary: Stress alert {n}
    match: {{labels: {{alertname: Stress{n}}}}}
    auto_degrade: {{degradation: shed}}
degradations:
  shed:
    summary: Shed load {n}
    set: {{stress.shed-{n}: true}}
    restore: {{stress.shed-{n}: false}}
    rollout:
      stages: [10, 50, 100]
      hold: 1s
steps:
  - Look at it
"""

SLOW_FLAGS = '''"""A flag service that takes 20-80 ms a write (then the flag file, the next plugin, writes)."""
import random
import time

from runbook.pluginapi import hookimpl


def _wait():
    time.sleep(random.uniform(0.02, 0.08))


@hookimpl
def set_flag(name):
    _wait()


@hookimpl
def set_flag_share(name):
    _wait()


@hookimpl
def restore_flag(name):
    _wait()
'''


def alert(trial: int, n: int) -> dict:
    return {"status": "firing", "labels": {"alertname": f"Stress{n}", "trial": str(trial)},
            "annotations": {}, "startsAt": "2026-11-30T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "", "fingerprint": f"{trial:08x}{n:08x}"}


class Server:
    def __init__(self, tmp: Path, db: str, name: str, lease: float, host: str | None):
        self.name = name
        self.log = tmp / f"serve-{name}.log"
        env = {**os.environ, "RUNBOOK_DB": db, "RUNBOOK_SERVE_TOKEN": TOKEN, "HOME": str(tmp),
               "RUNBOOK_PLUGINS_DIR": str(tmp / "plugins"), "RUNBOOK_FLAGS": str(tmp / "flags.json"),
               "XDG_CACHE_HOME": str(tmp / "cache")}
        env.pop("RUNBOOK_CATALOG", None)
        if host:
            env["RUNBOOK_HOSTNAME"] = host
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runbook", "--catalog", str(ROOT / "playbooks"), "--catalog", str(tmp / "catalog"),
             "serve", "--port", "0", "--tick", "0.2", "--lease", str(lease), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        self.url = None

    def listening(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.search(r"listening on (http://\S+)", self.log.read_text())
            if found:
                self.url = found.group(1)
                return self.url
            if self.proc.poll() is not None:
                sys.exit(f"server {self.name} exited: {self.log.read_text()}")
            time.sleep(0.02)
        sys.exit(f"server {self.name} did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def post(url: str, alerts: list[dict]) -> int:
    body = json.dumps({"version": "4", "status": "firing", "receiver": "runbook", "alerts": alerts}).encode()
    request = urllib.request.Request(f"{url}/alertmanager", data=body, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # the server died under it


def in_flight(store, incidents) -> list[tuple[str, dict]]:
    """(incident, owner) of each flag change started and not settled."""
    return [(incident, owner) for incident in incidents for owner in _changes(store.events(incident))[0].values()]


def unfinished(store, incidents) -> list[str]:
    """Incidents whose staged degradation has not reached its last stage (100 %)."""
    return [incident for incident in incidents if _changes(store.events(incident))[1] != LAST_STAGE]


def _changes(events) -> tuple[dict, int | None]:
    """(degradation -> owner of its change in flight, the stage the degradation was last applied at)."""
    open_changes, stage = {}, None
    for event in events:
        name = event.data.get("degradation")
        if event.type == "degradation_started":
            open_changes[name] = event.data.get("owner") or {}
        elif event.type in ("degradation_applied", "degradation_failed", "degradation_restored"):
            open_changes.pop(name, None)
            if event.type == "degradation_applied":
                stage = event.data.get("stage")
    return open_changes, stage


def leftovers(store, victim_host: str, victim_pid: int) -> int:
    """Work the killed server owned: alert rows pending under it, flag changes it started."""
    def its(owner):
        return bool(owner) and owner.get("host") == victim_host and owner.get("pid") == victim_pid
    rows = [r for r in store.alerts(pending=True) if its(r["owner"])]
    changes = [c for c in in_flight(store, [i["id"] for i in store.incidents()]) if its(c[1])]
    return len(rows) + len(changes)


def _tail(store, incident: str) -> str:
    return " | ".join(f"{e.seq} {e.ts[11:23]} {e.type} {e.actor}" + (f" pid {e.data['owner'].get('pid')}"
                                                                     if e.data.get("owner") else "")
                      for e in store.events(incident)[-8:])


def _story(store, incident: str, owner: dict, victim: tuple, survivor: Server) -> str:
    """What a reader needs to find why a change stayed in flight: whose it is, the log's tail."""
    return (f"in flight on {incident}: owner {owner.get('host')} pid {owner.get('pid')} (killed: {victim[0]} pid "
            f"{victim[1]}; survivor pid {survivor.proc.pid}); log tail: {_tail(store, incident)}; survivor's log: "
            f"{survivor.log.read_text()[-600:]!r}")


def trial(tmp: Path, location: str, rng: random.Random, n: int, lease: float) -> dict:
    from runbook.store import open_store

    open_store(location, key=None).close()  # migrated once, before two servers race to
    servers = [Server(tmp, location, f"{n}-a", lease, None), Server(tmp, location, f"{n}-b", lease, "stress-b")]
    try:
        return _trial(servers, location, rng, n)
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()


def _trial(servers: list[Server], location: str, rng: random.Random, n: int) -> dict:
    from runbook.engine.clock import parse
    from runbook.engine.owner import holder
    from runbook.pluginapi import process_start
    from runbook.store import open_store

    for server in servers:
        server.listening()
    victim, survivor = (servers[0], servers[1]) if n % 2 == 0 else (servers[1], servers[0])
    stop = threading.Event()

    def client(seed: int):
        r = random.Random(seed)
        while not stop.is_set():
            target = r.choice(servers)
            post(target.url, [alert(n, i) for i in r.sample(range(ALERTS), r.randint(1, 3))])
    threads = [threading.Thread(target=client, args=(rng.random(),), daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.05, 1.5))
    host = "stress-b" if victim is servers[1] else os.uname().nodename
    lease_of = holder({"host": host, "pid": victim.proc.pid, "start": process_start(victim.proc.pid)})
    victim.proc.send_signal(signal.SIGKILL)
    killed, killed_at = time.monotonic(), time.time()
    victim.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    store = open_store(location, key=None)
    left = leftovers(store, host, victim.proc.pid)
    expiry = store.lease_expiry(lease_of)
    expiry = parse(expiry).timestamp() if expiry else None
    for i in range(ALERTS):  # the sender re-sends to the survivor what it could not deliver
        if post(survivor.url, [alert(n, i)]) != 200:
            sys.exit(f"re-send answered non-200; see {survivor.log}")
    took = first = None
    while left and took is None and time.monotonic() - killed < DEADLINE:  # polled closely: it is what is timed
        now_left = leftovers(store, host, victim.proc.pid)
        if first is None and now_left < left:
            first = time.monotonic() - killed
        if not now_left:
            took = time.monotonic() - killed
        time.sleep(0.01)
    while time.monotonic() - killed < DEADLINE:
        if took is None and not leftovers(store, host, victim.proc.pid):
            took = time.monotonic() - killed
        ids = [i["id"] for i in store.incidents()]
        if took is not None and not store.alerts(pending=True) and not in_flight(store, ids) and not unfinished(
                store, ids):
            break  # quiet: every incident open, every rollout at 100 %, nothing in flight
        time.sleep(0.05)
    rows = store.alerts()
    incidents = {i["id"] for i in store.incidents()}
    stranded = in_flight(store, incidents)
    short = unfinished(store, incidents)
    details = [_story(store, incident, owner, (host, victim.proc.pid), survivor) for incident, owner in stranded]
    details += [f"rollout of {incident} stopped short: {_tail(store, incident)}" for incident in short]
    details += [f"pending row {r['fingerprint']} {r['incident']} owner {r['owner']}" for r in rows
                if r["outcome"] == "pending"]
    store.close()
    survivor.stop()
    named = [r["incident"] for r in rows if r["incident"]]
    return {
        "lost": ALERTS - len([r for r in rows if r["outcome"] == "opened"]),
        "duplicated": (len(named) - len(set(named))) + len(incidents - set(named)),
        "pending": len([r for r in rows if r["outcome"] == "pending"]),
        "stranded": len(stranded),
        "short": len(short),
        "details": details,
        "left": left,
        "took": took if left else None,
        "first": first if left else None,  # the first of its items settled: the survivor woke and took over
        # how long after the dead server's lease ran out its work was taken over (first item, all)
        "past_lease": took - (expiry - killed_at) if left and took is not None and expiry else None,
        "first_past_lease": first - (expiry - killed_at) if left and first is not None and expiry else None,
        "incidents": len(incidents),
    }


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL schema per trial (tests/helpers)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="runbook-lease-kill9-"))
    (tmp / "catalog").mkdir()
    for i in range(ALERTS):
        (tmp / "catalog" / f"stress-{i}.yaml").write_text(PLAYBOOK.format(n=i))
    (tmp / "plugins").mkdir()
    (tmp / "plugins" / "slow_flags.py").write_text(SLOW_FLAGS)
    cluster = None
    if args.postgres:
        from helpers.pg_cluster import start_cluster

        cluster = start_cluster()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # the finally clauses stop what was started
    rng = random.Random(args.seed)
    totals = {"lost": 0, "duplicated": 0, "pending": 0, "stranded": 0, "short": 0}
    takeovers, past, first_past, left = [], [], [], 0
    try:
        for n in range(args.trials):
            location = cluster.new_schema() if cluster else str(tmp / f"trial-{n}.db")
            result = trial(tmp, location, rng, n, args.lease)
            for key in totals:
                totals[key] += result[key]
            left += result["left"]
            if result["took"] is not None:
                takeovers.append(result["took"])
            if result["past_lease"] is not None:
                past.append(result["past_lease"])
            if result["first_past_lease"] is not None:
                first_past.append(result["first_past_lease"])
            took = (f"{result['took']:.2f} s ({result['past_lease']:+.2f} s past its lease; the first item "
                    f"{result['first_past_lease']:+.2f} s)"
                    if result["took"] is not None and result["past_lease"] is not None else "-")
            for line in result["details"]:
                print(f"    {line}", flush=True)
            print(f"trial {n + 1:3d}: incidents {result['incidents']}/{ALERTS}  lost {result['lost']}  "
                  f"duplicated {result['duplicated']}  pending {result['pending']}  stranded {result['stranded']}  "
                  f"rollouts short {result['short']}  "
                  f"left by the kill {result['left']}  take-over {took}", flush=True)
            if cluster is None:
                for leftover in tmp.glob(f"trial-{n}.db*"):
                    leftover.unlink()
    finally:
        if cluster is not None:
            cluster.stop()
    within = sum(1 for t in takeovers if t <= args.lease)
    spread = (f"from the kill median {statistics.median(takeovers):.2f} s, p95 {_p95(takeovers):.2f} s, max "
              f"{max(takeovers):.2f} s (within one lease of {args.lease:g} s: {within}/{len(takeovers)}); after the "
              f"dead server's lease ran out median {statistics.median(past):.2f} s, p95 {_p95(past):.2f} s, max "
              f"{max(past):.2f} s; its first item settled after the lease ran out: median "
              f"{statistics.median(first_past):.2f} s, p95 {_p95(first_past):.2f} s, max {max(first_past):.2f} s"
              if takeovers and past and first_past else "none needed")
    print(f"{args.trials} trials on {'PostgreSQL' if cluster else 'SQLite'}, two servers, one killed -9 at "
          f"50-1500 ms: lost {totals['lost']}, duplicated {totals['duplicated']}, pending {totals['pending']}, "
          f"stranded {totals['stranded']}, rollouts stopped short {totals['short']}; work the kills left: {left} "
          f"item(s) in {len(takeovers)} trial(s); take-over: {spread}")
    sys.exit(1 if any(totals.values()) else 0)


if __name__ == "__main__":
    main()
