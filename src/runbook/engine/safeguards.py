"""Protecting real users: degradations applied automatically, drills stopped when they could hurt.

- A symptom's `auto_degrade:` applies its degradation as soon as an incident opens from an alert
  matching it (the intake of `runbook serve`), when the incident's severity is one listed (or
  any); the actor is `auto-degrade`, so the timeline, `incident show`, the TUI's first screen and
  the status page say it was automatic. A staged degradation starts at its first stage and its
  checks take it from there. Drills get it only when the drill says `automatic: true`.
- A drill stops (noted, every degradation it applied restored, resolved) when a real incident
  opens on its playbook's service, or when one of its `guard:` checks breaches (its condition
  is not met). A guard check that cannot be evaluated is recorded and the drill goes on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from runbook.engine.events import DrillGuardChecked, DrillStopped, Event
from runbook.errors import RunbookError

if TYPE_CHECKING:
    from runbook.engine.engine import Engine
    from runbook.engine.state import IncidentState

AUTO = "auto-degrade"
SYSTEM = "runbook"


def auto_degrade(engine: Engine, incident: str) -> list[Event]:
    """Apply the opened symptom's automatic degradation, if it has one and the severity fits."""
    state = engine.state(incident)
    symptom = next((s for s in state.playbook.symptoms if s.id == state.symptom), None)
    if symptom is None or not symptom.auto_degrade:
        return []
    if state.drill and not (state.snapshot.drill and state.snapshot.drill.automatic):
        return []
    if symptom.auto_severities and state.severity not in symptom.auto_severities:
        return []
    deg = state.degradations[symptom.auto_degrade]
    if deg.touched or deg.pending:  # done, or being done by its owner (settled by whoever takes over)
        return []
    try:
        return engine.degrade(incident, AUTO, symptom.auto_degrade)
    except RunbookError as exc:  # say so on the timeline: a person must know it did not happen
        return engine.note(incident, SYSTEM, f"automatic degradation {symptom.auto_degrade} was not applied: {exc}")


def stop_drills_for(engine: Engine, state: IncidentState) -> list[Event]:
    """A real incident opened: stop every open drill on the same service."""
    if state.drill or not state.service:
        return []
    stopped: list[Event] = []
    for row in engine.list(open_only=True, drills=True):  # by the log too, not only the summary's word
        if row["service"] != state.service or row["id"] == state.id:
            continue
        stopped += stop_drill(engine, row["id"], f"a real incident {state.id} opened on service {state.service}",
                              state.id)
    return stopped


def stop_drill(engine: Engine, incident: str, reason: str, by: str | None = None) -> list[Event]:
    """Record why, then resolve (restoring every degradation the drill applied)."""
    said = engine.command(incident, SYSTEM, lambda s: [] if s.resolved else [DrillStopped(reason, by)])
    if not said:
        return []
    try:
        return said + engine.resolve(incident, SYSTEM)
    except RunbookError as exc:
        return said + engine.note(incident, SYSTEM, f"the drill could not be resolved: {exc}; restore by hand")


def guard_timer(state: IncidentState) -> tuple[datetime, str, dict] | None:
    drill = state.snapshot.drill
    if drill is None or not drill.guard or state.resolved:
        return None
    since = state.guard_checked_at or state.opened_at
    return since + timedelta(seconds=drill.guard_every), "drill_guard", {}


def fire_guard(engine: Engine, state: IncidentState) -> list[Event]:
    from runbook.engine.stages import evaluate

    now = engine.clock.now()
    readings = {c.name: evaluate(engine, state, c.query, c.expect, now) for c in state.snapshot.drill.guard}
    results = [{"check": n, "outcome": r.outcome, "value": r.value, "detail": r.detail} for n, r in readings.items()]
    checked = engine.command(state.id, SYSTEM, lambda s: [] if s.resolved else [DrillGuardChecked(results)])
    breached = [(n, r) for n, r in readings.items() if r.outcome == "not-yet"]
    if not breached:
        return checked
    n, r = breached[0]
    return checked + stop_drill(engine, state.id, f"guard {n} breached: {r.detail}")
