"""`runbook drill ...`: rehearse a playbook by hand in the TUI, or simulate it thousands of times."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from runbook.catalog.durations import format_seconds
from runbook.cli.context import Context, load_catalog
from runbook.cli.options import actor_option, json_option
from runbook.cli.output import dump, echo
from runbook.cli.tui import run_tui
from runbook.engine.metrics import MEASURES
from runbook.errors import NotFoundError, UsageError
from runbook.text import one_line


def _table(summary: dict) -> list[str]:
    path = "" if summary.get("method", "engine") == "plan" else ", each through the engine"
    lines = [f"{summary['drill']} on {summary['playbook']}: {summary['runs']:,} simulated runs{path}, "
             f"seed {summary['seed']}", "", f"{'metric':<8}{'n':>8}  {'median':>10}  {'p90':>10}  {'max':>12}"]
    for key, _, label in MEASURES:
        s = summary[key]
        lines.append(f"{label:<8}{s['n']:>8,}  {format_seconds(s['median']):>10}  {format_seconds(s['p90']):>10}  "
                     f"{format_seconds(s['max']):>12}")
    lines += ["", "probability of missing each target:"]
    lines += [f"  {name:<12} {p:6.1%}" for name, p in summary["breach_probability"].items()]
    lines += ["", "who acknowledged:"]
    lines += [f"  {level:<12} {share:6.1%}" for level, share in summary["answered_by"].items()]
    return lines


@click.group("drill", short_help="Rehearse playbooks: game days in the TUI, or simulated responders.")
def group():
    """Rehearse a playbook with a Drill document (see drills/).

    \b
    Examples:
      runbook drill run weekly-audio-fallback             # a game day in the TUI, marked DRILL
      runbook drill run escalation-stress --auto --runs 10000 --seed 7
      runbook drill history escalation-stress
    """


@group.command("run")
@click.argument("drill_id", metavar="DRILL")
@click.option("--auto", is_flag=True, help="Simulate responders from the drill's profiles instead of people.")
@click.option("--runs", default=1000, show_default=True, type=click.IntRange(min=1),
              help="How many simulated runs (with --auto).")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Random seed (with --auto): same seed, same result.")
@click.option("--exact", is_flag=True,
              help="Drive the real engine for every run (slower). By default the drill is compiled once into "
                   "a plan and the runs are drawn at once; drills the plan does not model go through the engine.")
@json_option("Print the summary as JSON (with --auto).")
@actor_option
@click.pass_obj
def run(ctx: Context, drill_id, auto, runs, seed, exact, as_json, actor):
    """Run DRILL: in the TUI with people (injects pop up on time, flags go to the sandbox file
    unless the drill is declared live and you confirm), or with --auto as simulated runs on a
    virtual clock, printing TTA/TTM/TTR distributions, the probability of missing each target
    and which escalation level answered. Simulation summaries are stored; events are not."""
    from runbook.catalog.loader import load

    catalog = load(ctx.catalog_paths())
    model = catalog.models("Drill").get(drill_id)
    if model is None:
        from runbook.catalog.suggest import did_you_mean

        raise NotFoundError(f"no drill '{drill_id}'{did_you_mean(drill_id, catalog.ids('Drill'))} "
                            "(see `runbook list --kind Drill`)")
    if auto:
        from runbook.drills.simulate import PLAN_FROM, simulate

        if runs >= 200 and sys.stderr.isatty():
            with click.progressbar(length=runs, label="simulating", file=sys.stderr) as bar:
                summary = simulate(catalog, model, runs, seed, progress=bar.update, exact=exact)
        else:
            summary = simulate(catalog, model, runs, seed, exact=exact)
        because = summary.get("engine_because")
        if because and not exact and runs >= PLAN_FROM:
            echo(f"{model.id}: every run goes through the engine: the plan does not model this drill "
                 f"({because})", err=True)
        created = datetime.now(UTC).isoformat()
        summary["id"] = ctx.engine_service().command("record_simulation", model.id, model.playbook, runs, seed,
                                                       created, summary)
        if as_json:
            dump(summary)
        else:
            for line in _table(summary):
                echo(line)
        return
    if as_json or exact:
        raise UsageError(f"{'--json' if as_json else '--exact'} goes with --auto; a drill with people runs in the TUI")
    from runbook.cli.tui import require_terminal

    require_terminal("drill run", "`runbook drill run --auto` (simulated responders)")
    live = model.mode == "live"
    if live and not click.confirm(f"Drill {model.id} is declared LIVE: it flips real flags in production. "
                                  "Go ahead?", default=False):
        raise UsageError("live drill not confirmed; nothing was started")
    service = ctx.engine_service(catalog=True, lanes=True)  # the TUI's too
    state = service.command("open", model.playbook, actor, symptom=model.symptom, severity=model.severity,
                            drill=True, rehearse=model.id, live=live)
    run_tui(ctx, actor, state.id, service)


@group.command("schedule")
@click.option("--once", is_flag=True, help="One pass over the schedules, then exit (for cron or systemd timers).")
@click.option("--interval", default=30, show_default=True, type=click.IntRange(min=1),
              help="Seconds between passes when running continuously.")
@actor_option
@click.pass_obj
def schedule(ctx: Context, once, interval, actor):
    """Fire due drills by their cron schedule and time zone. Human drills (with participants)
    open a DRILL incident and page through the notify hook; automated drills run a simulation
    and store its summary. After downtime only the most recent missed run fires, and only
    within the drill's window; a drill whose previous run is still open is skipped; several
    schedulers on one database never fire the same run twice.

    The incidents it opens are recorded as opened by --as NAME; from cron or a systemd timer,
    say who is firing them, e.g. --as scheduler."""
    import time

    from runbook.drills.scheduler import run_once

    service = ctx.engine_service()
    while True:
        catalog = load_catalog(ctx.catalog_paths())  # each pass sees edited schedules
        service.set_catalog(catalog)
        for decision in service.commands.call(run_once, catalog, actor):
            when = decision.scheduled.strftime("%Y-%m-%d %H:%M %Z") if decision.scheduled else ""
            echo(f"{decision.drill} ({when}): {decision.action}" + (f" — {one_line(decision.detail)}"
                                                                        if decision.detail else ""))
        if once:
            return
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return


@group.command("history")
@click.argument("drill_id", metavar="[DRILL]", required=False)
@json_option()
@click.pass_obj
def history(ctx: Context, drill_id, as_json):
    """Stored summaries of simulated runs, oldest first."""
    rows = ctx.engine_service().query("simulations", drill_id)
    if as_json:
        dump(rows)
        return
    if not rows:
        echo("no simulations stored" + (f" for {drill_id}" if drill_id else ""))
        return
    for row in rows:
        s = row["summary"]
        ack = s["breach_probability"].get("acknowledge")
        miss = f", ack target missed {ack:.1%}" if ack is not None else ""
        echo(f"#{row['id']} {row['created_at'][:19]} {row['drill']}: {row['runs']:,} runs, seed {row['seed']}, "
                   f"TTA median {format_seconds(s['tta']['median'])} p90 {format_seconds(s['tta']['p90'])}{miss}")
