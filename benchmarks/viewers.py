"""1,000 live status-page viewers: what they cost `runbook serve` idle, and the intake beside them.

One `runbook serve` process with the status page on. Each round, alternating A B, B A, A B, ...:

- A (the peer): no viewer connected;
- B: VIEWERS clients hold /live open (server-sent events), as browsers on the status page do.

In each round: the server's CPU time (user + system, from /proc) over IDLE seconds with nothing
happening, as a share of one core; then ALERTS new alerts posted one at a time (each opens an
incident, whose events every viewer is sent) and their answer times. At the end each viewer must
have been sent the changes of the alerts posted while it watched. The viewers run in a process
of their own: reading 1,000 streams in the process that times the alerts would hold its GIL and
count the client's own waits as the server's; at nice 19, so that on this machine they yield the
cores to the server first, as browsers on other machines would.

    .venv/bin/python benchmarks/viewers.py [--viewers 1000] [--idle 10] [--alerts 300] [--rounds 3]

With `--viewers 0` both sides are the same (no viewers): the ratios it prints are the noise of
the measure on this machine (an A A run), the band a B A ratio is read against.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from intake import CATALOG, TOKEN, percentile, round_trips, start, stop

VIEW = "benchmark-viewer-token-0123456789"


def end(db: Path) -> int:
    """Where the log of every incident ends (the change feed's position)."""
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT coalesce(max(rowid), 0) FROM events").fetchone()[0]


def settled(db: Path, still: float = 3.0, limit: float = 180.0) -> int:
    """Wait until nothing has been appended for `still` seconds (the incidents just opened are
    open and the timer passes have taken them up), so that an idle window is idle; the end."""
    last, since, give_up = end(db), time.monotonic(), time.monotonic() + limit
    while time.monotonic() - since < still and time.monotonic() < give_up:
        time.sleep(0.25)
        now = end(db)
        if now != last:
            last, since = now, time.monotonic()
    return last


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Viewers:
    """`count` SSE clients in a process of their own (their reading never holds this process's
    GIL, where the alerts are timed); `changes[n]`: the change events viewer n was sent."""

    def __init__(self, port: int, count: int):
        context = multiprocessing.get_context("spawn")
        self.count = count
        self.changes = context.Array("q", count, lock=False)
        self._opened, self._stop = context.Event(), context.Event()
        self._failed = context.Array("c", 200, lock=False)
        self._process = context.Process(target=_watch_all, args=(port, count, self.changes, self._opened,
                                                                 self._stop, self._failed), daemon=True)
        self._process.start()
        while not self._opened.wait(0.5):
            if not self._process.is_alive():
                sys.exit(f"viewers: {self._failed.value.decode() or 'the client process exited'}")

    def close(self) -> None:
        self._stop.set()
        self._process.join(60)


def _watch_all(port, count, changes, opened, stop, failed) -> None:
    """The viewers' process: open every stream (in batches: the listen backlog is finite), count
    the change events each is sent, until `stop`."""
    os.nice(19)  # browsers are on other machines: here the viewers yield the two cores to the server first

    async def watch(n: int, ready):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {VIEW}\r\n"
                         "Accept: text/event-stream\r\n\r\n".encode())
            status = await reader.readline()
        except OSError as exc:
            ready.set_exception(exc)
            return
        if b" 200 " not in status:
            ready.set_exception(RuntimeError(f"viewer {n}: {status!r}"))
            return
        ready.set_result(True)
        tail = b""
        try:
            while chunk := await reader.read(65536):  # counted in chunks: a line at a time costs the client more
                text = tail + chunk
                changes[n] += text.count(b"event: change\n")
                tail = text[-13:]
        finally:
            writer.close()

    async def main():
        tasks = []
        try:
            for first in range(0, count, 100):
                ready = [asyncio.get_running_loop().create_future() for _ in range(first, min(first + 100, count))]
                tasks += [asyncio.create_task(watch(first + n, done)) for n, done in enumerate(ready)]
                await asyncio.gather(*ready)
        except Exception as exc:
            failed.value = str(exc).encode()[:199]
            return
        opened.set()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measured per round")
    parser.add_argument("--alerts", type=int, default=300, help="alerts posted per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="runbook-viewers-bench-"))
    env = {**os.environ, "RUNBOOK_DB": str(tmp / "viewers.db"), "RUNBOOK_SERVE_TOKEN": TOKEN,
           "RUNBOOK_VIEW_TOKEN": VIEW, "HOME": str(tmp), "RUNBOOK_PLUGINS_DIR": str(tmp / "none"),
           "XDG_CACHE_HOME": str(tmp / "cache")}
    argv = [sys.executable, "-m", "runbook", *[word for c in CATALOG for word in ("--catalog", c)], "serve",
            "--port", "0", "--log-level", "warning"]
    proc, port = start(argv, env, tmp / "serve.log")
    results = {"A": [], "B": []}
    delivered = []
    try:
        round_trips(port, 20, 90_000_000)  # warm-up: a few incidents for the timer pass to look at
        for r in range(args.rounds):
            # A B, then B A: each round's alerts leave incidents open that later timer passes look at,
            # so the side that always came second would always pay for more of them
            for kind in ("AB" if r % 2 == 0 else "BA"):
                start_at = settled(tmp / "viewers.db")
                viewers = Viewers(port, args.viewers) if kind == "B" and args.viewers else None
                time.sleep(1.0)  # connections settled
                seen = sum(viewers.changes) if viewers else 0
                before, t0 = cpu_seconds(proc.pid), time.monotonic()
                time.sleep(args.idle)
                share = (cpu_seconds(proc.pid) - before) / (time.monotonic() - t0)
                if viewers is not None and sum(viewers.changes) != seen:
                    print(f"  (round {r + 1}: {sum(viewers.changes) - seen} changes were sent during the idle window)")
                latencies = round_trips(port, args.alerts, 1_000_000 * (r + 1) + (0 if kind == "A" else 500_000))
                if viewers is not None:
                    appended = settled(tmp / "viewers.db") - start_at  # the incidents opened after the answers
                    time.sleep(2.0)  # the last changes on their way
                    if min(viewers.changes) != appended:
                        sys.exit(f"a viewer was sent {min(viewers.changes)} of the {appended} changes appended")
                    delivered.append(appended)
                    viewers.close()
                results[kind].append((share, latencies))
    finally:
        stop(proc)
    print(f"runbook serve, idle CPU and intake with {args.viewers} live viewers (B) and none (A), "
          f"{args.rounds} rounds A B, B A, ...:")
    for kind, name in (("A", "no viewers (peer)"), ("B", f"{args.viewers} viewers")):
        shares = [s for s, _ in results[kind]]
        lat = [t for _, ts in results[kind] for t in ts]
        print(f"  {name:<18} idle CPU {statistics.median(shares) * 100:5.2f}% of a core "
              f"(rounds {', '.join(f'{s * 100:.2f}%' for s in shares)})   intake p50 "
              f"{percentile(lat, 50) * 1000:6.2f} ms  p99 {percentile(lat, 99) * 1000:6.2f} ms")
    a = [t for _, ts in results["A"] for t in ts]
    b = [t for _, ts in results["B"] for t in ts]
    pairs = [percentile(tb, 99) / percentile(ta, 99) for (_, ta), (_, tb) in zip(results["A"], results["B"])]
    print(f"  intake p99 ratio per round: {', '.join(f'{x:.2f}x' for x in pairs)} (median "
          f"{statistics.median(pairs):.2f}x)")
    print(f"  intake p99 ratio (viewers / none) {percentile(b, 99) / percentile(a, 99):.2f}x; every viewer was sent "
          f"every change appended while it watched ({', '.join(map(str, delivered))}) "
          "(goal: idle CPU under 5% of a core, intake p99 unchanged)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
