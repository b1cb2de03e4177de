"""Capture the TUI's screens at 80x24 for the responder's guide: the real `runbook` command in
a real terminal (tmux), on the shipped catalog, with a throw-away database and flag file.

    .venv/bin/python docs/screens.py      # rewrites docs/screens/*.txt

docs/responder.md includes the captures; rerun this after changing a screen.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screens"


class Terminal:
    def __init__(self, workdir: Path):
        self.socket = str(workdir / "tmux.sock")
        self.env = {"RUNBOOK_DB": str(workdir / "runbook.db"), "RUNBOOK_FLAGS": str(workdir / "flags.json"),
                    "RUNBOOK_USER": "ana", "TERM": "xterm-256color", "PYTHONPATH": str(ROOT / "src")}

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True).stdout

    def start(self, *args: str) -> None:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        runbook = f"{shlex.quote(sys.executable)} -m runbook {shlex.join(args)}"
        command = f"cd {shlex.quote(str(ROOT))} && {exports} {runbook}"
        self.tmux("new-session", "-d", "-s", "docs", "-x", "80", "-y", "24", command)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "docs", *(["-l"] if literal else []), *keys)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.tmux("capture-pane", "-p", "-t", "docs")
            if text in screen:
                time.sleep(0.5)  # let the frame that showed it finish drawing
                return self.tmux("capture-pane", "-p", "-t", "docs")
            time.sleep(0.1)
        raise SystemExit(f"{text!r} never appeared; the screen shows:\n{self.tmux('capture-pane', '-p', '-t', 'docs')}")

    def stop(self) -> None:
        self.tmux("kill-server")


def save(name: str, screen: str) -> None:
    lines = [line.rstrip() for line in screen.rstrip("\n").split("\n")]
    (OUT / f"{name}.txt").write_text("\n".join(lines) + "\n")
    print(f"docs/screens/{name}.txt")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        term = Terminal(Path(tmp))
        try:
            term.start()
            term.wait_for("Playbooks")
            save("home", term.wait_for("Drills"))
            term.keys("video freezing in eu-west-1", literal=True)
            save("home-filtered", term.wait_for("video-call-degraded"))
            term.stop()

            term.start("open", "video-call-degraded", "--param", "region=eu-west-1")
            save("incident", term.wait_for("not acknowledged"))
            term.keys("a")
            save("incident-acknowledged", term.wait_for("ack: ana"))
            term.keys("?")
            save("help", term.wait_for("Incident keys"))
        finally:
            term.stop()


if __name__ == "__main__":
    main()
