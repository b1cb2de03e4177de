"""Time to the first frame a terminal actually shows: runbook's incident screen against a minimal
Textual app, both in a real pseudo-terminal, both timed the same way.

    .venv/bin/python benchmarks/tui_pty.py [--runs 15] [--size 80x24] [--module]

For each run a fresh process is started on the slave side of a new pty (TERM=xterm-256color, the
window size set before it starts); the parent reads the master side and notes the moment the
bytes written so far first hold the app's marker: the incident id for `runbook resume ID`, the
word in the minimal app's Static. That is what a person waits for: the first bytes on their
terminal that show the incident. The clock starts just before the process is spawned. Runs
alternate A B A B; the ratio is the median of the per-pair ratios. Children then get Ctrl-Q and,
if still there, SIGKILL.

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


def run_in_pty(argv: list[str], env: dict, marker: bytes, size: tuple[int, int], timeout: float = 30.0) -> float:
    """Seconds from spawning `argv` on a new pty to the first output that shows `marker`."""
    master, slave = os.openpty()
    cols, rows = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
                            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    seen, found = b"", None
    deadline = start + timeout
    try:
        while found is None and time.perf_counter() < deadline:
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
            if marker in ANSI.sub(b"", seen):
                found = now - start
        if found is None:
            raise RuntimeError(f"{argv[-1]}: the marker never showed; output: {ANSI.sub(b'', seen)[-400:]!r}")
        return found
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
    for _ in range(2):  # warm the caches (bytecode, the plugin and schema caches) for both
        run_in_pty(runbook, env, incident.encode(), size)
        run_in_pty(minimal, env, b"MINIMAL-MARKER", size)
    a, b = [], []
    for _ in range(args.runs):
        a.append(run_in_pty(runbook, env, incident.encode(), size))
        b.append(run_in_pty(minimal, env, b"MINIMAL-MARKER", size))
    ratios = [x / y for x, y in zip(a, b)]
    print(f"first frame on a {size[0]}x{size[1]} pty holding the incident id (runbook) / the marker (minimal app), "
          f"{args.runs} alternating pairs, fresh processes; runbook started as {' '.join(start)}:")
    print(f"  runbook resume   median {statistics.median(a) * 1000:6.0f} ms   "
          f"min {min(a) * 1000:6.0f}   max {max(a) * 1000:6.0f}")
    print(f"  minimal Textual  median {statistics.median(b) * 1000:6.0f} ms   "
          f"min {min(b) * 1000:6.0f}   max {max(b) * 1000:6.0f}")
    print(f"  ratio (median of pair ratios) {statistics.median(ratios):.2f}   (goal <= 1.2)")


if __name__ == "__main__":
    main()
