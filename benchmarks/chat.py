"""The team's chat on Matrix: how soon an incident is in the room, and whether a flood of room
messages slows alert intake. A real Synapse on loopback (the tests' helper; `./scripts/test`
installs it into .venv-synapse), a real `runbook serve` with the Matrix chat configured.

1. Alert → announcement: an alert is posted to `runbook serve` and opens an incident; a watcher
   in the room (a long-polling /sync) sees the incident's announcement. p50/p99 of the time from
   the intake's answer to the watcher seeing it, beside the floor: the same watcher seeing a
   message a client sent straight to the homeserver (the same homeserver, sync and client).
2. Intake during a flood: the intake's round-trip p99 while three users flood the room (plain
   messages and commands, as fast as the homeserver takes them), against the same with a quiet
   room; rounds alternate A B A B.

    .venv/bin/python benchmarks/chat.py [--alerts 40] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

from helpers.synapse import Synapse, interpreter  # noqa: E402
from intake import CATALOG, TOKEN, alert_body, percentile, round_trips, start, stop  # noqa: E402


class Watcher(threading.Thread):
    """A user long-polling /sync: when each message body first appeared."""

    def __init__(self, server: Synapse, token: str, room: str):
        super().__init__(daemon=True)
        self.server, self.token, self.room = server, token, room
        self.seen: list[tuple[float, str]] = []
        self.running = True

    def run(self) -> None:
        since = self.server.call("GET", "/_matrix/client/v3/sync?timeout=0", None, self.token)["next_batch"]
        while self.running:
            answer = self.server.call("GET", f"/_matrix/client/v3/sync?timeout=1000&since={since}", None, self.token)
            now = time.perf_counter()
            since = answer["next_batch"]
            room = answer.get("rooms", {}).get("join", {}).get(self.room, {})
            for event in room.get("timeline", {}).get("events", []):
                if event.get("type") == "m.room.message":
                    self.seen.append((now, event["content"].get("body", "")))

    def wait_for(self, text: str, after: int, timeout: float = 30.0) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for at, body in self.seen[after:]:
                if text in body:
                    return at
            time.sleep(0.005)
        raise SystemExit(f"{text!r} never reached the room")


def post(port: int, body: bytes) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/alertmanager", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def flood(server: Synapse, token: str, room: str, stop_at: threading.Event, sent: list) -> None:
    n = 0
    while not stop_at.is_set():
        text = "!status INC-NOPE" if n % 10 == 0 else f"chatter {n}: is anyone looking at the graphs?"
        try:
            server.say(token, room, text)
            n += 1
        except RuntimeError:
            pass
    sent.append(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=40, help="alerts (incidents announced) for the latency")
    parser.add_argument("--rounds", type=int, default=4, help="flood / quiet rounds, alternating")
    parser.add_argument("--per-round", type=int, default=100, help="alerts posted per intake round")
    args = parser.parse_args()
    python = interpreter()
    if python is None:
        sys.exit("no Synapse: run ./scripts/test once (it installs .venv-synapse), or set RUNBOOK_SYNAPSE_PYTHON")
    tmp = Path(tempfile.mkdtemp(prefix="runbook-chat-bench-"))
    synapse = Synapse(python, tmp / "synapse")
    synapse.start()
    serve = None
    try:
        bot, bot_token = synapse.register("runbook")
        watcher_id, watcher_token = synapse.register("watcher")
        room = synapse.create_room(bot_token, [watcher_id])
        synapse.join(watcher_token, room)
        floods = [synapse.register(f"flood{i}") for i in range(3)]
        for user, token in floods:
            synapse.call("POST", f"/_matrix/client/v3/rooms/{room}/invite", {"user_id": user}, bot_token)
            synapse.join(token, room)
        token_file = tmp / "matrix-token"
        token_file.write_text(bot_token)
        token_file.chmod(0o600)
        env = {**os.environ, "RUNBOOK_DB": str(tmp / "chat.db"), "RUNBOOK_SERVE_TOKEN": TOKEN, "HOME": str(tmp),
               "RUNBOOK_PLUGINS_DIR": str(tmp / "none"), "XDG_CACHE_HOME": str(tmp / "cache"),
               "RUNBOOK_MATRIX_HOMESERVER": synapse.url, "RUNBOOK_MATRIX_USER": bot,
               "RUNBOOK_MATRIX_TOKEN_FILE": str(token_file), "RUNBOOK_MATRIX_ROOM": room}
        argv = [sys.executable, "-m", "runbook", *(arg for c in CATALOG for arg in ("--catalog", c)), "serve",
                "--port", "0", "--log-level", "warning"]
        serve, port = start(argv, env, tmp / "serve.log")
        watcher = Watcher(synapse, watcher_token, room)
        watcher.start()

        # 1. alert -> announcement in the room, beside a message sent straight to the homeserver
        announce, floor = [], []
        for n in range(args.alerts):
            mark = len(watcher.seen)
            t0 = time.perf_counter()
            answer = post(port, alert_body(50_000_000 + n))
            answered = time.perf_counter()
            incident = answer["outcomes"][0]["incident"]
            announce.append(watcher.wait_for(f" {incident}: ", mark) - answered)
            mark = len(watcher.seen)
            t0 = time.perf_counter()
            synapse.say(watcher_token, room, f"floor {n}")
            floor.append(watcher.wait_for(f"floor {n}", mark) - t0)

        # 2. intake round trips, flood and quiet alternating
        quiet, flooded, sent = [], [], []
        for r in range(args.rounds * 2):
            stop_at = threading.Event()
            threads = []
            if r % 2 == 0:
                threads = [threading.Thread(target=flood, args=(synapse, token, room, stop_at, sent))
                           for _, token in floods]
                for t in threads:
                    t.start()
                time.sleep(1.0)  # the flood under way before the intake is timed
            times = round_trips(port, args.per_round, 60_000_000 + r * 100_000)
            (flooded if r % 2 == 0 else quiet).extend(times)
            stop_at.set()
            for t in threads:
                t.join()
        watcher.running = False
    finally:
        if serve is not None:
            stop(serve)
        synapse.stop()

    def ms(values, p):
        return percentile(values, p) * 1000

    print(f"alert -> announcement in the room ({args.alerts} incidents, Synapse on loopback)")
    print(f"  runbook serve + chat   p50 {ms(announce, 50):7.1f} ms  p99 {ms(announce, 99):6.1f} ms (goal: p99 < 2 s)")
    print(f"  floor: client -> room  p50 {ms(floor, 50):7.1f} ms   p99 {ms(floor, 99):7.1f} ms")
    print(f"  ratio (p50)            {statistics.median(announce) / statistics.median(floor):.2f}")
    print(f"intake round trip, {args.rounds} flooded and {args.rounds} quiet rounds alternating "
          f"({sum(sent)} flood messages, {sum(sent) / max(1, args.rounds):.0f} a round)")
    print(f"  flooded room  p50 {ms(flooded, 50):6.2f} ms   p99 {ms(flooded, 99):6.2f} ms")
    print(f"  quiet room    p50 {ms(quiet, 50):6.2f} ms   p99 {ms(quiet, 99):6.2f} ms")
    print(f"  ratio (p99)   {percentile(flooded, 99) / percentile(quiet, 99):.2f}")


if __name__ == "__main__":
    main()
