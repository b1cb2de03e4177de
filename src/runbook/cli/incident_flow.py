"""`runbook incident restart` and `runbook incident alert`: a second try from a chosen step, and
what the alert's source says (scripts, and the Alertmanager intake's fallback)."""

from __future__ import annotations

import click

from runbook.cli.context import Context
from runbook.cli.incident import _print_events, group
from runbook.cli.options import actor_option, incident_argument, json_option, reason_required
from runbook.cli.output import echo


@group.command("restart")
@incident_argument()
@click.argument("step")
@click.option("--reason", default="", help="Why the track starts again from STEP (required).")
@actor_option
@json_option()
@click.pass_obj
def restart(ctx: Context, incident_id, step, reason, actor, as_json):
    """Restart STEP's track from STEP, a step the incident already reached: STEP becomes current
    again (a new attempt) and every later step of the track is pending again. Needs --reason;
    refused after resolve. Flags stay as they are."""
    with reason_required():
        events = ctx.engine_service().command("restart", incident_id, actor, step, reason)
    _print_events(events, as_json)


@group.command("alert")
@incident_argument()
@click.argument("state", type=click.Choice(["firing", "resolved"]))
@click.option("--alert", "alert", default="", help="Which alert (its name or fingerprint), for the timeline.")
@actor_option
@json_option()
@click.pass_obj
def alert(ctx: Context, incident_id, state, alert, actor, as_json):
    """Record that the incident's alert stopped firing (resolved) or fires again. Severity rises
    count only the time the alert fires. Saying what is already so records nothing."""
    events = ctx.engine_service().command("alert_state", incident_id, actor, state, alert)
    if not events and not as_json:
        echo(f"the alert is already {state}; nothing recorded")
        return
    _print_events(events, as_json)
