"""Role holders, approvals checked against them, and steps that wait for a step in another track.

Pure checks on the state: each returns what a command records, or raises CommandError with one
line saying what is missing and how to go on.
"""

from __future__ import annotations

from runbook.catalog.models import Step
from runbook.catalog.suggest import did_you_mean
from runbook.engine.events import RoleAssigned, RoleLeft
from runbook.engine.state import DONE, IncidentState
from runbook.errors import CommandError, NotFoundError, RunbookError
from runbook.text import check_actor


def _refuse_unknown(state: IncidentState, role: str) -> None:
    """A role the playbook does not declare is not found (exit 3), like an unknown step."""
    roles = state.playbook.roles
    if role not in roles:
        known = ", ".join(roles) or "none (the playbook declares no roles:)"
        raise NotFoundError(f"playbook {state.playbook.id} has no role '{role}'{did_you_mean(role, list(roles))}; "
                            f"roles: {known}")


def assignment(state: IncidentState, role: str, person: str) -> RoleAssigned:
    """The event that gives `role` to `person` (a handoff when someone held it)."""
    roles = state.playbook.roles
    _refuse_unknown(state, role)
    person = person.strip()
    if not person:
        raise CommandError(f"assigning {role} needs a person")
    try:
        check_actor(person)
    except RunbookError as exc:
        raise CommandError(f"cannot assign {role}: {str(exc).split(';')[0].replace('the actor name', 'the name')}") \
            from None
    if roles[role].many:
        if person in state.members.get(role, ()):
            raise CommandError(f"{person} already holds {role}")
        return RoleAssigned(role, person, joined=True)
    previous = state.holders.get(role)
    if previous == person:
        raise CommandError(f"{person} already holds {role}")
    return RoleAssigned(role, person, previous)


def leaving(state: IncidentState, role: str, person: str) -> RoleLeft:
    """The event of `person` leaving `role`, one of its several holders; a role with one holder is
    handed over instead (`assign`), so it is never left without saying to whom."""
    roles = state.playbook.roles
    _refuse_unknown(state, role)
    if not roles[role].many:
        raise CommandError(f"{role} has one holder: hand it over instead "
                           f"(`runbook incident assign {state.id} {role} PERSON`)")
    members = state.members.get(role, [])
    if person not in members:
        held = ", ".join(members) or "nobody"
        raise CommandError(f"{person} does not hold {role} (held by {held})")
    return RoleLeft(role, person)


def holds(state: IncidentState, role: str, person: str) -> bool:
    """Whether `person` holds `role` (one of its holders, for a role held by several)."""
    members = state.members.get(role)
    return person in members if members is not None else state.holders.get(role) == person


def refuse_if_not_holder(state: IncidentState, step: Step, actor: str) -> None:
    """A step of an enforced role (its own role:, else its track's) is worked only by a holder."""
    role_id = step.role or next((t.role for t in state.playbook.tracks if t.id == step.track), None)
    role = state.playbook.roles.get(role_id) if role_id else None
    if role is None or not role.enforced or holds(state, role_id, actor):
        return
    held = state.holders.get(role_id)
    who = f"held by {held}" if held else "held by nobody yet"
    raise CommandError(f"step '{step.id}' is the {role_id}'s ({who}), not {actor}'s: the playbook enforces it; "
                       f"take the role with `runbook incident assign {state.id} {role_id} {actor}`")


def approval(state: IncidentState, step: Step, actor: str, override: str) -> tuple[str, str]:
    """(holder, override) for an approval of `step` by `actor`: the holder of the approving role
    approves; someone else only with an override reason; with no holder anyone may ("")."""
    role = step.approval.by
    holder = state.holders.get(role, "")
    override = override.strip()
    if not holder or holds(state, role, actor):
        return (actor if role in state.members else holder), ""
    if not override:
        raise CommandError(f"step '{step.id}' is approved by the {role}, held by {holder}, not {actor}; "
                           f"ask {holder}, or approve with --override REASON")
    return holder, override


def waiting_for(state: IncidentState, step: Step) -> str | None:
    """What `step` waits for (wait_for:) while it has not happened: the step's id, or "signal NAME"."""
    if step.wait_for is None:
        return None
    if step.wait_for.signal is not None:
        return None if step.wait_for.signal in state.signals else f"signal {step.wait_for.signal}"
    other = state.steps.get(step.wait_for.step)
    return None if other is None or other.status == DONE else step.wait_for.step


def refuse_if_waiting(state: IncidentState, step: Step) -> None:
    other = waiting_for(state, step)
    if other is None:
        return
    if step.wait_for.signal is not None:
        raise CommandError(f"step '{step.id}' waits for the signal '{step.wait_for.signal}'; whoever decides gives "
                           f"it with `runbook incident signal {state.id} {step.wait_for.signal}`")
    track = state.steps[other].track
    raise CommandError(f"step '{step.id}' waits for step '{other}' (track {track}) to be done first")


def give_signal(engine, incident: str, actor: str, name: str) -> list:
    """Record that `name` was given: every step waiting for it may go ahead."""
    from runbook.engine.events import SignalGiven

    name = name.strip()
    if not name:
        raise CommandError("a signal needs a name, like go-public")

    def build(state):
        if state.closed:
            raise CommandError(f"incident {state.id} is closed")
        if name in state.signals:
            who, at = state.signals[name]
            raise CommandError(f"signal '{name}' was already given by {who} at {at:%H:%M:%S}")
        waited = {s.wait_for.signal for s in state.playbook.steps if s.wait_for and s.wait_for.signal}
        if name not in waited:
            hint = did_you_mean(name, sorted(waited))
            signals = ", ".join(sorted(waited)) or "none"
            raise CommandError(f"no step of {state.playbook.id} waits for a signal '{name}'" +
                               (hint.rstrip("?") + "?" if hint else f"; its signals: {signals}"))
        return [SignalGiven(name)]
    return engine.command(incident, actor, build)

