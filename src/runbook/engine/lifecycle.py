"""The end of an incident: resolve (never with a flag change in flight, restoring every
degradation fully or partly applied), the follow-up phase closing, and a drill's end conditions."""

from __future__ import annotations

from runbook.engine import pages, transition
from runbook.engine.effects import in_flight
from runbook.engine.events import Closed, Event, Resolved
from runbook.engine.limits import check_size
from runbook.engine.state import IncidentState
from runbook.errors import CommandError, PluginError, ReasonNeeded


def to_restore(state: IncidentState) -> list[str]:
    """The degradations a resolve restores, in the order it restores them (Engine.plan_resolve says
    what each writes)."""
    return [name for name, deg in state.degradations.items() if deg.touched]


def resolve(engine, incident: str, actor: str, keep_degradations: bool = False,
            handed_off_to: str | None = None) -> list[Event]:
    """Resolve, restoring every degradation fully or partly applied (unless kept). Never while a
    flag change is in flight: waits up to `resolve_wait` seconds for its owner to finish it
    (settling it first when its owner is gone), then refuses, naming it. `handed_off_to`: a
    handoff step resolves it, and the record names the incident that carries on."""
    engine.require_live(engine.state(incident))
    settled = engine.effects.settle_in_flight(incident, engine.resolve_wait)
    state = engine.state(incident)
    restored: list[Event] = []
    if not keep_degradations:
        for name in to_restore(state):
            restored += engine.restore(incident, actor, name)
        state = engine.state(incident)
        still = [name for name, deg in state.degradations.items() if deg.touched]
        if still:
            reasons = [e.record.reason for e in restored if e.type == "degradation_failed"]
            raise PluginError(f"not resolved: could not restore {', '.join(still)}: {'; '.join(reasons)}. "
                              "Fix the flag backend and resolve again, or resolve --keep-degradations")

    def build(state):
        # checked on the very state the event is appended to: no change may start in between
        engine.require_live(state)
        busy = [deg for deg in state.degradations.values() if deg.pending]
        if busy:
            raise CommandError(f"not resolved: {in_flight(busy[0])}")
        kept = [name for name, deg in state.degradations.items() if deg.touched]
        if kept and not keep_degradations:
            raise CommandError(f"not resolved: {', '.join(kept)} was applied meanwhile; resolve again")
        followup = state.playbook.followup
        if followup is None:
            return [Resolved(kept, handed_off_to=handed_off_to)]
        return [Resolved(kept, followup=True, handed_off_to=handed_off_to),
                *transition.start(state, followup, followup.steps[0].id)]
    resolved = engine.command(incident, actor, build)
    return settled + restored + resolved + pages.tell_pagers(engine, incident, "resolve", actor)


def close_incident(engine, incident: str, actor: str, reason: str = "") -> list[Event]:
    """Close a resolved incident before its follow-up steps are all done (they close it when
    they are); steps left open need a reason."""
    check_size("the reason", reason)

    def build(state):
        if state.closed:
            raise CommandError(f"incident {state.id} was already closed at {state.closed_at:%H:%M:%S}")
        if not state.resolved:
            raise CommandError(f"incident {state.id} is not resolved yet; resolve it first "
                               f"(runbook incident resolve {state.id})")
        if state.playbook.followup is None:
            raise CommandError(f"incident {state.id} has no follow-up phase; resolving it was final")
        left = state.current_steps()
        if left and not reason.strip():
            raise ReasonNeeded(f"closing {state.id} with follow-up step{'s' if len(left) > 1 else ''} "
                               f"{', '.join(left)} not done needs a reason (--reason)")
        return [Closed(reason.strip(), left)]
    return engine.command(incident, actor, build)


def drill_over(state: IncidentState) -> str | None:
    """What ended the rehearsal, when every one of its drill's `ends` conditions holds (else None)."""
    drill = state.snapshot.drill
    if drill is None or not drill.ends or state.resolved:
        return None
    finished = ("done", "skipped")
    main = state.playbook.tracks[0].steps if state.playbook.tracks else ()
    for condition in drill.ends:
        if condition == "acknowledged":
            met = state.acknowledged_at is not None
        elif condition == "mitigated":
            met = state.mitigated_at is not None
        elif condition == "first-step":
            met = bool(main) and state.steps[main[0].id].status in finished
        else:
            met = condition in state.steps and state.steps[condition].status in finished
        if not met:
            return None
    return " and ".join(drill.ends)
