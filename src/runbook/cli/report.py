"""`runbook report`: response times of incidents and drill runs against their targets, with trends."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from runbook.catalog.durations import format_seconds
from runbook.cli.context import Context
from runbook.cli.output import dump, echo
from runbook.errors import UsageError
from runbook.text import markdown, one_line, shown_data


def _report_lines(report, fmt: str) -> list[str]:
    sep = " | " if fmt == "md" else "  "
    out = []

    def table(header, rows):
        cell = markdown if fmt == "md" else one_line  # step ids and flagged targets come from playbooks
        rows = [[cell(str(c)) for c in row] for row in rows]
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
          [[label, m["n"], *map(format_seconds, (m["median"], m["p90"], m["max"], m["target"])), m["breaches"]]
           for label, m in report.metrics.items()])
    if report.steps:
        out.append("## Steps" if fmt == "md" else "Steps")
        table(["step", "n", "median", "p90", "max"],
              [[s["title"], s["n"], *map(format_seconds, (s["median"], s["p90"], s["max"]))]
               for step, s in report.steps.items()])
    if report.trend:
        out.append("## Trend" if fmt == "md" else "Trend (oldest first; more than 10% over target is flagged)")
        table(["opened", "incident", "TTA", "TTM", "TTR", "flagged"],
              [[r["opened_at"][:16].replace("T", " "), r["incident"] + (" (drill)" if r["drill"] else ""),
                *map(format_seconds, (r["tta"], r["ttm"], r["ttr"])), "; ".join(r["flagged"]) or "—"]
               for r in report.trend])
    if report.actions is not None:
        a = report.actions
        out.append("## Action items" if fmt == "md" else "Action items")
        done = "—" if a["completion"] is None else f"{a['completion']:.0%}"
        age = lambda days: "—" if days is None else f"{days:g} days"  # noqa: E731
        table(["added", "closed", "completion", "open", "overdue", "median age open", "median days to close"],
              [[a["added"], a["closed"], done, a["open"], a["overdue"], age(a["median_open_age_days"]),
                age(a["median_days_to_close"])]])
    if report.predictions:
        out.append("## Simulated against observed" if fmt == "md"
                   else "Simulated against observed (more than 10% apart is flagged for analysis)")
        table(["playbook", "metric", "n", "observed", "simulated", "deviation", ""],
              [[p["playbook"], p["metric"], p["n"], format_seconds(p["observed"]), format_seconds(p["predicted"]),
                f"{p['deviation']:+.0%}", "ANALYSE" if p["flagged"] else ""] for p in report.predictions])
    for item in report.analysis:
        out.append(f"added analysis action item {item}")
    return out


@click.command(short_help="Response times: TTA/TTM/TTR and steps against targets, with trends.")
@click.option("--playbook", help="Only incidents on this playbook.")
@click.option("--drill", "drill_id", help="Only runs of this drill (implies drills).")
@click.option("--since", metavar="DATE", help="Only incidents opened on or after DATE (2026-11-01).")
@click.option("--include-drills", is_flag=True, help="Count drill incidents with real ones (kept apart by default).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "md"]), default="table",
              show_default=True, help="csv gives one row per incident.")
@click.option("--no-analysis", is_flag=True, help="Do not add analysis action items for deviations over 10%.")
@click.pass_obj
def report(ctx: Context, playbook, drill_id, since, include_drills, fmt, no_analysis):
    """Per metric (TTA, TTM, TTR from open) and per step: n, median, p90, max, target and
    breaches; then the trend run by run, flagging anything more than 10% over its target; action
    items (completion, age, overdue); and each playbook's observed TTA and TTM (incidents and
    drill runs) against its latest simulation: more than 10% apart adds an analysis action item
    to the playbook's latest incident (once while open; --no-analysis: never).
    Drill incidents are left out unless --include-drills or --drill; simulated runs are
    summarised by `runbook drill history`."""
    from runbook.drills.report import build

    if since:
        try:
            moment = datetime.fromisoformat(since)
        except ValueError:
            raise UsageError(f"--since {since!r} is not a date, expected e.g. 2026-11-01") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        since = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # as the store keeps times
    from runbook.drills.predictions import add_analysis_items, compare
    from runbook.read_models import action_completion

    service = ctx.engine_service()
    result = service.read(build, playbook, drill_id, since, include_drills)
    result.actions = service.read(action_completion, include_drills)
    result.predictions = service.read(compare, playbook)
    if not no_analysis and any(p["flagged"] for p in result.predictions):
        added = service.commands.call(lambda engine: add_analysis_items(engine, result.predictions))
        if added is None:
            echo("warning: the database is read-only: no analysis action items added", err=True)
        result.analysis = added or []
    for skipped in result.skipped:
        echo(f"warning: left out {skipped}", err=True)
    if fmt == "json":
        dump(result.to_dict())
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["incident", "opened_at", "playbook", "drill", "severity", "tta", "tta_target", "ttm",
                         "ttm_target", "ttr", "ttr_target", "flagged"])
        for r in result.trend:
            writer.writerow(shown_data([r["incident"], r["opened_at"], r["playbook"], r["drill"], r["severity"],
                                        r["tta"], r["tta_target"], r["ttm"], r["ttm_target"], r["ttr"],
                                        r["ttr_target"], "; ".join(r["flagged"])]))
    else:
        for line in _report_lines(result, fmt):
            echo(line)

