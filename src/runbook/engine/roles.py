"""Role holders, approvals checked against them, and steps that wait for a step in another track.

Pure checks on the state: each returns what a command records, or raises CommandError with one
line saying what is missing and how to go on.
"""

from __future__ import annotations

from runbook.catalog.models import Step
from runbook.catalog.suggest import did_you_mean
from runbook.engine.events import RoleAssigned
from runbook.engine.state import DONE, IncidentState
from runbook.errors import CommandError, RunbookError
from runbook.text import check_actor


def assignment(state: IncidentState, role: str, person: str) -> RoleAssigned:
    """The event that gives `role` to `person` (a handoff when someone held it)."""
    roles = state.playbook.roles
    if role not in roles:
        known = ", ".join(roles) or "none (the playbook declares no roles:)"
        raise CommandError(f"playbook {state.playbook.id} has no role '{role}'{did_you_mean(role, list(roles))}; "
                           f"roles: {known}")
    person = person.strip()
    if not person:
        raise CommandError(f"assigning {role} needs a person")
    try:
        check_actor(person)
    except RunbookError as exc:
        raise CommandError(f"cannot assign {role}: {str(exc).split(';')[0].replace('the actor name', 'the name')}") \
            from None
    previous = state.holders.get(role)
    if previous == person:
        raise CommandError(f"{person} already holds {role}")
    return RoleAssigned(role, person, previous)


def approval(state: IncidentState, step: Step, actor: str, override: str) -> tuple[str, str]:
    """(holder, override) for an approval of `step` by `actor`: the holder of the approving role
    approves; someone else only with an override reason; with no holder anyone may ("")."""
    role = step.approval.by
    holder = state.holders.get(role, "")
    override = override.strip()
    if not holder or holder == actor:
        return holder, ""
    if not override:
        raise CommandError(f"step '{step.id}' is approved by the {role}, held by {holder}, not {actor}; "
                           f"ask {holder}, or approve with --override REASON")
    return holder, override


def waiting_for(state: IncidentState, step: Step) -> str | None:
    """The step `step` waits for (wait_for:), while that step is not done yet."""
    if step.wait_for is None:
        return None
    other = state.steps.get(step.wait_for.step)
    return None if other is None or other.status == DONE else step.wait_for.step


def refuse_if_waiting(state: IncidentState, step: Step) -> None:
    other = waiting_for(state, step)
    if other is not None:
        track = state.steps[other].track
        raise CommandError(f"step '{step.id}' waits for step '{other}' (track {track}) to be done first")

