"""An incident's texts and commands, filled by the one renderer (catalog/templates.py).

The values are the incident's parameters, the step's `with:` (itself rendered from the
parameters and built-ins), the holders of the playbook's roles ({commander}: who holds the role
commander now), and the built-ins {incident}, {title}, {severity}, {service}, {playbook}, {elapsed}, {duration},
{opened_at} and {now}.
What the screen shows before approval is `command()` joined with shlex.join, and what runs is the
same `command()`: shown is what runs.

Texts shown to people never fail: a field that cannot be filled (an optional parameter not
set yet) is shown as ‹name›. Commands and messages posted do fail, before anything runs or is
posted, with one line naming the value and how to set it.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from runbook.catalog.durations import format_duration
from runbook.catalog.models import Step
from runbook.catalog.templates import PLAIN, STRICT, TemplateError, command_line, for_people, render, render_argv
from runbook.engine.state import IncidentState
from runbook.errors import CommandError


class Command(NamedTuple):
    argv: tuple[str, ...]
    cwd: str | None
    env: dict


class Untimed:
    """`now` for a text that must not depend on the clock (what an approval covers,
    engine/approvals.py): {elapsed} reads ‹elapsed›, the field itself, filled when the step runs."""

    def __repr__(self) -> str:
        return "UNTIMED"


UNTIMED = Untimed()


TIMED = ("elapsed", "duration", "now")  # the built-ins that change with time alone


def builtins(state: IncidentState, now: datetime | Untimed | None) -> dict:
    opened = state.opened_at
    holders = {role: person for role, person in state.holders.items() if role in state.playbook.roles}
    out = {**holders, "incident": state.id, "title": state.title, "severity": state.severity,
           "service": state.service, "playbook": state.playbook.id,
           "opened_at": f"{opened:%Y-%m-%d %H:%M} UTC" if opened else "‹opened_at›"}
    if now is UNTIMED:
        return {**out, **{name: f"‹{name}›" for name in TIMED}}
    # the incident's clock stops at resolve: a follow-up message says how long it lasted, not how long ago
    until = min(now, state.resolved_at) if now and state.resolved_at else now
    elapsed = format_duration(round((until - opened).total_seconds())) if until and opened else "0s"
    return {**out, "elapsed": elapsed, "duration": elapsed, "now": f"{now:%Y-%m-%d %H:%M} UTC" if now else "‹now›"}


def mode(state: IncidentState) -> str:
    """Commands and messages: strict in playbooks that declare parameters:, plain before."""
    return STRICT if state.playbook.templated else PLAIN


def current(state: IncidentState) -> dict:
    """The parameters' values that may be used: not those a later capture missed (stale)."""
    if not state.stale:
        return state.parameters
    return {name: value for name, value in state.parameters.items() if name not in state.stale}


def values(state: IncidentState, step: Step | None = None, now: datetime | None = None) -> dict:
    """Every name a template of `step` may use; a `with:` value that cannot be filled is left out."""
    out = {**builtins(state, now), **current(state)}
    if step is not None and step.params:
        base = dict(out)
        for name, value in step.params.items():
            if isinstance(value, str):
                try:
                    out[name] = render(value, base, mode(state))
                except TemplateError:
                    out.pop(name, None)
            else:
                out[name] = value
    return out


def text(state: IncidentState, template: str | None, step: Step | None = None, now: datetime | None = None) -> str:
    """A text for people: a title, instructions, a prompt, a message. Never raises."""
    if not template:
        return template or ""
    pb = state.playbook
    if not pb.templated:  # only the names it knows are filled, as before templates existed; a role nobody holds: ‹role›
        return for_people(template, values(state, step, now), pb.roles, templated=False)
    return for_people(template, values(state, step, now), [*pb.parameters, *pb.captures, *pb.roles])


def params(state: IncidentState, step: Step, now: datetime | None = None) -> dict:
    """The `with:` values a plugin action gets, rendered (CommandError if one cannot be)."""
    known = {**builtins(state, now), **current(state)}
    out = {}
    for name, value in step.params.items():
        out[name] = _render(state, step, f"with: {name}", value, known) if isinstance(value, str) else value
    return out


