"""Learning from incidents on the command line: `runbook incident review` and `incident similar`
(added to the incident group), `runbook actions list|add|show|close|remind` across incidents."""

from __future__ import annotations

import sys

import click

from runbook.cli.context import Context
from runbook.cli.incident import _print_events, group
from runbook.cli.options import actor_option, incident_argument, json_option
from runbook.cli.output import dump, echo
from runbook.engine.learning import EVIDENCE, KINDS, PRIORITIES, REVIEW_SECTIONS
from runbook.errors import UsageError
from runbook.read_models import action_item_rows, similar_incidents, similar_lines
from runbook.text import one_line


def _review_options(command):
    for section, title in reversed(REVIEW_SECTIONS.items()):
        command = click.option(f"--{section}", section.replace("-", "_"), metavar="TEXT",
                               help=f"Write the postmortem's {title.lower()}.")(command)
    return command


@group.command("review")
@incident_argument()
@_review_options
@actor_option
@json_option("Print JSON: the events written, or each section with its text, who wrote it and when.")
@click.pass_obj
def review(ctx: Context, incident_id, actor, as_json, **sections):
    """Write the postmortem's sections (each option one section; the latest text of a section is the
    one the export shows, every version stays in the log), or print them without options."""
    service = ctx.engine_service()
    given = {name.replace("_", "-"): text for name, text in sections.items() if text is not None}
    if given:
        events = [e for section, text in given.items()
                  for e in service.command("write_review", incident_id, actor, section, text)]
        _print_events(events, as_json)
        return
    written = service.read(lambda engine: _review_of(engine, incident_id))
    if as_json:
        dump(written)
        return
    for section, title in REVIEW_SECTIONS.items():
        entry = written[section]
        if entry is None:
            echo(f"{title}: (not written; --{section} TEXT)")
        else:
            echo(f"{title} ({one_line(entry['by'])}, {entry['at'][:16].replace('T', ' ')}):")
            for line in entry["text"].splitlines() or [""]:
                echo(f"  {line}")


def _review_of(engine, incident: str) -> dict:
    from runbook.engine.clock import iso
    from runbook.engine.learning import review as review_of
    from runbook.text import shown_data

    written = review_of(engine.state(incident))
    return shown_data({section: {"text": written[section][0], "by": written[section][1],
                                 "at": iso(written[section][2])} if section in written else None
                       for section in REVIEW_SECTIONS})


@group.command("similar")
@incident_argument()
@click.option("--limit", default=3, show_default=True, type=click.IntRange(1, 20), help="How many to show.")
@json_option()
@click.pass_obj
def similar(ctx: Context, incident_id, limit, as_json):
    """Past incidents most like this one (same playbook, labels and parameters, symptom words,
    notes), best first, each with what mitigated it (step or degradation, who, how long) and its
    open action items. Searched in the incident database (SQLite FTS5 / PostgreSQL full-text search)."""
    found = ctx.engine_service().read(similar_incidents, incident_id, limit)
    if as_json:
        dump(found)
        return
    for line in similar_lines(found):
        echo(line)


# action items across incidents -----------------------------------------------------------------

@click.group("actions")
def actions():
    """Action items across incidents: list, add, show, close (with evidence), remind owners."""


@actions.command("list")
@click.option("--all", "show_all", is_flag=True, help="Closed items too.")
@click.option("--owner", help="Only this owner's items.")
@click.option("--incident", "incident_id", help="Only this incident's items.")
@click.option("--overdue", is_flag=True, help="Only overdue items (open, past their due date).")
@json_option()
@click.pass_obj
def list_items(ctx: Context, show_all, owner, incident_id, overdue, as_json):
    """Open action items of every incident, oldest first (--all: closed ones too)."""
    service = ctx.engine_service()
    if incident_id:
        incident_id = service.query("resolve_id", incident_id)
    rows = service.read(action_item_rows, incident=incident_id, owner=owner, open_only=not show_all,
                        overdue=overdue)
    if as_json:
        dump(rows)
        return
    if not rows:
        echo("no action items" if show_all else "no open action items")
    for r in rows:
        echo(item_line(r))


def item_line(r: dict) -> str:
    due = f"due {r['due']}" + (" OVERDUE" if r["overdue"] else "") if r["due"] else "no due date"
    tags = " ".join(x for x in (r["priority"], r["kind"]) if x)
    state = f"closed {r['closed_at'][:10]}" if r["status"] == "closed" else f"open {r['age_days']}d"
    return (f"{r['id']}  {state:<16} {one_line(r['owner']):<10} {due:<22} {tags:<13} "
            f"{one_line(r['text'])}")


