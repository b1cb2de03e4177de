"""End to end: the real `runbook` command in a real terminal (tmux), driven by keys, read off the screen."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
from helpers.components import missing


def tmux(*args, check=True, server: str):
    # each test has its own tmux server (-S, its own socket): a server that exits when the previous
    # test's session is killed must not be the one the next test connects to ("server exited unexpectedly")
    return subprocess.run(["tmux", "-S", server, *args], capture_output=True, text=True, check=check)


@pytest.fixture
def terminal(tmp_path, fixture_catalog, fixture_env):
    if not shutil.which("tmux"):
        missing("tmux", "run ./scripts/test (it installs the Debian package tmux)")
    name = f"runbook-{uuid.uuid4().hex[:8]}"
    socket = os.path.join(tempfile.gettempdir(), f"{name}.tmux")  # short: a socket path has ~100 bytes
    env = {"RUNBOOK_DB": str(tmp_path / "db.sqlite"), "RUNBOOK_FLAGS": str(tmp_path / "flags.json"),
           "RUNBOOK_USER": "ana", "TERM": "xterm-256color",
           **{k: fixture_env[k] for k in ("RUNBOOK_PLUGINS_DIR", "PYTHONPATH")}}
    exports = " ".join(f"{k}={v}" for k, v in env.items())

    class Terminal:
        pressed = 0  # keys sent one by one (typed text aside)
        name = None

        def start(self, *args, size=(100, 30), env: str = "", cwd=fixture_catalog):
            command = f"cd {cwd} && {exports} {env} {sys.executable} -m runbook {' '.join(args)}"
            tmux("new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]), command, server=socket)

        def keys(self, *keys, literal=False):
            if not literal:
                self.pressed += len(keys)
            tmux("send-keys", "-t", name, *(["-l"] if literal else []), *keys, server=socket)

        def screen(self) -> str:
            return tmux("capture-pane", "-p", "-t", name, check=False, server=socket).stdout

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

    terminal = Terminal()
    terminal.name, terminal.socket = name, socket
    yield terminal
    tmux("kill-server", check=False, server=socket)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket)


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
    terminal.keys("C-q")  # the symptom filter has the focus: q would type a q
    shown = json.loads(terminal.cli("incident", "show", incident, "--json").stdout)
    types = [e["type"] for e in shown["events"]]
    assert "acknowledged" in types and types.count("note_added") == 2


def test_the_whole_video_incident_at_80x24_from_a_typed_symptom(terminal):
    """A new responder's path through video-call-degraded at 80x24: type the symptom, open the
    top match, work the main track to mitigation, the comms track's first step, resolve. Every
    track's current step is seen on the way, and the whole incident takes at most 18 keys."""
    seen = set()

    def step(keys, then):
        terminal.keys(*keys)
        screen = terminal.wait_for(then)
        seen.update(line.strip() for line in screen.splitlines() if ": ▶ " in line)
        return screen

    terminal.start(size=(80, 24))
    terminal.wait_for("What do you see?")
    terminal.keys("video freezing", literal=True)   # typing filters at once
    terminal.wait_for("video-call-degraded")
    step(["Enter"], "Open an incident on")            # Enter: the top match; it asks for its region
    step(["Enter"], "not acknowledged")                # the region is optional: Enter opens
    step(["a"], "ack: ana")
    step(["d"], "Check SFU and TURN health  ")
    step(["d"], "CHECK  Look for a recent change")
    step(["d"], "Is video bad in one region")
    step(["c"], "Several regions or global")
    step(["2"], "DEGRADE  Cap video bitrate")
    screen = step(["d"], "rtc.video.max-bitrate-kbps → 300")  # the dialog lists what it flips
    assert "Apply degradation" in screen
    step(["y"], "degraded: low-bitrate")
    step(["d"], "MITIGATED")
    step(["Tab"], "COMMUNICATE  Open the incident channel")
    step(["d"], "Give support a macro  ")
    screen = step(["x"], "Restores low-bitrate:")
    assert "Resolve the incident?" in screen and "max-bitrate-kbps → 1500 (restored)" in screen
    assert "Left undone" in screen
    screen = step(["y"], "RESOLVED after")
    assert "not done" in screen and "timebox" not in screen and "w Export" in screen
    assert any(line.startswith("» Main: ▶") or line.startswith("Main: ▶") for line in seen), seen
    assert any("Communications: ▶ Open the incident channel" in line for line in seen), seen
    assert terminal.pressed <= 18, terminal.pressed
    incident = json.loads(terminal.cli("incident", "list", "--all", "--json").stdout)[0]["id"]
    shown = json.loads(terminal.cli("incident", "show", incident, "--json").stdout)
    assert shown["status"] == "resolved"
    print(f"keys pressed: {terminal.pressed}")


