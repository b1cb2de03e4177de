"""Time to the first frame a terminal actually shows: `runbook resume ID` against a minimal
Textual app, both in a real pseudo-terminal, both timed the same way.

    .venv/bin/python benchmarks/tui_pty.py [--runs 15] [--size 80x24] [--module]

For each run a fresh process is started on the slave side of a new pty (TERM=xterm-256color, the
window size set before it starts); the parent reads the master side and notes the moments the
bytes written so far, escape sequences removed, first hold each of the app's markers. runbook
has two: its first frame, the incident screen saying which incident it is resuming ("resuming"),
and the incident itself, filled in by a worker once the engine has settled it ("not
acknowledged", which only the incident's view shows). The minimal app has one, the word in its
Static. The clock starts just before the process is spawned. Runs alternate A B A B; each ratio
is the median of the per-pair ratios against the minimal app's first frame. Children then get
Ctrl-Q and, if still there, SIGKILL.

runbook is started by its console script, as a responder types it (`--module`: `python -m
runbook`, which adds runpy's import); the minimal app is a script run by the same interpreter.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MINIMAL = """
from textual.app import App
from textual.widgets import Footer, Static
class Minimal(App):
    def compose(self):
        yield Static("MINIMAL-MARKER")
        yield Footer()
Minimal().run()
"""
ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[\]P^_].*?(?:\x07|\x1b\\\\)|\x1b.", re.S)


def run_in_pty(argv: list[str], env: dict, markers: list[bytes], size: tuple[int, int],
               timeout: float = 30.0) -> list[float]:
    """Seconds from spawning `argv` on a new pty to the first output that shows each of `markers`."""
    master, slave = os.openpty()
    cols, rows = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
                            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    seen, found = b"", {}
    deadline = start + timeout
    try:
        while len(found) < len(markers) and time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            now = time.perf_counter()
            seen += chunk
            plain = ANSI.sub(b"", seen)
            for marker in markers:
                if marker not in found and marker in plain:
                    found[marker] = now - start
        if len(found) < len(markers):
            raise RuntimeError(f"{argv[-1]}: {[m for m in markers if m not in found]} never showed; "
                               f"output: {ANSI.sub(b'', seen)[-400:]!r}")
        return [found[marker] for marker in markers]
    finally:
        try:
            os.write(master, b"\x11")  # Ctrl-Q
            proc.wait(timeout=3)
        except (OSError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(master)


def seed(tmp: Path) -> tuple[dict, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(RUNBOOK_DB=str(tmp / "db.sqlite"), HOME=str(tmp), TERM="xterm-256color", COLUMNS="", LINES="",
               RUNBOOK_FLAGS=str(tmp / "flags.json"), XDG_CACHE_HOME=str(tmp / "cache"))
    env.pop("COLUMNS"), env.pop("LINES")
    incident = subprocess.run([sys.executable, "-m", "runbook", "--catalog", str(ROOT / "playbooks"), "incident",
                               "open", "video-call-degraded", "--as", "bench"], env=env, capture_output=True,
                              text=True, check=True).stdout.strip()
    return env, incident


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--size", default="80x24")
    parser.add_argument("--module", action="store_true", help="start runbook as `python -m runbook`")
    args = parser.parse_args()
    size = tuple(int(n) for n in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="runbook-tui-pty-"))
    env, incident = seed(tmp)
    # runbook as a responder starts it, its console script (`python -m runbook` adds runpy's few ms);
    # the minimal app as what it is, a script
    script = shutil.which("runbook", path=str(Path(sys.executable).parent))
    start = [script] if script and not args.module else [sys.executable, "-m", "runbook"]
    runbook = [*start, "--catalog", str(ROOT / "playbooks"), "resume", incident]
    minimal = [sys.executable, "-c", MINIMAL]
    markers = [b"resuming", b"not acknowledged"]
    for _ in range(2):  # warm the caches (bytecode, the plugin and schema caches) for both
        run_in_pty(runbook, env, markers, size)
        run_in_pty(minimal, env, [b"MINIMAL-MARKER"], size)
    first, shown, floor = [], [], []
    for _ in range(args.runs):
        first_frame, incident_shown = run_in_pty(runbook, env, markers, size)
        first.append(first_frame)
        shown.append(incident_shown)
        floor += run_in_pty(minimal, env, [b"MINIMAL-MARKER"], size)
    print(f"on a {size[0]}x{size[1]} pty, {args.runs} alternating pairs, fresh processes; runbook started as "
          f"{' '.join(start)}:")
    rows = [("runbook resume, first frame", first), ("runbook resume, incident shown", shown),
            ("minimal Textual, first frame", floor)]
    for name, times in rows:
        print(f"  {name:31} median {statistics.median(times) * 1000:6.0f} ms   "
              f"min {min(times) * 1000:6.0f}   max {max(times) * 1000:6.0f}")
    for name, times in rows[:2]:
        ratio = statistics.median([x / y for x, y in zip(times, floor)])
        print(f"  ratio, {name[len('runbook resume, '):]:15} {ratio:.2f}   (median of pair ratios; "
              f"goal for the first frame <= 1.3)")


if __name__ == "__main__":
    main()
