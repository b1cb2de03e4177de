"""`runbook db`: the incident database itself — migrate it, check it.

Either store (a SQLite file, or a team's PostgreSQL from a `postgresql://` URL in --db or
RUNBOOK_DB). Failures to reach or use it are one line and exit 7; the URL is shown without
its password."""

from __future__ import annotations

import os

import click

from runbook.cli.context import Context
from runbook.cli.options import json_option
from runbook.cli.output import dump, echo
from runbook.errors import UsageError


@click.group("db", short_help="The incident database: migrate it, check it.")
def group():
    """The incident database (`runbook --db FILE|URL db ...` or RUNBOOK_DB: a SQLite file, or
    postgresql://USER@HOST/DB)."""


def _open(ctx: Context, migrate: bool, create: bool = True):
    from runbook.store import StoreError, default_path, is_postgres_url, open_store

    location = ctx.db
    if location and is_postgres_url(location):
        return open_store(location, migrate=migrate)
    path = location or default_path()
    if not create and not os.path.exists(path):  # a check never makes the database it checks
        raise StoreError(f"no incident database at {path} (a mistyped --db or RUNBOOK_DB?); "
                         "`runbook db migrate` creates one")
    return open_store(location)  # SQLite migrates on open (the file is yours alone)


@group.command("migrate")
@click.option("--grant", "grant_to", metavar="ROLE", default=None,
              help="Also grant ROLE what responders need: read, append events, open incidents (PostgreSQL).")
@click.option("--grant-server", "grant_server", metavar="ROLE", default=None,
              help="Also grant ROLE what `runbook serve` needs: a responder's grants, the alert ledger and the "
                   "checkpoints (PostgreSQL).")
@click.pass_obj
def migrate(ctx: Context, grant_to, grant_server):
    """Apply the migrations this version of runbook needs (run it as the database's owner)."""
    store = _open(ctx, migrate=False)
    try:
        applied = store.migrate()
        version, _pending = store.schema_version()
        echo(f"{store.path}: schema version {version}" + (f" (applied {', '.join(map(str, applied))})"
                                                           if applied else " (up to date)"))
        if (grant_to or grant_server) and not store.features.grants:
            option = "--grant" if grant_to else "--grant-server"
            raise UsageError(f"{option} is for a PostgreSQL database; a SQLite file is guarded by its file mode")
        if grant_to:
            store.grant(grant_to)
            echo(f"granted {grant_to}: read, append events (no update or delete), open incidents; "
                 "no writing of summaries, checkpoints or the alert ledger")
        if grant_server:
            store.grant(grant_server, server=True)
            echo(f"granted {grant_server}: what responders have, and keeping the alert ledger and checkpoints")
    finally:
        store.close()


@group.command("check")
@click.option("--sample", type=click.IntRange(min=1), default=None, metavar="N",
              help="Verify the chain of the N newest incidents only (default: every incident).")
@json_option()
@click.pass_obj
def check(ctx: Context, sample, as_json):
    """Connectivity, schema version, pending migrations, durability settings and every incident's chain."""
    store = _open(ctx, migrate=False, create=False)
    try:
        version, pending = store.schema_version()
        report = {"database": store.path, "reachable": True, "version": version,
                  "pending": [{"id": n, "name": name} for n, name in pending], "settings": store.settings(),
                  "incidents": 0, "checked": 0, "broken": []}
        if not pending:  # the chains are read only on a schema this version knows
            service = ctx.service(ctx.new_engine(store), one_lane=True)
            try:
                rows = store.incidents(limit=sample)
                report["incidents"] = len(store.incidents()) if sample else len(rows)
                for row in rows:
                    result = service.query("integrity", row["id"])
                    report["checked"] += 1
                    if not result.ok:
                        report["broken"].append({"incident": row["id"], "problems": list(result.problems)})
            finally:
                service.close()
    finally:
        store.close()
    ok = not pending and not report["broken"]
    if as_json:
        dump({**report, "ok": ok})
    else:
        echo(f"{report['database']}: reachable, schema version {version}")
        echo("migrations: " + (", ".join(f"{p['id']} {p['name']}" for p in report["pending"]) + " pending "
                               "(run `runbook db migrate` as the owner)" if pending else "none pending"))
        echo("durability: " + ", ".join(f"{k}={v}" for k, v in report["settings"].items()))
        echo(f"chains: {report['checked']} of {report['incidents']} incident(s) checked, "
             f"{len(report['broken'])} broken")
        for broken in report["broken"]:
            echo(f"  {broken['incident']}: {'; '.join(broken['problems'])}")
    if not ok:
        raise click.exceptions.Exit(1)


@group.command("reindex")
@click.pass_obj
def reindex(ctx: Context):
    """Rebuild the search words (`incident similar`) of every incident whose index is missing or
    behind its log: the index is a projection of the logs, rebuilt from them."""
    count = ctx.engine_service().command("reindex")
    echo(f"reindexed {count} incident(s)")