@actions.command("add")
@incident_argument()
@click.argument("text")
@click.option("--owner", default="", help="Who does it (a roster person; default: you).")
@click.option("--due", metavar="DATE", help="Due date, like 2026-12-24.")
@click.option("--priority", type=click.Choice(PRIORITIES), help="How urgent.")
@click.option("--kind", type=click.Choice(KINDS), help="What it does: prevent, mitigate, detect or process.")
@click.option("--ticket", metavar="URL", help="The ticket that tracks it.")
@actor_option
@json_option()
@click.pass_obj
def add(ctx: Context, incident_id, text, owner, due, priority, kind, ticket, actor, as_json):
    """Add an action item to incident ID (recorded in its log; numbered ID#1, ID#2…)."""
    events = ctx.engine_service().command("add_action_item", incident_id, actor, text, owner or actor, due, priority,
                                          kind, ticket)
    _print_events(events, as_json)
    if not as_json:
        number = sum(1 for e in ctx.engine_service().query("state", incident_id).events
                     if e.type == "action_item_added")
        echo(f"added {incident_id}#{number}")


def _item(ctx: Context, item_id: str) -> dict:
    from runbook.engine.learning import parse_item_id
    from runbook.errors import NotFoundError

    service = ctx.engine_service()
    incident, number = service.read(lambda engine: parse_item_id(item_id))
    incident = service.query("resolve_id", incident)
    for row in service.read(action_item_rows, incident=incident, open_only=False):
        if row["number"] == number:
            return row
    raise NotFoundError(f"{incident} has no action item #{number} (`runbook actions list --incident {incident}`)")


@actions.command("show")
@click.argument("item_id", metavar="ITEM")
@json_option()
@click.pass_obj
def show(ctx: Context, item_id, as_json):
    """Show action item ITEM (INC-…#2): owner, due, priority, kind, ticket, age, and how it was closed."""
    row = _item(ctx, item_id)
    if as_json:
        dump(row)
        return
    echo(f"{row['id']}  {one_line(row['text'])}")
    for key in ("status", "owner", "due", "priority", "kind", "ticket", "added_by", "added_at", "age_days",
                "reminded_at", "closed_by", "closed_at", "evidence_kind", "evidence"):
        if row[key] is not None:
            echo(f"  {key.replace('_', ' ')}: {one_line(str(row[key]))}" + (" (overdue)" if key == "due" and
                                                                            row["overdue"] else ""))


@actions.command("close")
@click.argument("item_id", metavar="ITEM")
@click.option("--evidence", metavar="TEXT", help="What shows it is done: a link, a drill id, a check that holds. "
                                                 "Asked for when not given (at a terminal).")
@click.option("--kind", "evidence_kind", type=click.Choice(EVIDENCE), default="link", show_default=True,
              help="drill: EVIDENCE is a drill run that passed (resolved, no target breached), checked.")
@actor_option
@json_option()
@click.pass_obj
def close(ctx: Context, item_id, evidence, evidence_kind, actor, as_json):
    """Close action item ITEM (INC-…#2) with evidence that it is done."""
    if evidence is None:
        if not sys.stdin.isatty():
            raise UsageError("closing an action item needs evidence: --evidence URL (or a drill id with --kind "
                             "drill, or the check that now holds with --kind check)")
        evidence = click.prompt("Evidence (a link, a drill that passed, a check that now holds)")
    _print_events(ctx.engine_service().command("close_action_item", item_id, actor, evidence, evidence_kind),
                  as_json)


@actions.command("remind")
@actor_option
@json_option()
@click.pass_obj
def remind(ctx: Context, actor, as_json):
    """Remind the owner of every overdue open action item through the notify plugins (at most once a
    day per item; each reminder is recorded on the item's incident). `runbook serve` does it every hour;
    without a server, run it from cron."""
    sent = ctx.engine_service().command("remind_overdue", actor)
    if as_json:
        dump(sent)
        return
    if not sent:
        echo("no overdue action items to remind")
    for s in sent:
        echo(f"reminded {one_line(s['owner'])} of {s['id']} (due {s['due']}; {s['delivered']} notifier(s) took it)")
