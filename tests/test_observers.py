"""Event observers run off the command path: a command never waits for one, and one that raises
or never returns leaves a plugin_error in the incident's timeline instead of vanishing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook.engine.events import Event, decode
from runbook.plugins import PluginHost
from runbook.settings import Settings

PLUGINS = Path(__file__).parent / "plugins"
SLOW = PLUGINS / "slow_observers"
MISBEHAVING = PLUGINS / "misbehaving"


def event(seq: int, kind: str = "note_added", **data) -> Event:
    data = data or {"note_added": {"text": "a note"},
                    "opened": {"playbook": "p", "title": "P", "severity": "SEV2"}}[kind]
    return Event(seq, datetime(2026, 11, 30, tzinfo=UTC), "ana", decode(kind, data), data)


def host(tmp_path, plugins_dir) -> PluginHost:
    return PluginHost(Settings(flags_file=str(tmp_path / "flags.json"), plugins_dir=str(plugins_dir)),
                      entry_points=False)


@pytest.fixture
def slow(tmp_path, monkeypatch):
    """make(only=None): a host with a hung observer and a quick one (or only those named), and
    their modules; hung observers are let go at the end."""
    made = []

    def make(only: str | None = None):
        monkeypatch.delenv("RUNBOOK_LOAD_PLUGINS", raising=False)
        if only is not None:
            monkeypatch.setenv("RUNBOOK_LOAD_PLUGINS", only)
        h = host(tmp_path, SLOW)
        hung, tally = (sys.modules.get(f"runbook_plugins_dir.{name}") for name in ("hung", "tally"))
        made.append(hung)
        return h, hung, tally
    yield make
    for hung in made:
        hung.RELEASE.set()


def messages(failures) -> list[tuple[str, str, str, str]]:
    return [(incident, f.plugin, f.kind, f.message) for incident, f in failures]


def test_a_hung_observer_delays_neither_the_caller_nor_the_other_observers(slow):
    h, hung, tally = slow()
    for seq in (1, 2):
        h.observe("INC-1", event(seq))
    h.observe("INC-1", event(3, text="caught up"))
    assert tally.CAUGHT_UP.wait(10) and tally.SEEN == [1, 2, 3]
    assert hung.STARTED.wait(10)
    assert h.take_observer_failures() == []  # still within its timeout: nothing to say yet


def test_drain_records_what_a_hung_observer_did_not_finish_or_start(slow):
    h, hung, _ = slow(only="hung")
    h.observe("INC-1", event(1, "opened"))
    assert hung.STARTED.wait(10)
    h.observe("INC-2", event(7))
    assert messages(h.drain(grace=0.05)) == [
        ("INC-1", "hung", "timeout", "did not finish observing event 1 (opened) before exit"),
        ("INC-2", "hung", "timeout", "did not start observing event 7 (note_added) before exit: "
                                     "still busy with event 1 (opened)"),
    ]
    assert h.drain(grace=0.05) == []  # each delivery is reported once


def test_an_observer_past_its_timeout_is_reported_once_while_the_session_goes_on(slow, monkeypatch):
    h, hung, _ = slow(only="hung")
    monkeypatch.setattr(h._observers, "timeout", 0.0)
    h.observe("INC-1", event(4))
    assert hung.STARTED.wait(10)
    assert messages(h.take_observer_failures()) == [
        ("INC-1", "hung", "timeout", "still observing event 4 (note_added) after 0s; its later events wait until "
                                     "it returns")]
    assert h.take_observer_failures() == []
    assert h.drain(grace=0.0) == []


def test_a_raising_observer_is_recorded_for_its_incident_but_never_about_its_own_records(tmp_path):
    h = host(tmp_path, MISBEHAVING)
    h.observe("INC-1", event(5))
    h.observe("INC-1", event(6, "plugin_error", plugin="raising", hook="event_appended", message="..."))
    h.observe("INC-2", event(9, "plugin_error", plugin="raising", hook="notify", message="..."))
    assert messages(h.drain(grace=30)) == [
        ("INC-1", "raising", "error", "ValueError: observer broke, while observing event 5 (note_added)"),
        ("INC-2", "raising", "error", "ValueError: observer broke, while observing event 9 (plugin_error)"),
    ]


def test_a_host_without_observers_starts_no_thread(tmp_path):
    h = host(tmp_path, tmp_path / "none")
    h.observe("INC-1", event(1))
    assert h._observers._observers == [] and h.drain(grace=30) == [] and h.take_observer_failures() == []


# end to end: the CLI in fresh processes, as a responder runs it ---------------------------------

@pytest.fixture
def rb(repo_root, tmp_path):
    def run(*args, plugins_dir, grace="30", only=None):
        env = {**os.environ, "RUNBOOK_DB": str(tmp_path / "db.sqlite"), "RUNBOOK_FLAGS": str(tmp_path / "flags.json"),
               "RUNBOOK_USER": "ana", "RUNBOOK_PLUGINS_DIR": str(plugins_dir), "RUNBOOK_OBSERVER_GRACE": grace}
        env.pop("RUNBOOK_CATALOG", None)
        env.pop("RUNBOOK_LOAD_PLUGINS", None)
        if only is not None:
            env["RUNBOOK_LOAD_PLUGINS"] = only
        # the timeout only guards the test run against a process that never exits
        proc = subprocess.run([sys.executable, "-m", "runbook", *args], cwd=repo_root, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
        return proc.stdout
    return run


def test_a_raising_observer_shows_in_the_incident_timeline(rb):
    iid = rb("incident", "open", "gifts-feature-failing", plugins_dir=MISBEHAVING, only="raising").strip()
    rb("incident", "note", iid, "checking the gift service", plugins_dir=MISBEHAVING, only="raising")
    shown = rb("incident", "show", iid, plugins_dir=MISBEHAVING, only="raising")
    assert "plugin raising failed in event_appended: ValueError: observer broke, while observing event" in shown
    events = json.loads(rb("incident", "show", iid, "--json", plugins_dir=MISBEHAVING, only="raising"))["events"]
    noted = next(e["seq"] for e in events if e["type"] == "note_added")
    observed = [e["data"]["message"] for e in events if e["type"] == "plugin_error"
                and e["data"]["hook"] == "event_appended"]
    assert f"ValueError: observer broke, while observing event {noted} (note_added)" in observed
    assert not any("(plugin_error)" in m for m in observed if "event_appended" in m)


def test_a_hung_observer_leaves_a_record_when_the_command_exits(rb):
    iid = rb("incident", "open", "gifts-feature-failing", plugins_dir=SLOW, only="hung", grace="0.05").strip()
    out = rb("incident", "note", iid, "still looking", plugins_dir=SLOW, only="hung", grace="0.05")
    assert "note: still looking" in out
    events = json.loads(rb("incident", "show", iid, "--json", plugins_dir=SLOW, only="hung"))["events"]
    noted = next(e["seq"] for e in events if e["type"] == "note_added")
    records = [(e["actor"], e["data"]["plugin"], e["data"]["kind"], e["data"]["message"]) for e in events
               if e["type"] == "plugin_error"]
    assert ("runbook", "hung", "timeout", "did not finish observing event 1 (opened) before exit") in records
    assert ("runbook", "hung", "timeout", f"did not finish observing event {noted} (note_added) before exit") \
        in records


def test_the_exit_grace_comes_from_the_environment_and_nonsense_is_refused(monkeypatch):
    from runbook.errors import UsageError

    monkeypatch.setenv("RUNBOOK_OBSERVER_GRACE", "0.5")
    assert Settings.from_environment().observer_grace == 0.5
    monkeypatch.setenv("RUNBOOK_OBSERVER_GRACE", "soon")
    with pytest.raises(UsageError, match="RUNBOOK_OBSERVER_GRACE='soon' is not a number of seconds"):
        Settings.from_environment()
