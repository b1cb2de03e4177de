"""`runbook drill ...`: rehearse a playbook by hand in the TUI, or simulate it thousands of times."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from runbook.catalog.durations import format_seconds
from runbook.engine.metrics import MEASURES
from runbook.errors import NotFoundError, UsageError


def _table(summary: dict) -> list[str]:
    lines = [f"{summary['drill']} on {summary['playbook']}: {summary['runs']:,} simulated runs, seed {summary['seed']}",
             "", f"{'metric':<8}{'n':>8}  {'median':>10}  {'p90':>10}  {'max':>12}"]
    for key, _, label in MEASURES:
        s = summary[key]
        lines.append(f"{label:<8}{s['n']:>8,}  {format_seconds(s['median']):>10}  {format_seconds(s['p90']):>10}  "
                     f"{format_seconds(s['max']):>12}")
    lines += ["", "probability of missing each target:"]
    lines += [f"  {name:<12} {p:6.1%}" for name, p in summary["breach_probability"].items()]
    lines += ["", "who acknowledged:"]
    lines += [f"  {level:<12} {share:6.1%}" for level, share in summary["answered_by"].items()]
    return lines


def _report_lines(report, fmt: str) -> list[str]:
    sep = " | " if fmt == "md" else "  "
    out = []

    def table(header, rows):
        if fmt == "md":
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out.extend("| " + " | ".join(str(c) for c in row) + " |" for row in rows)
        else:
            widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
            out.append(sep.join(str(h).ljust(w) for h, w in zip(header, widths)))
            out.extend(sep.join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows)
        out.append("")

    title = f"{report.incidents} incident(s)"
    out += [f"# Response times: {title}" if fmt == "md" else f"Response times over {title}", ""]
    table(["metric", "n", "median", "p90", "max", "target", "breaches"],
          [[label, m["n"], format_seconds(m["median"]), format_seconds(m["p90"]), format_seconds(m["max"]), format_seconds(m["target"]), m["breaches"]]
           for label, m in report.metrics.items()])
    if report.steps:
        out.append("## Steps" if fmt == "md" else "Steps")
        table(["step", "n", "median", "p90", "max"],
              [[step, s["n"], format_seconds(s["median"]), format_seconds(s["p90"]), format_seconds(s["max"])] for step, s in report.steps.items()])
    if report.trend:
        out.append("## Trend" if fmt == "md" else "Trend (oldest first; more than 10% over target is flagged)")
        table(["opened", "incident", "TTA", "TTM", "TTR", "flagged"],
              [[r["opened_at"][:16].replace("T", " "), r["incident"] + (" (drill)" if r["drill"] else ""),
                format_seconds(r["tta"]), format_seconds(r["ttm"]), format_seconds(r["ttr"]), "; ".join(r["flagged"]) or "—"]
               for r in report.trend])
    return out


def attach(cli) -> None:
    @cli.command(short_help="Response times: TTA/TTM/TTR and steps against targets, with trends.")
    @click.option("--playbook", help="Only incidents on this playbook.")
    @click.option("--drill", "drill_id", help="Only runs of this drill (implies drills).")
    @click.option("--since", metavar="DATE", help="Only incidents opened on or after DATE (2026-11-01).")
    @click.option("--include-drills", is_flag=True, help="Count drill incidents with real ones (kept apart by default).")
    @click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "md"]), default="table",
                  show_default=True, help="csv gives one row per incident.")
    @click.pass_obj
    def report(ctx, playbook, drill_id, since, include_drills, fmt):
        """Per metric (TTA, TTM, TTR from open) and per step: n, median, p90, max, target and
        breaches; then the trend run by run, flagging anything more than 10% over its target.
        Drill incidents are left out unless --include-drills or --drill; simulated runs are
        summarised by `runbook drill history`."""
        from runbook.drills.report import build

        if since:
            try:
                moment = datetime.fromisoformat(since)
            except ValueError:
                raise UsageError(f"--since {since!r} is not a date, expected e.g. 2026-11-01") from None
            moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
            since = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # as the store keeps times
        result = build(ctx.engine(), playbook, drill_id, since, include_drills)
        if fmt == "json":
            click.echo(json.dumps(result.to_dict(), indent=2))
        elif fmt == "csv":
            import csv

            writer = csv.writer(sys.stdout)
            writer.writerow(["incident", "opened_at", "playbook", "drill", "severity", "tta", "tta_target", "ttm",
                             "ttm_target", "ttr", "ttr_target", "flagged"])
            for r in result.trend:
                writer.writerow([r["incident"], r["opened_at"], r["playbook"], r["drill"], r["severity"],
                                 r["tta"], r["tta_target"], r["ttm"], r["ttm_target"], r["ttr"], r["ttr_target"],
                                 "; ".join(r["flagged"])])
        else:
            for line in _report_lines(result, fmt):
                click.echo(line)

    @cli.group(short_help="Rehearse playbooks: game days in the TUI, or simulated responders.")
    def drill():
        """Rehearse a playbook with a Drill document (see drills/).

        \b
        Examples:
          runbook drill run weekly-audio-fallback             # a game day in the TUI, marked DRILL
          runbook drill run escalation-stress --auto --runs 10000 --seed 7
          runbook drill history escalation-stress
        """

    @drill.command("run")
    @click.argument("drill_id", metavar="DRILL")
    @click.option("--auto", is_flag=True, help="Simulate responders from the drill's profiles instead of people.")
    @click.option("--runs", default=1000, show_default=True, type=click.IntRange(min=1),
                  help="How many simulated runs (with --auto).")
    @click.option("--seed", default=0, show_default=True, type=int, help="Random seed (with --auto): same seed, same result.")
    @click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (with --auto).")
    @click.option("--as", "actor", metavar="NAME", help="Who runs the drill (default: $RUNBOOK_USER or your login).")
    @click.pass_obj
    def run(ctx, drill_id, auto, runs, seed, as_json, actor):
        """Run DRILL: in the TUI with people (injects pop up on time, flags go to the sandbox file
        unless the drill is declared live and you confirm), or with --auto as simulated runs on a
        virtual clock, printing TTA/TTM/TTR distributions, the probability of missing each target
        and which escalation level answered. Simulation summaries are stored; events are not."""
        from runbook.catalog.loader import load
        from runbook.cli_incident import default_actor

        catalog = load(ctx.catalog_paths())
        model = catalog.models("Drill").get(drill_id)
        if model is None:
            from runbook.catalog.suggest import did_you_mean

            raise NotFoundError(f"no drill '{drill_id}'{did_you_mean(drill_id, catalog.ids('Drill'))} "
                                "(see `runbook list --kind Drill`)")
        if auto:
            from runbook.drills.simulate import simulate

            if runs >= 200 and sys.stderr.isatty():
                with click.progressbar(length=runs, label="simulating", file=sys.stderr) as bar:
                    summary = simulate(catalog, model, runs, seed, progress=bar.update)
            else:
                summary = simulate(catalog, model, runs, seed)
            created = datetime.now(timezone.utc).isoformat()
            summary["id"] = ctx.store().record_simulation(model.id, model.playbook, runs, seed, created, summary)
            if as_json:
                click.echo(json.dumps(summary, indent=2))
            else:
                for line in _table(summary):
                    click.echo(line)
            return
        if as_json:
            raise UsageError("--json goes with --auto; a drill with people runs in the TUI")
        live = model.mode == "live"
        if live and not click.confirm(f"Drill {model.id} is declared LIVE: it flips real flags in production. "
                                      "Go ahead?", default=False):
            raise UsageError("live drill not confirmed; nothing was started")
        engine = ctx.engine(catalog=True)
        actor = actor or default_actor()
        state = engine.open(model.playbook, actor, symptom=model.symptom, severity=model.severity, drill=True,
                            rehearse=model.id, live=live)
        from runbook.cli import _run_tui

        _run_tui(ctx, state.id, engine, actor)

    @drill.command("schedule")
    @click.option("--once", is_flag=True, help="One pass over the schedules, then exit (for cron or systemd timers).")
    @click.option("--interval", default=30, show_default=True, type=click.IntRange(min=1),
                  help="Seconds between passes when running continuously.")
    @click.option("--as", "actor", metavar="NAME", default="scheduler", show_default=True,
                  help="Actor recorded on the incidents it opens.")
    @click.pass_obj
    def schedule(ctx, once, interval, actor):
        """Fire due drills by their cron schedule and time zone. Human drills (with participants)
        open a DRILL incident and page through the notify hook; automated drills run a simulation
        and store its summary. After downtime only the most recent missed run fires, and only
        within the drill's window; a drill whose previous run is still open is skipped; several
        schedulers on one database never fire the same run twice."""
        import time

        from runbook.drills.scheduler import run_once

        from runbook.catalog.loader import load_catalog

        engine = ctx.engine()
        while True:
            engine.catalog = load_catalog(ctx.catalog_paths())  # each pass sees edited schedules
            for decision in run_once(engine, engine.catalog, actor):
                when = decision.scheduled.strftime("%Y-%m-%d %H:%M %Z") if decision.scheduled else ""
                click.echo(f"{decision.drill} ({when}): {decision.action}" + (f" — {decision.detail}"
                                                                            if decision.detail else ""))
            if once:
                return
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return

    @drill.command("history")
    @click.argument("drill_id", metavar="[DRILL]", required=False)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @click.pass_obj
    def history(ctx, drill_id, as_json):
        """Stored summaries of simulated runs, oldest first."""
        rows = ctx.store().simulations(drill_id)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            click.echo("no simulations stored" + (f" for {drill_id}" if drill_id else ""))
            return
        for row in rows:
            s = row["summary"]
            ack = s["breach_probability"].get("acknowledge")
            miss = f", ack target missed {ack:.1%}" if ack is not None else ""
            click.echo(f"#{row['id']} {row['created_at'][:19]} {row['drill']}: {row['runs']:,} runs, seed {row['seed']}, "
                       f"TTA median {format_seconds(s['tta']['median'])} p90 {format_seconds(s['tta']['p90'])}{miss}")