def command(state: IncidentState, step: Step, now: datetime | None = None) -> Command:
    """What a `run:` step runs: its argv, working directory and environment, rendered."""
    known = values(state, step, now)
    for name, value in step.params.items():  # a with: value that did not render: say why, here
        if isinstance(value, str) and name not in known:
            _render(state, step, f"with: {name}", value, {**builtins(state, now), **current(state)})
    try:
        argv = render_argv(step.run or (), known, mode(state))
    except TemplateError as exc:
        raise CommandError(_why(state, step, "run:", exc)) from None
    cwd = _render(state, step, "cwd:", step.cwd, known) if step.cwd else None
    env = {key: _render(state, step, f"env: {key}", str(value), known) for key, value in step.env.items()}
    return Command(argv, cwd, env)


def message(state: IncidentState, step: Step, now: datetime | None = None) -> str:
    """A communicate step's message as it is posted: filled like a command (strict, or plain in a
    playbook without parameters:), CommandError naming a value that is missing and how to set it."""
    try:
        return render(step.template or "", values(state, step, now), mode(state))
    except TemplateError as exc:
        raise CommandError(_why(state, step, "template:", exc, "posted")) from None


def query(state: IncidentState, step: Step, now: datetime | None = None) -> str:
    """A prometheus: check's query, rendered (CommandError if a value is missing). Values go in as
    they are, so a parameter a query uses should have a pattern: that keeps PromQL out of it."""
    return _render(state, step, "prometheus: query", step.prometheus.query, values(state, step, now))


def shown_check(state: IncidentState, step: Step, now: datetime | None = None) -> str:
    """The check shown before it runs: `prometheus: QUERY expect < 0.02`, or why it cannot run yet."""
    try:
        return str(step.prometheus._replace(query=query(state, step, now)))
    except CommandError as exc:
        return f"(cannot run yet: {exc})"


def shown_command(state: IncidentState, step: Step, now: datetime | None = None) -> str:
    """The command line shown before it runs (exact, shell-quoted), or why it cannot run yet."""
    try:
        cmd = command(state, step, now)
    except CommandError as exc:
        return f"(cannot run yet: {exc})"
    prefix = f"cd {command_line([cmd.cwd])} && " if cmd.cwd else ""
    env = " ".join(f"{key}={command_line([value])}" for key, value in cmd.env.items())
    return prefix + (f"env {env} " if env else "") + command_line(cmd.argv)


def asked(state: IncidentState, step: Step) -> str:
    """What an ask step asks for: the parameter, its summary and what fits, and its value now."""
    parameter = state.playbook.parameters.get(step.parameter)
    if parameter is None:
        return f"asks for {step.parameter}"
    fits = " · ".join(x for x in (parameter.summary, parameter.type if parameter.type != "string" else "",
                                  parameter.pattern and f"pattern {parameter.pattern}") if x)
    now = state.parameters.get(step.parameter)
    return f"asks for {step.parameter}" + (f" ({fits})" if fits else "") + (f", now {now}" if now is not None else "")


def _render(state, step, where, template, known) -> str:
    try:
        return render(template, known, mode(state))
    except TemplateError as exc:
        raise CommandError(_why(state, step, where, exc)) from None


def _why(state: IncidentState, step: Step, where: str, exc: TemplateError, verb: str = "run") -> str:
    if exc.name in state.stale:
        return (f"step '{step.id}' not {verb}: {{{exc.name}}} is stale: {state.stale[exc.name]}; run that step "
                f"again, or set it with `runbook incident param {state.id} {exc.name}=VALUE`")
    by = state.playbook.captures.get(exc.name or "")
    if by and exc.name not in state.parameters:
        steps = " or ".join(f"'{s}'" for s in by)
        return (f"step '{step.id}' not {verb}: {{{exc.name}}} has no value yet: step {steps} captures it from its "
                f"output (not run yet, or nothing matched); or set it with "
                f"`runbook incident param {state.id} {exc.name}=VALUE`")
    asked = state.playbook.asked.get(exc.name or "")
    if asked and exc.name not in state.parameters:
        steps = " or ".join(f"'{s}'" for s in asked)
        return (f"step '{step.id}' not {verb}: parameter {exc.name} has no value yet: step {steps} asks for it "
                f"(answer it with `runbook incident step {state.id} {asked[0]} --done --value VALUE`)")
    if exc.name and exc.name in state.playbook.parameters:
        return (f"step '{step.id}' not {verb}: parameter {exc.name} has no value; set it with "
                f"`runbook incident param {state.id} {exc.name}=VALUE`")
    if exc.name and exc.name in state.playbook.roles and exc.name not in state.holders:
        return (f"step '{step.id}' not {verb}: {{{exc.name}}} has no value: nobody holds the role {exc.name}; "
                f"assign it with `runbook incident assign {state.id} {exc.name} PERSON`")
    return f"step '{step.id}' not {verb}: {where} {exc}"
