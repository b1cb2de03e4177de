"""TUI responsiveness, against the floor of this stack in the same run.

    .venv/bin/python benchmarks/tui.py [--runs 21]

1. Time to the first rendered incident screen: a fresh process runs `runbook resume ID` (the
   real command, its TUI headless) against a fresh process running a minimal Textual app,
   alternately. Each child reports the first frame handed to the terminal driver that shows
   its content (the goal's measure) and the moment its screen has settled after Textual's
   start-up layout passes. The ratio is the median of the per-pair ratios.
2. Keypress-to-update latency on an incident whose log has 10,000 events: keys that only
   re-render (tab), and a key that goes through the engine (m: mark mitigated, then the
   refresh), measured until the screen shows the result.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Both children time the same two moments. "first frame": the first frame Textual hands to its
# terminal driver (App._display) that shows the app's content (for runbook, the incident screen
# with its view). "settled": the first call_after_refresh callback queued when the content is
# set, which runs only after Textual's start-up resize passes have laid out and drawn it again.
FIRST_FRAME = """
import time
from textual.app import App
display = App._display
def first_frame(self, screen, renderable):
    display(self, screen, renderable)
    if renderable is not None and not getattr(self, "framed", False) and shows_content(screen):
        self.framed = True
        print("frame", time.time(), flush=True)
App._display = first_frame
def settled(app):
    print("settled", time.time(), flush=True)
    app.exit()
"""

MINIMAL = FIRST_FRAME + """
from textual.widgets import Static, Footer
class Minimal(App):
    def compose(self):
        yield Static("hello")
        yield Footer()
    def on_mount(self):
        self.call_after_refresh(settled, self)
shows_content = lambda screen: True
Minimal().run(headless=True)
"""

RUNBOOK = """
import sys
import gc
gc.disable()  # what `runbook resume` does before it loads the TUI (the patching below loads it early)
""" + FIRST_FRAME + """
from runbook.tui.app import RunbookApp
from runbook.tui.screens.incident import IncidentScreen
shows_content = lambda screen: isinstance(screen, IncidentScreen) and screen.view is not None
original = IncidentScreen.show
def show(self, view):
    if not getattr(self, "queued", False):  # queued before the screen's own callbacks
        self.queued = True
        self.app.call_after_refresh(settled, self.app)
    original(self, view)
