"""End to end: the real `runbook` command in a real terminal (tmux), driven by keys, read off the screen."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid

import pytest


def tmux(*args, check=True):
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=check)


@pytest.fixture
def terminal(tmp_path, fixture_catalog, fixture_env):
    assert shutil.which("tmux"), "tmux is required for this test; ./scripts/setup installs it"
    name = f"runbook-{uuid.uuid4().hex[:8]}"
    env = {"RUNBOOK_DB": str(tmp_path / "db.sqlite"), "RUNBOOK_FLAGS": str(tmp_path / "flags.json"),
           "RUNBOOK_USER": "ana", "TERM": "xterm-256color",
           **{k: fixture_env[k] for k in ("RUNBOOK_PLUGINS_DIR", "PYTHONPATH")}}
    exports = " ".join(f"{k}={v}" for k, v in env.items())

    class Terminal:
        def start(self, *args):
            command = f"cd {fixture_catalog} && {exports} {sys.executable} -m runbook {' '.join(args)}"
            tmux("new-session", "-d", "-s", name, "-x", "100", "-y", "30", command)

        def keys(self, *keys, literal=False):
            tmux("send-keys", "-t", name, *(["-l"] if literal else []), *keys)

        def screen(self) -> str:
            return tmux("capture-pane", "-p", "-t", name, check=False).stdout

        def wait_for(self, text: str, timeout: float = 20.0) -> str:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:  # bounded polling of what the terminal shows
                screen = self.screen()
                if text in screen:
                    return screen
                time.sleep(0.1)
            raise AssertionError(f"{text!r} never appeared; the screen shows:\n{self.screen()}")

        def cli(self, *args):
            return subprocess.run([sys.executable, "-m", "runbook", *args], cwd=fixture_catalog, capture_output=True,
                                  text=True, env={**fixture_env, **env})

    yield Terminal()
    tmux("kill-session", "-t", name, check=False)


def test_open_ack_note_and_quit_in_a_real_terminal(terminal):
    terminal.start("open", "gifts-feature-failing")
    terminal.wait_for("Gifts failing")
    terminal.wait_for("not acknowledged")
    terminal.keys("a")
    terminal.wait_for("ack: ana")
    terminal.keys("n")
    terminal.wait_for("Add a note")
    terminal.keys("gift shop errors started 14:02", literal=True)
    terminal.keys("Enter")
    terminal.wait_for("note: gift shop errors started")
    # a second responder on the headless CLI shows up on this screen
    incident = json.loads(terminal.cli("incident", "list", "--json").stdout)[0]["id"]
    assert terminal.cli("incident", "note", incident, "ben is on the gifts DB", "--as", "ben").returncode == 0
    terminal.wait_for("note: ben is on the gifts DB")
    terminal.keys("Escape")
    terminal.wait_for("Open incidents")
    terminal.keys("q")
    shown = json.loads(terminal.cli("incident", "show", incident, "--json").stdout)
    types = [e["type"] for e in shown["events"]]
    assert "acknowledged" in types and types.count("note_added") == 2
