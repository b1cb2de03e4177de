"""`runbook resume` prepares its first view in a forked child (cli/tui.py): the child settles what
a crash left half-done, resolves the id and builds the view while the parent loads the TUI.

The fast path must give the same answer as the plain one (`prepare` in this process), relay the
child's errors with their exit codes, and leave the work to the parent when the child dies.
"""

from __future__ import annotations

import os
import signal

import pytest

from runbook.cli import tui
from runbook.cli.context import Context
from runbook.engine import SystemClock
from runbook.views import incident_view
from test_degradation_races import FLAGS, INCIDENT, World, kill, read_line

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not hasattr(signal, "SIGKILL"),
                                reason="needs fork and POSIX signals")

# what a view holds that does not move with the clock
STABLE = ("id", "title", "status", "severity", "acknowledged_by", "tracks", "current", "ladder", "flags",
          "timeline", "events", "last_seq", "altered", "phase", "roles")


def stable(view) -> dict:
    fields = {name: getattr(view, name) for name in STABLE}
    fields["current"] = tuple(step._replace(timebox_left=None) for step in view.current)
    fields["timeline"] = tuple(line._replace(rel=0) for line in view.timeline)
    return fields


@pytest.fixture
def world(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./plugins: only the built-in plugins load
    w = World(tmp_path)
    monkeypatch.setenv("RUNBOOK_FLAGS", w.flags)
    monkeypatch.delenv("RUNBOOK_PLUGINS_DIR", raising=False)
    yield w
    w.close()


def context(world) -> Context:
    return Context((str(world.catalog_dir),), None, world.db)


def interrupted(world) -> None:
    """A responder's process SIGKILLed between two flag writes of degradation t."""
    child = world.child("degrade", degradation="t", stop_at=2)
    read_line(child, "stopped")
    kill(child)


def test_the_child_settles_an_interrupted_degradation_and_its_view_is_the_one_made_here(world):
    interrupted(world)
    child = tui.Preparation.start(context(world), INCIDENT[4:8].lower())  # a short id, in any case
    assert child is not None
    incident, view = child.result()
    assert incident == INCIDENT
    # settled by the child, in the log, before the first frame: what the flags really are
    assert world.flag_values() == {"t.a": False, "t.b": False, "t.c": True, "t.d": True}
    settled = [line.text for line in view.timeline if "interrupted half-way" in line.text]
    assert settled, [line.text for line in view.timeline]
    assert not any(flag.pending for flag in view.flags)
    # the same answer as the path without the fork, on the same log, at (nearly) the same time
    engine = world.engine(SystemClock())
    again, found = tui.prepare(engine, INCIDENT)
    assert again == incident and stable(found) == stable(view) == stable(incident_view(engine, INCIDENT)[0])
    assert engine.reconcile(INCIDENT, force=True) == []  # nothing left half-done


def test_the_child_picks_the_latest_open_incident_when_no_id_is_given(world):
    incident, view = tui.Preparation.start(context(world), None).result()
    assert incident == INCIDENT and view.id == INCIDENT and view.status == "open"


@pytest.mark.parametrize("typed, message", [
    ("ZZZ", "no incident 'ZZZ' (see `runbook incident list --all`)"),
    ("\x1b[31mINC", "no incident"),
])
def test_an_error_in_the_child_is_raised_here_as_the_cli_prints_it(world, typed, message):
    child = tui.Preparation.start(context(world), typed)
    with pytest.raises(tui.RelayedError) as raised:
        child.result()
    assert raised.value.exit_code == 3
    assert message in str(raised.value)
    assert "\x1b" not in str(raised.value)  # escaped once, in the child, and not raw here


def test_no_open_incident_is_relayed_with_its_exit_code(world):
    world.engine().resolve(INCIDENT, "ana")
    with pytest.raises(tui.RelayedError, match="no open incident to resume") as raised:
        tui.Preparation.start(context(world), None).result()
    assert raised.value.exit_code == 3


def test_a_child_that_dies_leaves_no_answer_and_nothing_half_done(world, monkeypatch):
    interrupted(world)

    def dies(engine, typed):  # in the child: killed before it settles anything
        os.kill(os.getpid(), signal.SIGKILL)
    monkeypatch.setattr(tui, "prepare", dies)
    assert tui.Preparation.start(context(world), INCIDENT).result() is None
    monkeypatch.undo()
    # the parent then does the work itself (resume's fallback), with the same outcome
    engine = world.engine()
    incident, view = tui.prepare(engine, INCIDENT)
    assert incident == INCIDENT and not any(flag.pending for flag in view.flags)
    assert set(world.flag_values()) == set(FLAGS)


def test_no_fork_when_asked(world, monkeypatch):
    monkeypatch.setenv("RUNBOOK_NO_FORK", "1")
    assert tui.Preparation.start(context(world), INCIDENT) is None