IncidentScreen.show = show
db, flags, incident = sys.argv[1:4]
import runbook.cli.tui
runbook.cli.tui.require_terminal = lambda command, instead: None  # headless here: no terminal to need
run = RunbookApp.run
RunbookApp.run = lambda self: run(self, headless=True)
from runbook.__main__ import main
sys.argv = ["runbook", "--db", db, "resume", incident, "--as", "bench"]
main()
"""


def timed_process(code: str, *args: str, env: dict | None = None) -> tuple[float, float]:
    """Seconds from launching the process to its first frame and to the settled screen."""
    start = time.time()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, env=env)
    moments = dict(line.split() for line in proc.stdout.splitlines() if line.startswith(("frame ", "settled ")))
    if proc.returncode != 0 or len(moments) != 2:
        sys.exit(f"the timed process failed ({proc.returncode}): {proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return float(moments["frame"]) - start, float(moments["settled"]) - start


def make_incident(directory: Path, events: int, opened=None):
    from runbook.catalog import load
    from runbook.engine import Engine, VirtualClock
    from runbook.engine.clock import iso
    from runbook.plugins import PluginHost
    from runbook.settings import Settings
    from runbook.store import Store

    store = Store(str(directory / "db.sqlite"))
    clock = VirtualClock(opened) if opened else VirtualClock()
    host = PluginHost(Settings(flags_file=str(directory / "flags.json"), plugins_dir=None), entry_points=False)
    engine = Engine(store, clock, host, load([str(ROOT / "playbooks")]))
    incident = engine.open("video-call-degraded", "bench", incident="INC-BENCH").id
    seq = store.last_seq(incident)
    batch = 1000
    while seq < events:
        count = min(batch, events - seq)
        store.append(incident, seq, [{"ts": iso(clock.now()), "actor": "bench", "type": "note_added",
                                      "data": {"text": f"note {seq + i}"}} for i in range(count)])
        seq += count
    return engine, incident


class Minimal:
    """The floor: a Textual app whose key updates one Static, measured the same way."""

    @staticmethod
    def build():
        from textual.app import App
        from textual.widgets import Footer, Static

        class MinimalApp(App):
            BINDINGS = [("tab", "flip", "Flip")]

            def compose(self):
                yield Static("x", id="s")
                yield Footer()

            def action_flip(self):
                self.query_one("#s").update(str(time.time()))
        return MinimalApp()


async def press_costs(app, key: str, presses: int, ready=None):
    """(wall, cpu) seconds per keypress, until Textual reports the app idle and the screen redrawn.

    Pilot's idle detection adds fixed waits to the wall time; the CPU time is the work the
    keypress really caused (what a responder waits for on an idle machine).
    """
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(5):
            await pilot.pause()
            await app.workers.wait_for_complete()
        wall, cpu = [], []
        for _ in range(presses):
            w, c = time.perf_counter(), time.process_time()
            await pilot.press(key)
            await pilot.pause()
            wall.append(time.perf_counter() - w)
            cpu.append(time.process_time() - c)
        engine_key = None
        if ready is not None:
            w, c = time.perf_counter(), time.process_time()
            await pilot.press("m")
            while not ready(app):
                await app.workers.wait_for_complete()
                await pilot.pause()
            engine_key = (time.perf_counter() - w, time.process_time() - c)
    return wall, cpu, engine_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        # opened a minute ago, as when a responder reopens the incident they are working on
        engine, incident = make_incident(directory, 100, datetime.now(UTC) - timedelta(minutes=1))
        db, flags = str(directory / "db.sqlite"), str(directory / "flags.json")
        # Python's default: compiled modules are cached as bytecode, as a pip install leaves them
        # (some sandboxes set PYTHONDONTWRITEBYTECODE, which would recompile runbook on every start
        # while Textual, installed by pip, keeps its bytecode). The first run of each warms that cache.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"RUNBOOK_FLAGS": flags}
        timed_process(MINIMAL, env=env)
        timed_process(RUNBOOK, db, flags, incident, env=env)
        minimal, ours = [], []
        for _ in range(args.runs):  # interleaved so both see the same machine load
            minimal.append(timed_process(MINIMAL, env=env))
            ours.append(timed_process(RUNBOOK, db, flags, incident, env=env))
        med = statistics.median
        print(f"first screen, fresh process (median of {args.runs}):      first frame   settled")
        m_frame, m_settled = med(m[0] for m in minimal), med(m[1] for m in minimal)
        o_frame, o_settled = med(o[0] for o in ours), med(o[1] for o in ours)
        print(f"  minimal Textual app                        {m_frame * 1000:7.0f} ms {m_settled * 1000:7.0f} ms")
        print(f"  runbook resume (incident screen)           {o_frame * 1000:7.0f} ms {o_settled * 1000:7.0f} ms")
        frame_ratios = sorted(o[0] / m[0] for m, o in zip(minimal, ours))
        settled_ratios = sorted(o[1] / m[1] for m, o in zip(minimal, ours))
        q1, q2, q3 = statistics.quantiles(frame_ratios, n=4)
        print(f"  ratio (median of the {args.runs} pairs)         {q2:7.2f}    {med(settled_ratios):7.2f}"
              f"   (goal <= 1.5 on the first frame; quartiles {q1:.2f}-{q3:.2f})")

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        engine, incident = make_incident(Path(tmp), args.events)
        engine.state(incident)
        print(f"\nincident with {len(engine.state(incident).events):,} events (built and folded in "
              f"{time.perf_counter() - start:.1f} s)")
        from runbook.service import EngineService
        from runbook.tui.app import build_app

        floor_wall, floor_cpu, _ = asyncio.run(press_costs(Minimal.build(), "tab", 30))
        app = build_app(EngineService(engine), engine.catalog, "bench", incident, live=False)
        wall, cpu, engine_key = asyncio.run(press_costs(
            app, "tab", 30, ready=lambda a: a.screen.view is not None and a.screen.view.status == "mitigated"))
        med = statistics.median
        print(f"  minimal app, key → redraw: wall {med(floor_wall) * 1000:.0f} ms (Pilot's idle wait), "
              f"cpu {med(floor_cpu) * 1000:.1f} ms")
        print(f"  runbook, tab → redraw:     wall {med(wall) * 1000:.0f} ms, cpu {med(cpu) * 1000:.1f} ms "
              f"(max {max(cpu) * 1000:.1f}); work beyond the floor {(med(cpu) - med(floor_cpu)) * 1000:.1f} ms "
              "(goal < 50 ms)")
        print(f"  runbook, m → engine command → screen updated: wall {engine_key[0] * 1000:.0f} ms, "
              f"cpu {engine_key[1] * 1000:.1f} ms (goal < 50 ms)")


if __name__ == "__main__":
    main()
