"""Options and parameter types shared by every command group, defined once.

`--as NAME` is the same everywhere (default: $RUNBOOK_USER, else the login name), `--json` is
one flag, and an incident ID argument is resolved by the engine before the command runs, so a
command receives the full id (`854` → INC-854ABC) and never deals with prefixes itself.
"""

from __future__ import annotations

import getpass
import os
from contextlib import contextmanager

import click

from runbook.cli.context import Context
from runbook.text import check_actor

JSON_HELP = "Print JSON for scripts."


def default_actor() -> str:
    """Who is at the keyboard when --as is not given: $RUNBOOK_USER, else the login name."""
    try:
        return os.environ.get("RUNBOOK_USER") or getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "responder"


actor_option = click.option(
    "--as", "actor", metavar="NAME", default=default_actor, show_default="$RUNBOOK_USER, else your login name",
    callback=lambda ctx, param, value: check_actor(value),  # refused before anything runs: exit 2, one line
    help="Who you are, recorded as the actor of every event.")


def json_option(help: str = JSON_HELP):
    """The --json flag (as the `as_json` parameter); `help` says what the JSON holds when it is not the usual."""
    return click.option("--json", "as_json", is_flag=True, help=help)


class IncidentId(click.ParamType):
    """An incident id as typed: the whole id or its start, in any case, with or without INC-/DRL-.

    The engine turns it into the one full id (or says why it cannot: empty, ambiguous, unknown),
    so commands get INC-854ABC whether the user typed INC-854ABC, inc-854abc or 854.
    """

    name = "incident id"

    def convert(self, value, param, ctx):
        context = ctx.find_object(Context) if ctx is not None else None
        if context is None or ctx.resilient_parsing:  # shell completion: nothing to look up
            return value
        return context.engine_service().query("resolve_id", value)


INCIDENT_ID = IncidentId()


def incident_argument(required: bool = True, resolve: bool = True):
    """The ID argument of incident commands, resolved to the full id (see IncidentId); as typed
    when not `resolve` (the command resolves it with `Engine.resolve_id` itself)."""
    return click.argument("incident_id", metavar="ID" if required else "[ID]", type=INCIDENT_ID if resolve else str,
                          required=required)


def _pairs(values, option: str) -> dict:
    from runbook.catalog.parameters import parse_pairs  # the catalog's models: when the option is read

    return parse_pairs(values, option)


def parameter_options(command):
    """`--param KEY=VALUE` and `--label KEY=VALUE` (both repeatable): a playbook's parameters, given
    directly or through the alert labels each parameter names (as `params` and `labels` dicts)."""
    command = click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
                           callback=lambda ctx, param, value: _pairs(value, "--label"),
                           help="An alert label, e.g. --label region=eu-west-1; fills each parameter whose "
                                "label: it is, and the severity by the playbook's severity_from (--severity "
                                "wins). Repeatable.")(command)
    return click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
                        callback=lambda ctx, param, value: _pairs(value, "--param"),
                        help="A playbook parameter, e.g. --param region=eu-west-1. Repeatable.")(command)


def opening_options(command):
    """PLAYBOOK and what every command that opens an incident takes: --symptom, --severity,
    --drill, the playbook's parameters (--param, --label) and --as."""
    for decorate in reversed((
            click.argument("playbook"),
            click.option("--symptom", help="Which of the playbook's symptoms was seen (default: the first)."),
            click.option("--severity", help="Severity level (default: from the labels by the playbook's "
                                            "severity_from, else the playbook's)."),
            click.option("--drill", is_flag=True, help="A rehearsal: marked DRILL, flags go to the sandbox file."),
            parameter_options,
            actor_option)):
        command = decorate(command)
    return command


@contextmanager
def reason_required():
    """A command the engine refused for want of a reason (ReasonNeeded) is a usage error here:
    say which option gives it."""
    from runbook.errors import ReasonNeeded, UsageError

    try:
        yield
    except ReasonNeeded as exc:
        raise UsageError(f"{exc}: add --reason TEXT") from None
