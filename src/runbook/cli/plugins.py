"""`runbook plugins`: which plugins loaded, the hooks they implement and the actions they provide."""

from __future__ import annotations

import click

from runbook.cli.context import Context
from runbook.cli.options import json_option
from runbook.cli.output import dump, echo, secho


@click.command(short_help="List loaded plugins and the hooks they implement.")
@json_option()
@click.pass_obj
def plugins(ctx: Context, as_json):
    """List loaded plugins: built-ins, entry points (group "runbook") and *.py files in the
    plugins directory, with the hooks each implements and the actions it provides.

    RUNBOOK_LOAD_PLUGINS=a,b loads only those plugins; RUNBOOK_TRACE_PLUGINS=1 prints every
    hook call to stderr.
    """
    host = ctx.host()
    rows = [p.to_dict() for p in host.plugins]
    if as_json:
        dump(rows)
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        if r["error"]:
            secho(f"{r['name']:<{width}}  {r['source']:<12} FAILED: {r['error']}  ({r['location']})", fg="red")
            continue
        actions = f"; actions: {', '.join(r['actions'])}" if r["actions"] else ""
        echo(f"{r['name']:<{width}}  {r['source']:<12} hooks: {', '.join(r['hooks'])}{actions}")
