"""Firing the timers the log implies (escalations, pages and pager updates tried again, deadlines,
severity rises, reminders, posts on a cadence, drill injects, polls, wait timeouts, timed waits coming due, retries):
what is due is derived in `timers.py`; this appends it."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from runbook.engine import cadence, pages, safeguards, stages, step_timers, texts, timers, waits
from runbook.engine.clock import iso
from runbook.engine.effects import SYSTEM
from runbook.engine.events import DrillInject, Event, ReminderFired, SeverityChanged, TargetBreached
from runbook.engine.state import IncidentState

if TYPE_CHECKING:
    from runbook.engine.engine import Engine


def fire_due(engine: Engine, incident: str) -> list[Event]:
    """Fire everything due by now, earliest first: a late tick catches up in order."""
    fired: list[Event] = []
    now = engine.clock.now()
    for _ in range(10_000):
        state = engine.state(incident)
        due = timers.due(state, now)
        if not due:
            break
        fired += _fire(engine, state, due[0])
    return fired


def _fire(engine: Engine, state: IncidentState, timer) -> list[Event]:
    data = timer.data
    if timer.kind == "escalation":
        return pages.escalate(engine, state.id, SYSTEM, data["level"], data["round"], timer.at, "timer",
                              seen=data["count"])
    if timer.kind == "page_retry":
        return pages.retry(engine, state, data)
    if timer.kind == "breach":
        return engine.command(state.id, SYSTEM, lambda s: [] if data["target"] in s.breaches else [
            TargetBreached(data["target"], iso(data["deadline"]))])
    if timer.kind == "rise":
        return engine.command(state.id, SYSTEM, lambda s: [] if data["rise"] in s.rises else [
            SeverityChanged(s.severity, data["to"], f"symptom persisted for {data['after'] // 60} minutes",
                            rise=data["rise"], due_at=iso(timer.at))])
    if timer.kind == "reminder":
        # after a long gap only the latest occurrence is worth saying: one reminder, with the count missed
        latest = max(data["n"], int((engine.clock.now() - data["start"]).total_seconds() // data["every"]))
        message = texts.text(state, data["message"], None, engine.clock.now())
        fired = ReminderFired(data["reminder"], latest, message, data["role"], latest - data["n"])
        return engine.command(state.id, SYSTEM, lambda s: [] if s.reminders.get(data["reminder"], 0) >= latest
                             else [fired])
    if timer.kind == "repeat_post":
        return cadence.fire(engine, state, data["step"], data["repeat"], timer.at)
    if timer.kind == "inject":
        return engine.command(state.id, SYSTEM, lambda s: [] if s.injects >= data["n"] else [
            DrillInject(data["n"], data["message"], data["signal"], iso(timer.at))])
    if timer.kind == "poll":
        # likewise one check now stands for every poll that fell due while nobody was ticking
        step = state.playbook.step(data["step"])
        elapsed = (min(engine.clock.now(), data["ends"]) - data["start"]).total_seconds()
        latest = max(data["poll"], waits.polls_within(step, elapsed))
        if data["start"] + timedelta(seconds=waits.offset(step, latest)) >= data["ends"]:
            latest -= 1
        return engine.effects.poll(state, data["step"], max(latest, data["poll"]))
    if timer.kind == "wait_timeout":
        return engine.effects.wait_timed_out(state, data["step"])
    if timer.kind == "wait_due":
        return step_timers.wait_due(engine, state, data["step"], data["attempt"], timer.at)
    if timer.kind == "drill_guard":
        return safeguards.fire_guard(engine, state)
    if timer.kind in ("stage_check", "stage_advance", "stage_unwind"):
        return stages.fire(engine, state, timer.kind, data)
    if timer.kind == "retry":
        return step_timers.retry(engine, state, data["step"], data["attempt"])
    raise AssertionError(timer.kind)
