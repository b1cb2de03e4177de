"""The catalog commands: `runbook validate`, `list`, `show`, `match` and `schema`."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from runbook.catalog import kinds
from runbook.catalog.suggest import did_you_mean
from runbook.cli.context import DEFAULT_CATALOG, Context, load_catalog
from runbook.cli.options import json_option
from runbook.cli.output import dump, echo, plural
from runbook.errors import NotFoundError, UsageError
from runbook.plugins import unknown_actions
from runbook.read_models import verified_text
from runbook.text import one_line


@click.command(short_help="Check documents; report every problem as FILE:LINE:COL.")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: one FILE:LINE:COL line per problem; json: a report for scripts.")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.pass_obj
def validate(ctx: Context, paths, fmt, strict):
    """Check documents against their schema and each other; report every problem at once.

    PATHS are files or directories (default: the catalog). Documents in PATHS may refer to
    policies and rosters in the catalog. Exit status: 0 valid, 1 invalid documents (or
    warnings with --strict), 2 usage error.
    """
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise UsageError(f"no such file or directory: {', '.join(missing)}")
    wanted: set[str] = set()
    if paths:
        context = ctx.catalog_paths() if ctx.catalogs else [p for p in DEFAULT_CATALOG if Path(p).exists()]
        # The catalog loads first so a duplicate id is blamed on the file being validated.
        catalog = load_catalog(context + list(paths), trust_cache=False)
        wanted = {os.path.realpath(f) for f in _files_under(paths)}
        problems = [p for p in catalog.problems if os.path.realpath(p.file) in wanted]
        files = [f for f in catalog.files if os.path.realpath(f) in wanted]
        documents = [d for d in catalog.documents if os.path.realpath(d.file) in wanted]
    else:
        catalog = load_catalog(ctx.catalog_paths(), trust_cache=False)
        problems, files, documents = catalog.problems, catalog.files, catalog.documents
    problems = problems + [p for p in unknown_actions(catalog, ctx.host())
                           if not paths or os.path.realpath(p.file) in wanted]
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    failed = bool(errors) or (strict and bool(warnings))
    if fmt == "json":
        dump({"valid": not failed, "strict": strict, "files": len(files), "documents": len(documents),
              "errors": [p.to_dict() for p in errors], "warnings": [p.to_dict() for p in warnings]})
    else:
        for problem in problems:
            echo(problem.format())
        verdict = "invalid" if failed else "valid"
        echo(f"{verdict}: {plural(len(errors), 'error')}, {plural(len(warnings), 'warning')} in "
                   f"{plural(len(files), 'file')} ({plural(len(documents), 'valid document')})",
                   err=bool(problems))
    sys.exit(1 if failed else 0)


def _files_under(paths):
    from runbook.catalog.loader import discover

    return discover(paths)[0]


def _kind_name(kind: str) -> str:
    """The canonical name of a document kind typed in any case; a UsageError with the valid ones otherwise."""
    found = kinds.kind_named(kind)
    if not found:
        raise UsageError(f"unknown kind '{kind}', expected one of: {', '.join(kinds.KINDS)}"
                         f"{did_you_mean(kind, kinds.KINDS)}")
    return found.name


@click.command("list", short_help="List the documents in the catalog.")
@click.option("--kind", help="Only documents of this kind (Playbook, SeverityPolicy, EscalationPolicy, Roster...).")
@json_option()
@click.pass_obj
def list_documents(ctx: Context, kind, as_json):
    """List the documents in the catalog: kind, id, title and file."""
    kind_name = _kind_name(kind) if kind else None
    catalog = ctx.load()
    docs = [d for d in catalog.documents if kind_name is None or d.kind == kind_name]
    rows = [{"kind": d.kind, "id": d.id, "title": _title(d), "file": d.file, "line": d.source.line} for d in docs]
    drilled = _drill_verified(ctx, [r["id"] for r in rows if r["kind"] == "Playbook"])
    for r in rows:
        if r["kind"] == "Playbook" and drilled is not None:
            r["last_drill"] = drilled.get(r["id"])
    if as_json:
        dump(rows)
        return
    if not rows:
        echo("no documents" + (f" of kind {kind_name}" if kind_name else ""))
        return
    kw = max(len(r["kind"]) for r in rows)
    iw = max(len(r["id"]) for r in rows)
    for r in rows:
        drill = f"  — {verified_text(r['last_drill'])}" if "last_drill" in r else ""
        echo(f"{r['kind']:<{kw}}  {r['id']:<{iw}}  {one_line(r['title'])}  ({r['file']}){drill}")


def _drill_verified(ctx: Context, playbooks: list[str]) -> dict | None:
    """When a drill last verified each playbook, from the incident database; None when there is
    none yet (listing never creates one)."""
    from runbook.read_models import drill_verified
    from runbook.store import default_path, is_postgres_url

    location = ctx.db or default_path()
    if not playbooks or (not is_postgres_url(location) and not os.path.exists(location)):
        return None
    return ctx.engine_service().read(drill_verified, playbooks)


def _title(doc) -> str:
    """A document's title as it reads: a playbook's filled as it will run (catalog/preview.py)."""
    from runbook.catalog.models import Playbook

    if isinstance(doc.model, Playbook):
        from runbook.catalog import preview

        return preview.title(doc.model)
    return getattr(doc.model, "title", "") or doc.id


@click.command(short_help="Readable overview of a playbook or policy.")
@click.argument("doc_id", metavar="ID")
@click.option("--kind", help="Pick the kind when several documents share the id.")
@json_option("Print the document as JSON.")
@click.pass_obj
def show(ctx: Context, doc_id, kind, as_json):
    """Show a readable overview of a document: for a playbook its symptoms, severity and targets,
    escalation ladder with delays, degradations and steps as an outline with branches.

    Exit status 3 when no document has that ID (with the closest id, if one is close)."""
    catalog = ctx.load()
    kind_name = kinds.kind_named(kind).name if kind and kinds.kind_named(kind) else kind
    doc = catalog.find(doc_id, kind_name)
    if doc is None:
        raise NotFoundError(f"no document with id '{doc_id}'{did_you_mean(doc_id, catalog.ids())} "
                            "(see `runbook list`)")
    drilled = _drill_verified(ctx, [doc.id]) if doc.kind == "Playbook" else None
    if as_json:
        dump({"kind": doc.kind, "id": doc.id, "file": doc.file, "document": doc.data,
              **({"last_drill": drilled.get(doc.id)} if drilled is not None else {})})
        return
    from runbook.catalog.outline import outline

    for line in outline(doc, catalog, datetime.now(UTC)):
        echo(line)
    if drilled is not None:
        echo(f"Drills: {verified_text(drilled.get(doc.id))}")


@click.command(short_help="Rank playbooks for free text and/or alert labels.")
@click.argument("words", nargs=-1, metavar="[TEXT]...")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="An alert label, e.g. --label alertname=RtcVideoPacketLoss; repeatable.")
@click.option("--limit", default=5, show_default=True, type=click.IntRange(min=1), help="Show at most N playbooks.")
@json_option()
@click.pass_obj
def match(ctx: Context, words, labels, limit, as_json):
    """Rank playbooks for what you see: free TEXT (one or more words, quotes optional) and/or
    alert labels, with the reason for each match.

    \b
    Examples:
      runbook match video freezing in one region
      runbook match --label alertname=RtcVideoPacketLoss --label region=eu-west
    """
    text = " ".join(words)
    parsed = {}
    for item in labels:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--label {item!r} is not KEY=VALUE, expected e.g. --label alertname=RtcVideoPacketLoss")
        parsed[key] = value
    if not text.strip() and not parsed:
        raise UsageError("nothing to match: give TEXT (what you see) and/or --label KEY=VALUE")
    catalog = ctx.load()
    from runbook.catalog.matching import rank

    matches = rank(list(catalog.models("Playbook").values()), text, parsed, limit)
    if as_json:
        dump([m.to_dict() for m in matches])
        return
    if not matches:
        echo("no playbook matches; try other words or `runbook list --kind Playbook`")
        return
    for number, m in enumerate(matches, 1):
        echo(f"{number}. {m.playbook}  {one_line(m.title)}  (score {m.score:.2f})")
        for reason in m.reasons:
            echo(f"     {one_line(reason)}")


@click.command(short_help="Print the JSON Schema of a document kind.")
@click.argument("kind", required=False)
def schema(kind):
    """Print the JSON Schema of a document KIND (without KIND: list the kinds).

    Save it and point your editor at it with a modeline on the first line of a document:
    # yaml-language-server: $schema=playbook.schema.json
    """
    if not kind:
        for name, spec in kinds.KINDS.items():
            echo(f"{name:<18} {spec.summary}")
        return
    dump(kinds.schema(_kind_name(kind)))
