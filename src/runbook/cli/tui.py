"""`runbook open` and `runbook resume`: into the TUI (`run_tui` and resume's head start are in
runbook/launch.py, which loads no click)."""

from __future__ import annotations

import sys

import click

from runbook.cli.context import Context
from runbook.cli.options import actor_option, incident_argument, opening_options
from runbook.errors import UsageError
from runbook.launch import Preparation, prepare, run_tui

__all__ = ["open_incident", "require_terminal", "resume", "run_tui"]


def require_terminal(command: str, instead: str) -> None:
    """UsageError unless stdin and stdout are both a terminal: the TUI would write escape sequences
    into a pipe or file and wait for keys that never come. Checked before anything is opened."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(f"runbook {command} needs a terminal; use {instead} for scripts")


@click.command("open", short_help="Open an incident on a playbook, straight into the TUI.")
@opening_options
@click.pass_obj
def open_incident(ctx: Context, playbook, symptom, severity, drill, params, labels, actor):
    """Open an incident on PLAYBOOK and walk it in the TUI (pages escalation level 1).

    Parameters come from --param KEY=VALUE and the alert's --label KEY=VALUE; when a required
    one is missing, a form asks for it before the incident opens. `runbook match "WHAT YOU SEE"`
    finds the playbook; `runbook incident open` does the same without the TUI."""
    require_terminal("open", "`runbook incident open`")
    from runbook.engine.engine import MissingParameters

    engine = ctx.engine(catalog=True)
    try:
        state = engine.open(playbook, actor, symptom=symptom, severity=severity, drill=drill, params=params,
                            labels=labels)
    except MissingParameters:
        run_tui(ctx, actor, engine=engine, opening={"playbook": playbook, "params": params, "labels": labels,
                                                    "symptom": symptom, "severity": severity, "drill": drill})
        return
    run_tui(ctx, actor, state.id, engine)


@click.command(short_help="Reopen an incident in the TUI (default: the latest open one).")
@incident_argument(required=False, resolve=False)  # resolved by `prepare`
@actor_option
@click.pass_obj
def resume(ctx: Context, incident_id, actor):
    """Reopen incident ID in the TUI after settling anything a crash left half-done.

    ID may be shortened to a unique start, in any case, with or without INC-: 854 finds
    INC-854ABC. Without ID: the incident opened most recently that is not resolved."""
    if Preparation.preparing():  # resume's child (runbook/launch.py); the terminal was checked before it forked
        Preparation.answer(ctx, incident_id, actor)
    require_terminal("resume", "`runbook incident resume`")
    ctx.catalog_paths()  # a TUI that could not start must not have settled anything first
    engine = ctx.engine()
    incident_id, view = prepare(engine, incident_id)
    run_tui(ctx, actor, incident_id, engine, first_view=view)
