"""kill -9 `runbook serve` while it takes alerts; restart it; let the sender retry; count the damage.

Each trial starts a server on a fresh database, has 4 clients post overlapping deliveries of 30
alerts (random subsets, as Alertmanager groups and repeats them), kills the server with SIGKILL
after a random 20-600 ms, starts a new one on the same database and re-sends every alert once
(what Alertmanager does after a failed or unanswered delivery). Then it checks the ledger:

- lost: an alert with no row, or a firing alert whose row did not end "opened"
- duplicated: two incidents for one alert, or an incident no alert row names
- pending: a row still waiting for its incident after the restart and the re-send

    .venv/bin/python benchmarks/stress_intake_kill9.py [--trials 40]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "stress-intake-token-0123456789"
CATALOG = [str(ROOT / "tests" / "serve_catalog"), str(ROOT / "tests" / "fixtures" / "catalog" / "playbooks")]
ALERTS = 30


def alert(n: int) -> dict:
    return {"status": "firing", "labels": {"alertname": "DiskFull", "instance": f"db-{n}.example",
                                           "severity": "warning"},
            "annotations": {}, "startsAt": "2026-11-30T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "", "fingerprint": f"{n:016x}"}


def start(tmp: Path, db: Path, n: int) -> tuple[subprocess.Popen, str]:
    log = tmp / f"serve-{n}.log"
    env = {**os.environ, "RUNBOOK_DB": str(db), "RUNBOOK_SERVE_TOKEN": TOKEN, "HOME": str(tmp),
           "RUNBOOK_PLUGINS_DIR": str(tmp / "none"), "XDG_CACHE_HOME": str(tmp / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "runbook", *(arg for c in CATALOG for arg in ("--catalog", c)),
                             "serve", "--port", "0", "--log-level", "warning"],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://\S+)", log.read_text())
        if found:
            return proc, found.group(1)
        if proc.poll() is not None:
            sys.exit(f"server exited: {log.read_text()}")
        time.sleep(0.02)
    sys.exit("server did not start")


def post(url: str, alerts: list[dict]) -> int:
    body = json.dumps({"version": "4", "status": "firing", "receiver": "runbook", "alerts": alerts}).encode()
    request = urllib.request.Request(f"{url}/alertmanager", data=body,
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # the server died under it


def trial(tmp: Path, rng: random.Random, n: int) -> dict:
    db = tmp / f"trial-{n}.db"
    proc, url = start(tmp, db, n)
    stop = threading.Event()

    def client(seed: int):
        r = random.Random(seed)
        while not stop.is_set():
            if post(url, [alert(i) for i in r.sample(range(ALERTS), r.randint(1, 6))]) == 0:
                return
    threads = [threading.Thread(target=client, args=(rng.random(),)) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.02, 0.6))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    from runbook.store import Store

    store = Store(str(db), key=None)
    left_pending = len(store.alerts(pending=True))  # killed between recording an alert and opening it
    store.close()
    proc, url = start(tmp, db, n)  # a restart: recovers pending alerts at start
    for i in range(ALERTS):  # the sender re-sends what it could not deliver
        status = post(url, [alert(i)])
        if status != 200:
            sys.exit(f"re-send answered {status}")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    store = Store(str(db), key=None)
    rows = store.alerts()
    incidents = {i["id"] for i in store.incidents()}
    store.close()
    named = [r["incident"] for r in rows if r["incident"]]
    return {
        "rows": len(rows),
        "lost": ALERTS - len([r for r in rows if r["outcome"] == "opened"]),
        "duplicated": (len(named) - len(set(named))) + len(incidents - set(named)),
        "pending": len([r for r in rows if r["outcome"] == "pending"]),
        "incidents": len(incidents),
        "left_pending": left_pending,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="runbook-intake-kill9-"))
    rng = random.Random(args.seed)
    totals = {"lost": 0, "duplicated": 0, "pending": 0}
    mid_open = 0
    for n in range(args.trials):
        result = trial(tmp, rng, n)
        for key in totals:
            totals[key] += result[key]
        mid_open += result["left_pending"]
        print(f"trial {n + 1:3d}: incidents {result['incidents']:2d}/{ALERTS}  lost {result['lost']}  "
              f"duplicated {result['duplicated']}  pending {result['pending']}  "
              f"(left pending by the kill: {result['left_pending']})", flush=True)
    print(f"{args.trials} trials, kill -9 at a random 20-600 ms under 4 clients: lost {totals['lost']}, "
          f"duplicated {totals['duplicated']}, pending {totals['pending']}; alerts the kill left between "
          f"recorded and opened: {mid_open}")
    sys.exit(1 if any(totals.values()) else 0)


if __name__ == "__main__":
    main()
