"""`runbook maintenance add|list|cancel`: scheduled maintenance windows (engine/maintenance.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click

from runbook.catalog.durations import parse_duration
from runbook.cli.context import Context
from runbook.cli.options import actor_option, json_option
from runbook.cli.output import dump, echo
from runbook.errors import UsageError
from runbook.text import one_line


def _moment(text: str, option: str, now: datetime) -> datetime:
    if text == "now":
        return now
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a time; write it like 2026-12-08T02:00 (UTC) or "
                         "2026-12-08T03:00+01:00, or now") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.group("maintenance", short_help="Schedule maintenance windows (shown on the public page; alerts kept unpaged).")
def group():
    """Scheduled maintenance: windows over status page components. The public page
    (`runbook serve --public`) shows them; while one runs, alerts on its components open no
    incident and page no one (kept in `runbook alerts` as "maintenance") unless their severity
    is at or above the window's --page-at (default: the most severe level)."""


@group.command("add")
@click.argument("title")
@click.option("--component", "components", multiple=True, metavar="ID", required=True,
              help="A status page component under maintenance (repeat for several).")
@click.option("--start", default="now", show_default=True, help="When it starts: 2026-12-08T02:00 (UTC), or now.")
@click.option("--until", "until", default=None, help="When it ends (a time like --start).")
@click.option("--for", "length", default=None, metavar="DURATION", help="Or how long it lasts: 2h, 90m.")
@click.option("--page-at", default=None, metavar="SEVERITY",
              help="Alerts at this severity or above still page during the window (default: the most severe).")
@click.option("--body", default="", help="What customers read about it on the public page.")
@actor_option
@json_option()
@click.pass_obj
def add(ctx: Context, title, components, start, until, length, page_at, body, actor, as_json):
    """Schedule a maintenance window called TITLE (shown to the public as written).

    \b
    Example:
      runbook maintenance add "Database upgrade" --component messaging \\
          --start 2026-12-08T02:00 --for 2h --body "Messages may be delayed."
    """
    from runbook.engine import maintenance

    if (until is None) == (length is None):
        raise UsageError("say when the window ends: --until TIME or --for DURATION (one of them)")
    service = ctx.engine_service(catalog=True)
    now = service.read(lambda engine: engine.clock.now())
    starts = _moment(start, "--start", now)
    if length is not None:
        try:
            ends = starts + timedelta(seconds=parse_duration(length))
        except ValueError:
            raise UsageError(f"--for {length!r} is not a duration like 2h or 90m") from None
    else:
        ends = _moment(until, "--until", now)
    window = service.commands.call(maintenance.add, title, tuple(components), starts, ends, actor, page_at, body)
    if as_json:
        dump(window)
        return
    echo(f"maintenance window {window['id']} scheduled: {one_line(window['title'])}, "
         f"{window['starts_at'][:16]} to {window['ends_at'][:16]} UTC, {', '.join(window['components'])}"
         + (f"; {window['page_at']} and above still page" if window["page_at"] else ""))


@group.command("list")
@click.option("--all", "everything", is_flag=True, help="Past windows too.")
@json_option()
@click.pass_obj
def list_windows(ctx: Context, everything, as_json):
    """The maintenance windows not over yet (cancelled ones marked), earliest first."""
    from runbook.engine import maintenance

    rows = ctx.engine_service().read(maintenance.windows, everything)
    if as_json:
        dump(rows)
        return
    if not rows:
        echo("no maintenance windows" + ("" if everything else " to come (--all for past ones)"))
        return
    for w in rows:
        state = f"cancelled by {one_line(w['cancelled_by'] or '?')}" if w["cancelled_at"] else "scheduled"
        echo(f"{w['id']:>4}  {w['starts_at'][:16]} → {w['ends_at'][:16]} UTC  {one_line(w['title'])}  "
             f"[{', '.join(one_line(c) for c in w['components'])}]  {state}"
             + (f"; pages at {w['page_at']}" if w["page_at"] else ""))


@group.command("cancel")
@click.argument("window", type=int)
@actor_option
@click.pass_obj
def cancel(ctx: Context, window, actor):
    """Cancel maintenance window WINDOW (its number from `runbook maintenance list`): it leaves the
    public page and alerts page again as usual."""
    from runbook.engine import maintenance

    row = ctx.engine_service().commands.call(maintenance.cancel, window, actor)
    echo(f"maintenance window {row['id']} cancelled: {one_line(row['title'])}")
