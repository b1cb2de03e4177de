"""Status page: from a note appended to an incident's log to a browser showing it, live.

A `runbook serve` process serves the page; Debian's headless Chromium (driven by Playwright)
holds the incident's page open. This process appends notes through the engine, as the CLI or a
TUI in another process would, one at a time at irregular intervals, taking the wall clock right
before each append. In the page a MutationObserver takes `Date.now()` when <main> first holds the
note's text. The same machine's wall clock on both sides, so latency = seen - appended.

Beside it, in the same run, the floor: the broadcaster's poll interval (Broadcaster.POLL in runbook/broadcaster.py:
an append waits half of it on average before the stream sees it), a bare fetch round trip from
the page (/healthz), and a fetch of the incident page itself (what each live refresh costs).

    .venv/bin/python benchmarks/status_page.py [--notes 50]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from runbook.broadcaster import Broadcaster
from runbook.catalog.loader import load_catalog
from runbook.engine import Engine, SystemClock
from runbook.store import Store

ROOT = Path(__file__).resolve().parent.parent
CATALOG = [str(ROOT / "tests" / "serve_catalog"), str(ROOT / "tests" / "fixtures" / "catalog" / "playbooks")]
TOKEN = "benchmark-intake-token-0123456789"
VIEW = "benchmark-viewer-token-0123456789"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

OBSERVE = """() => {
  window.__seen = {};
  window.__want = [];
  const look = () => {
    const text = document.getElementById('main').textContent;
    for (const marker of window.__want) {
      if (!(marker in window.__seen) && text.includes(marker)) { window.__seen[marker] = Date.now(); }
    }
  };
  new MutationObserver(look).observe(document.getElementById('main'),
                                     {childList: true, subtree: true, characterData: true});
}"""

ROUND_TRIPS = """async ([path, n]) => {
  const out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const response = await fetch(path, {credentials: 'same-origin'});
    await response.text();
    out.push(performance.now() - t);
  }
  return out;
}"""


def quantile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    tmp = Path(tempfile.mkdtemp(prefix="runbook-status-bench-"))
    db = tmp / "incidents.db"
    env = {**os.environ, "RUNBOOK_DB": str(db), "HOME": str(tmp), "RUNBOOK_SERVE_TOKEN": TOKEN,
           "RUNBOOK_VIEW_TOKEN": VIEW, "RUNBOOK_PLUGINS_DIR": str(tmp / "no-plugins"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH")) if p)}
    env.pop("RUNBOOK_CATALOG", None)
    engine = Engine(Store(str(db), key=None), SystemClock(), None, load_catalog(CATALOG))
    incident = engine.open("calls-failing-one-region", "bench", params={"region": "eu-west-1"}).id
    log = tmp / "serve.log"
    catalog_args = [a for path in CATALOG for a in ("--catalog", path)]
    server = subprocess.Popen([sys.executable, "-m", "runbook", *catalog_args, "serve", "--port", "0"],
                              stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env, cwd=tmp)
    try:
        end = time.monotonic() + 30
        while not (found := re.search(r"listening on (http://\S+)", log.read_text())):
            if server.poll() is not None or time.monotonic() > end:
                raise SystemExit(f"runbook serve did not start: {log.read_text()}")
            time.sleep(0.05)
        url = found.group(1)
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(str(tmp / "profile"), executable_path=CHROMIUM,
                                                           headless=True, args=ARGS)
            page = context.new_page()
            page.goto(f"{url}/incidents/{incident}?token={VIEW}")
            page.wait_for_function("document.getElementById('live-state').textContent === '· live'")
            page.evaluate(OBSERVE)
            browser = re.search(r"Chrome/\S+", page.evaluate("navigator.userAgent")).group(0)
            healthz = page.evaluate(ROUND_TRIPS, ["/healthz", 50])
            fetches = page.evaluate(ROUND_TRIPS, [f"/incidents/{incident}", 50])

            latencies = []
            for n in range(args.notes):
                marker = f"bench-note-{n:04d}-{rng.getrandbits(32):08x}"
                page.evaluate("m => window.__want.push(m)", marker)
                time.sleep(rng.uniform(0.05, 0.35))  # not in step with the server's poll
                appended = time.time()
                engine.note(incident, "bench", marker)
                page.wait_for_function("m => m in window.__seen", arg=marker, timeout=10_000)
                seen = page.evaluate("m => window.__seen[m]", marker) / 1000
                latencies.append((seen - appended) * 1000)
            context.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
        engine.store.close()

    ms = lambda v: f"{v:7.1f} ms"  # noqa: E731
    print(f"{args.notes} notes on {incident} (calls-failing-one-region), headless {browser}")
    print(f"append -> shown in the browser   p50 {ms(statistics.median(latencies))}   "
          f"p99 {ms(quantile(latencies, 0.99))}   max {ms(max(latencies))}")
    print(f"floor: server poll interval      {ms(Broadcaster.POLL * 1000)}  "
          f"(waits {ms(Broadcaster.POLL * 500)} on average)")
    print(f"floor: bare fetch /healthz       p50 {ms(statistics.median(healthz))}   p99 {ms(quantile(healthz, 0.99))}")
    print(f"floor: fetch of the page         p50 {ms(statistics.median(fetches))}   p99 {ms(quantile(fetches, 0.99))}")
    floor = Broadcaster.POLL * 500 + statistics.median(fetches)
    print(f"p50 over floor (poll/2 + page fetch = {floor:.1f} ms): {statistics.median(latencies) / floor:.2f}x")


if __name__ == "__main__":
    main()
