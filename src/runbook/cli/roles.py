"""`runbook incident assign` and `runbook incident close`: role holders and the end of the
follow-up phase; and the lines `incident show` adds for them."""

from __future__ import annotations

import click

from runbook.cli.context import Context
from runbook.cli.options import actor_option, incident_argument, json_option
from runbook.cli.output import dump, echo
from runbook.engine.engine import ReasonNeeded
from runbook.engine.metrics import describe
from runbook.engine.roles import waiting_for
from runbook.errors import UsageError
from runbook.text import one_line


def _print(events, as_json: bool) -> None:
    if as_json:
        dump([e.to_dict() for e in events])
        return
    for event in events:
        echo(f"{event.at:%H:%M:%S}  {one_line(event.actor):<10} {describe(event)}")


@click.command("assign")
@incident_argument()
@click.argument("role")
@click.argument("person")
@actor_option
@json_option()
@click.pass_obj
def assign(ctx: Context, incident_id, role, person, actor, as_json):
    """Give ROLE (a role of the playbook: commander, liaison...) to PERSON; when someone holds
    it, this is a handoff and the timeline names both. The holder approves the steps gated on
    the role, and {ROLE} in the playbook's texts is the holder."""
    _print(ctx.engine_service().command("assign", incident_id, actor, role, person), as_json)


@click.command("leave")
@incident_argument()
@click.argument("role")
@click.argument("person", required=False)
@actor_option
@json_option()
@click.pass_obj
def leave(ctx: Context, incident_id, role, person, actor, as_json):
    """PERSON (default: you, the actor) leaves ROLE, a role held by several (many: true); the
    other holders go on holding it. A role with one holder is handed over with `incident assign`."""
    _print(ctx.engine_service().command("leave", incident_id, actor, role, person), as_json)


@click.command("signal")
@incident_argument()
@click.argument("name")
@actor_option
@json_option()
@click.pass_obj
def signal(ctx: Context, incident_id, name, actor, as_json):
    """Give the signal NAME that steps wait for (wait_for: {signal: NAME} in the playbook), e.g.
    the commander's go for the liaison to post: those steps may then be done."""
    _print(ctx.engine_service().command("signal", incident_id, actor, name), as_json)


@click.command("close")
@incident_argument()
@click.option("--reason", default="", help="Why it is closed with follow-up steps not done (required then).")
@actor_option
@json_option()
@click.pass_obj
def close(ctx: Context, incident_id, reason, actor, as_json):
    """Close a resolved incident whose follow-up steps are not all done (finishing the last
    follow-up step closes it by itself)."""
    try:
        events = ctx.engine_service().command("close_incident", incident_id, actor, reason)
    except ReasonNeeded as exc:
        raise UsageError(str(exc)) from None
    _print(events, as_json)


def show_lines(state) -> list[str]:
    """The phase, the role holders and the waits, for `incident show`."""
    lines = []
    phase = state.phase
    if phase == "follow-up":
        since = f" since {state.resolved_at:%H:%M:%S}" if state.resolved_at else ""
        lines.append(f"  FOLLOW-UP phase{since} (resolved; not part of time to resolve): "
                     "finish the follow-up steps or `runbook incident close`")
    elif phase == "closed":
        lines.append(f"  closed at {state.closed_at:%Y-%m-%d %H:%M:%S} UTC"
                     + (f", follow-up took {_took(state)}" if state.resolved_at else ""))
    if state.playbook.roles:
        held = ", ".join(f"{one_line(role)}: {one_line(state.holders[role]) if role in state.holders else '(nobody)'}"
                         for role in state.playbook.roles)
        lines.append(f"  roles: {held}")
    for track, step_id in state.current.items():
        if step_id is None or step_id not in state.current_steps():
            continue
        other = waiting_for(state, state.playbook.step(step_id))
        if other:
            where = f" ({state.steps[other].track})" if other in state.steps else ""
            lines.append(f"  [{track}] {step_id} is waiting for {other}{where}")
    return lines


def _took(state) -> str:
    from runbook.catalog.durations import format_duration

    return format_duration(round((state.closed_at - state.resolved_at).total_seconds()))
