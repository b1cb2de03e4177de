"""The CLI on the engine service (DESIGN.md, round three: "the TUI, CLI and server only call the
engine service"): a one-shot command's work runs on the service's one lane, inline on the
command's own thread, over the one store connection it opens; an error raised there reaches the
user as it did from the engine."""

from __future__ import annotations

import threading

import pytest

from runbook import store as store_module
from runbook.engine import Engine
from runbook.errors import CommandError, NotFoundError, PluginError, RunbookError, UsageError
from runbook.service import EngineService, Lane, ServiceClosed
from runbook.store import MemoryStore


@pytest.fixture
def runbook(rb, monkeypatch):
    """The command in this process (it counts the store connections opened and the threads used)."""
    opened = []
    real = store_module.open_store

    def counting(*args, **kwargs):
        opened.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, "open_store", counting)

    def invoke(*args, expect=0):
        del opened[:]
        return rb.inproc(*args, expect=expect)

    invoke.opened = opened
    return invoke


def test_a_one_shot_command_opens_one_connection(runbook):
    incident = runbook("incident", "open", "gifts-feature-failing").strip()
    assert len(runbook.opened) == 1
    for args in (("incident", "ack", incident), ("incident", "show", incident), ("incident", "list"),
                 ("incident", "note", incident, "looking"), ("incident", "show", incident, "--json")):
        runbook(*args)
        assert len(runbook.opened) == 1, args
    runbook("incident", "ack", "INC-NOPE", expect=NotFoundError.exit_code)
    assert len(runbook.opened) == 1


def test_a_one_shot_command_starts_no_thread(runbook, monkeypatch):
    """The command's one lane runs inline: Ctrl-C interrupts the engine call itself, as before."""
    threads = []
    real = Engine.acknowledge

    def acknowledge(self, *args, **kwargs):
        threads.append(threading.current_thread())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "acknowledge", acknowledge)
    incident = runbook("incident", "open", "gifts-feature-failing").strip()
    runbook("incident", "ack", incident)
    assert threads == [threading.current_thread()]
    assert not [t for t in threading.enumerate() if t.name.startswith("runbook-commands")]


def test_a_refused_command_exits_as_before(rb):
    incident = rb("incident", "open", "gifts-feature-failing", "--severity", "SEV1").strip()
    assert "reason" in rb("incident", "severity", incident, "SEV3", expect=UsageError.exit_code)  # ReasonNeeded


@pytest.mark.parametrize("inline", [False, True])
@pytest.mark.parametrize("error", [RunbookError, UsageError, NotFoundError, CommandError, PluginError])
def test_an_error_raised_in_a_lane_is_the_error_raised(error, inline):
    raised = error("as written for a person")

    def fail(engine):
        raise raised

    lane = Lane("test", lambda: None, inline=inline)
    try:
        with pytest.raises(error) as caught:
            lane.call(fail)
        assert caught.value is raised and type(caught.value) is error
    finally:
        lane.close()


def test_one_lane_is_every_lane_and_makes_no_sibling():
    engine = Engine(MemoryStore())
    engine.store.location = "/nowhere/else.sqlite"  # a sibling would try to open it
    service = EngineService(engine, one_lane=True)
    try:
        assert service.lanes == (service.commands,)
        assert service.reads is service.commands is service.ticks
        assert service.query("list") == []
        with pytest.raises(NotFoundError):
            service.command("note", "INC-NOPE", "ana", "looking")
    finally:
        service.close()
    with pytest.raises(ServiceClosed):
        service.query("list")