def test_resume_by_a_short_id_in_a_real_terminal_and_a_wrong_id_is_one_line(terminal):
    """`runbook resume` draws its screen, then settles and shows the incident in the same process;
    the incident comes up and takes keys, and a wrong id is one line and exit 3."""
    opened = terminal.cli("incident", "open", "gifts-feature-failing", "--as", "ana", "--json")
    incident = json.loads(opened.stdout)["id"]
    # a wrong id: one line and exit 3 (the shell prints the code; the pane stays to be read)
    terminal.start("resume", "ZZZ9", "; echo exit=$?; sleep 60")
    screen = terminal.wait_for("exit=")
    assert "runbook: error: no incident 'ZZZ9' (see `runbook incident list --all`)" in screen
    assert "exit=3" in screen and "Traceback" not in screen
    tmux("kill-session", "-t", terminal.name, check=False, server=terminal.socket)
    terminal.start("resume", incident[4:7].lower(), size=(80, 24))
    terminal.wait_for(incident)
    terminal.wait_for("not acknowledged")
    terminal.keys("a")
    terminal.wait_for("ack: ana")
    terminal.keys("C-q")
    shown = json.loads(terminal.cli("incident", "show", incident, "--json").stdout)
    assert [e["type"] for e in shown["events"]].count("acknowledged") == 1


