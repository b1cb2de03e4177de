"""`runbook open` and `runbook resume`: into the TUI, and `run_tui` for every command that ends there."""

from __future__ import annotations

import sys

import click

from runbook.cli.context import Context, load_catalog
from runbook.cli.options import actor_option, incident_argument, opening_options
from runbook.cli.output import echo
from runbook.errors import UsageError

__all__ = ["open_incident", "require_terminal", "resume", "run_tui"]


def run_tui(ctx: Context, actor: str, incident: str | None = None, service=None, opening: dict | None = None,
            settle: bool = False) -> None:
    """Run the Textual app (on `incident`, else the home screen) until the user quits, on
    `service` (the command's, with lanes: `ctx.engine_service(lanes=True)`), else on a service
    of the runtime's whose engine is made on a worker after the first frame and closed here.
    `settle`: `incident` is as typed (None: the latest open one), found and settled by the
    screen (see IncidentScreen.settle). An error that ended the app early is raised once the
    terminal is back."""
    import gc

    gc.disable()  # until the first frame: see runbook/__main__.py; the app turns it back on
    from runbook.tui.app import build_app  # textual loads only when the TUI runs

    paths = ctx.catalog_paths()
    catalog = (ctx.engine().catalog if service is not None else None) or (lambda: load_catalog(paths))
    service = service or ctx.service()
    # the plugins load on this thread right after the first frame (the engines' work runs on workers)
    app = build_app(service, catalog, actor, incident, opening=opening, preload=ctx.host, settle=settle)
    try:
        app.run()
        # the screen is gone; a check or a step's command may still be finishing its event
        app.gateway.wait_idle(lambda: echo("runbook: waiting for a running check or command to finish "
                                           "and record its result…", err=True))
    finally:
        app.gateway.release()
    if app.fatal is not None:
        raise app.fatal


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

    service = ctx.engine_service(catalog=True, lanes=True)  # the TUI's too
    try:
        state = service.command("open", playbook, actor, symptom=symptom, severity=severity, drill=drill,
                                params=params, labels=labels)
    except MissingParameters:
        run_tui(ctx, actor, service=service, opening={"playbook": playbook, "params": params, "labels": labels,
                                                      "symptom": symptom, "severity": severity, "drill": drill})
        return
    run_tui(ctx, actor, state.id, service)


@click.command(short_help="Reopen an incident in the TUI (default: the latest open one).")
@incident_argument(required=False, resolve=False)  # resolved by the screen, off its thread
@actor_option
@click.pass_obj
def resume(ctx: Context, incident_id, actor):
    """Reopen incident ID in the TUI after settling anything a crash left half-done.

    ID may be shortened to a unique start, in any case, with or without INC-: 854 finds
    INC-854ABC. Without ID: the incident opened most recently that is not resolved."""
    require_terminal("resume", "`runbook incident resume`")
    # what can be checked without the engine stops the command before its screen is drawn
    ctx.catalog_paths()
    ctx.settings()
    # The screen is drawn at once; a worker then makes the engine, finds the incident and
    # settles what a crash left half-done before any key acts. An error there (no such
    # incident, a damaged record, a database out of reach) ends the app, and run_tui raises it.
    run_tui(ctx, actor, incident_id, settle=True)
