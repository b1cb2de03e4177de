"""The headless CLI for timed waits, retries' timeline, restarting from a step and the alert's state,
on a virtual clock (the CLI's system clock replaced in-process)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runbook.engine import VirtualClock

HERE = Path(__file__).parent


@pytest.fixture
def clock(monkeypatch):
    clock = VirtualClock()
    monkeypatch.setattr("runbook.engine.SystemClock", lambda: clock)  # what the CLI's engines are made with
    return clock


@pytest.fixture
def rb(rb, clock, tmp_path):
    """The command in this process, on the virtual clock, in a catalog of the waits playbook."""
    check, deploy = tmp_path / "check", tmp_path / "deploy"
    check.write_text("0")
    deploy.write_text("0")
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "policies.yaml").write_text((HERE / "waits_catalog" / "policies.yaml").read_text())
    text = (HERE / "waits_catalog" / "waits-pb.yaml").read_text()
    (playbooks / "pb.yaml").write_text(text.replace("PYTHON", sys.executable).replace("CHECK", str(check))
                                       .replace("DEPLOY", str(deploy)))
    rb.cwd = tmp_path
    del rb.env["RUNBOOK_PLUGINS_DIR"]
    return rb.inproc


def test_a_timed_wait_comes_due_on_the_command_line(rb, clock):
    iid = rb("incident", "open", "media-stuck").strip()
    rb("incident", "ack", iid)
    rb("incident", "step", iid, "--done")
    clock.advance(seconds=10)
    assert "poll 1 of drained: exit status 0, holds" in rb("incident", "tick", iid)  # what the poll saw
    assert "comes due at 09:10:10" in rb("incident", "show", iid)
    clock.advance(minutes=10)
    assert "step later is due: the wait is over, look again" in rb("incident", "tick", iid)
    assert "DUE since 09:10:10: look again, then complete it" in rb("incident", "show", iid)
    assert "step later done" in rb("incident", "step", iid, "--done")


def test_restart_from_a_step_and_the_alerts_state(rb, clock):
    iid = rb("incident", "open", "media-stuck").strip()
    rb("incident", "step", iid, "--done")
    clock.advance(seconds=10)
    rb("incident", "tick", iid)
    assert "needs a reason" in rb("incident", "restart", iid, "look", expect=2)
    assert "did you mean 'drained'" in rb("incident", "restart", iid, "draned", "--reason", "x", expect=3)  # not found
    out = rb("incident", "restart", iid, "look", "--reason", "queue filled again")
    assert "restarted track main from step look: queue filled again" in out
    assert "step look started (attempt 2)" in out
    out = rb("incident", "alert", iid, "resolved", "--alert", "MediaUploadsStuck", "--as", "alertmanager")
    assert "alert (MediaUploadsStuck) resolved at its source" in out
    assert "already resolved; nothing recorded" in rb("incident", "alert", iid, "resolved")
    assert "alert resolved at its source since 09:00:10 (severity rises wait)" in rb("incident", "show", iid)
    clock.advance(minutes=30)
    assert "severity" not in rb("incident", "tick", iid)
    assert "firing again" in rb("incident", "alert", iid, "firing")
    assert "invalid value" in rb("incident", "alert", iid, "gone", expect=2).lower()
    rb("incident", "resolve", iid)
    assert "is resolved" in rb("incident", "restart", iid, "look", "--reason", "again", expect=5)