def test_the_shipped_flagship_incident_at_80x24_mitigated_in_18_keys_resolved_in_30(terminal, tmp_path, repo_root):
    """A responder who has not read the docs, at 80x24, on the shipped video-call-degraded playbook:
    video freezing in eu-west. Enter does the step's next action, a digit answers the decision, one
    confirmation approves and runs the reroute; typed text is not counted. Mitigated within 18 keys,
    resolved (every step of both tracks done) within 30; the keys stay readable under the toasts,
    commands are broken between arguments only, and the copy key copies the whole command."""
    tools = tmp_path / "bin"
    tools.mkdir()
    rtcctl = tools / "rtcctl"  # the traffic tool the reroute step runs, as it prints in production
    rtcctl.write_text('#!/bin/sh\necho "shift sh-4f2a started: $*"\n')
    rtcctl.chmod(0o755)
    walk = []

    def key(k, then, why):
        terminal.keys(k)
        walk.append(f"{k}: {why}")
        return terminal.wait_for(then)

    terminal.start(size=(80, 24), cwd=repo_root, env=f"PATH={tools}:$PATH RUNBOOK_POSTMORTEMS={tmp_path}/pm")
    terminal.wait_for("What do you see?")
    terminal.keys("video freezing in eu-west", literal=True)
    terminal.wait_for("video-call-degraded")
    screen = key("Enter", "like eu-central-1", "open the top match; the form offers the region typed")
    assert "eu-west  " in screen and "optional" in screen and "from what you" in screen
    screen = key("Enter", "does not match", "eu-west does not fit: the error says what and gives an example")
    assert screen.count("like eu-central-1") == 2  # under the field, and in the error
    terminal.keys("--", "-1", literal=True)  # typed text (-- : not a tmux option)
    screen = key("Enter", "not acknowledged", "open with region eu-west-1")
    assert "region=eu-west-1" in screen
    key("Enter", "ack: ana", "acknowledge (the first key the step shows)")
    key("Enter", "CHECK  Check SFU and TURN health", "scope measured: done")
    key("Enter", "CHECK  Look for a recent change", "SFU and TURN checked: done")
    key("Enter", "DECISION  One region or several?", "no recent change: done")
    screen = key("1", "ACTION  Steer new calls away from eu-west-1", "one region: option 1")
    command = [line.split("│", 1)[1].strip() for line in screen.splitlines() if "│" in line]
    start = next(i for i, line in enumerate(command) if line.startswith("$ rtcctl"))
    assert command[start].endswith(" \\") and command[start + 1].endswith("--percent 100"), command
    # the copy key: the whole command, one line (tmux keeps it as a buffer once allowed to)
    tmux("set-option", "-g", "set-clipboard", "on", server=terminal.socket)
    tmux("send-keys", "-t", terminal.name, "y", server=terminal.socket)  # not on the path: not counted
    terminal.wait_for("copied to the clipboard")
    assert tmux("show-buffer", server=terminal.socket).stdout == \
        "rtcctl traffic shift rtc-video --from eu-west-1 --percent 100"
    screen = key("Enter", "Recorded as approved by ana", "approve (as commander: nobody holds it) and run, one dialog")
    assert "$ rtcctl traffic shift rtc-video --from eu-west-1 --percent 100" in screen
    key("y", "VERIFY  Video is good again for new calls", "yes: approved, then run")
    screen = key("Enter", "MITIGATED", "video good again: verified, which mitigates")
    mitigated = terminal.pressed
    lines = screen.rstrip("\n").splitlines()
    footer = lines[max(i for i, line in enumerate(lines) if "│" in line) + 1:]  # under the panes: the keys
    assert footer and "^p Palette" in footer[-1] and not any("▌" in line for line in footer), footer  # no toast
    assert "CHECK  Find and fix the cause" in screen
    key("Enter", "RESTORE  Turn video back on", "cause fixed: done")
    key("Enter", "RESTORE  Remove the bitrate cap", "audio-only never applied: done, nothing to flip or ask")
    key("Enter", "ACTION  Send traffic back to eu-west-1", "the cap never applied: done, likewise")
    key("Enter", "VERIFY  Video stays good at full quality", "traffic back: done")
    key("Enter", "COMMUNICATE  Open the incident channel", "verified: the main track is finished")
    key("Enter", "Assign which role?", "its message names the commander, whom nobody holds: assign")
    key("Enter", "Incident commander: assign to", "the commander, pre-selected")
    key("Enter", "commander: ana", "offered: ana, at this keyboard")
    key("Enter", "COMMUNICATE  Give support a macro", "channel opened: posted")
    key("Enter", "COMMUNICATE  Post on the status page", "support told: posted")
    key("Enter", "COMMUNICATE  All clear", "status page: posted")
    key("Enter", "Nothing to do: every track is finished", "all clear: posted")
    key("Enter", "Resolve the incident?", "resolve, the obvious next action")
    key("y", "RESOLVED after", "yes")
    resolved = terminal.pressed
    print(f"\nkeys to mitigated: {mitigated}, to resolved: {resolved}\n" + "\n".join(walk))
    assert mitigated <= 18 and resolved <= 30, (mitigated, resolved)
    incident = json.loads(terminal.cli("incident", "list", "--all", "--json").stdout)[0]["id"]
    shown = json.loads(terminal.cli("incident", "show", incident, "--json").stdout)
    assert shown["status"] == "resolved"
    steps = shown["steps"]
    assert steps["reroute"]["exit_code"] == 0
    approved = [e for e in shown["events"] if e["type"] == "approval_granted"]
    assert [e["data"]["step"] for e in approved] == ["reroute"]  # recorded before it ran, bound to its content
    assert approved[0]["seq"] < next(e["seq"] for e in shown["events"] if e["type"] == "action_started")
