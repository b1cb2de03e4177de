"""The `runbook` command: thin click commands that call the catalog and print.

No logic lives here beyond reading arguments and printing results; every error a user can
cause is a RunbookError and is printed as one line, never as a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import click

from runbook import __version__
from runbook.catalog import kinds
from runbook.catalog.suggest import did_you_mean
from runbook.engine import Engine, SystemClock
from runbook.store import Store
from runbook.errors import NotFoundError, RunbookError, UsageError
from runbook.plugins import PluginHost, unknown_actions
from runbook.settings import Settings

if TYPE_CHECKING:
    from runbook.catalog.loader import Catalog


def load_catalog(paths, **options) -> Catalog:
    """The catalog loader, imported on first use: resuming an incident runs from its snapshot
    and never reads YAML, so the TUI and headless commands start without PyYAML and the schemas."""
    from runbook.catalog.loader import load_catalog as load

    return load(paths, **options)

DEFAULT_CATALOG = ("playbooks", "drills")
CATALOG_HELP = (f"Directory or file of documents; repeatable. Default: ./{DEFAULT_CATALOG[0]} and "
                f"./{DEFAULT_CATALOG[1]} where they exist. Env: RUNBOOK_CATALOG (paths separated by '{os.pathsep}').")


class RunbookGroup(click.Group):
    """Prints RunbookErrors as one plain line and exits with the error's code; adds plugin commands."""

    def _plugin_commands(self, ctx) -> dict:
        if getattr(self, "_from_plugins", None) is None:
            plugins_dir = ctx.params.get("plugins_dir") if ctx else None
            collector = click.Group()
            try:
                PluginHost(Settings.from_environment(plugins_dir=plugins_dir)).register_commands(collector)
            except RunbookError:
                pass
            self._from_plugins = {n: c for n, c in collector.commands.items() if n not in self.commands}
        return self._from_plugins

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands(ctx)))

    def get_command(self, ctx, name):
        return super().get_command(ctx, name) or self._plugin_commands(ctx).get(name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RunbookError as exc:
            click.echo(f"runbook: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


class Context:
    """What every command needs: where the catalog is, and the plugins (loaded on first use)."""

    def __init__(self, catalogs: tuple[str, ...], plugins_dir: str | None = None, db: str | None = None):
        self.catalogs = catalogs
        self.plugins_dir = plugins_dir
        self.db = db
        self._host = None
        self._store = None

    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.db)
            click.get_current_context().call_on_close(self._store.close)
        return self._store

    def engine(self, catalog: bool = False) -> Engine:
        """The engine on the incident database; `catalog` loads the playbooks (needed to open).
        It is closed (observers' failures recorded) before the store, when the command ends."""
        engine = Engine(self.store(), SystemClock(), self.host(),
                        load_catalog(self.catalog_paths()) if catalog else None)
        click.get_current_context().call_on_close(engine.close)
        return engine

    def settings(self, **overrides) -> Settings:
        return Settings.from_environment(plugins_dir=self.plugins_dir, **overrides)

    def host(self, **overrides) -> PluginHost:
        if self._host is None or overrides:
            self._host = PluginHost(self.settings(**overrides))
        return self._host

    def catalog_paths(self) -> list[str]:
        if self.catalogs:
            return list(self.catalogs)
        found = [p for p in DEFAULT_CATALOG if Path(p).is_dir()]
        if not found:
            raise UsageError(f"no catalog here: ./{DEFAULT_CATALOG[0]} does not exist; run runbook from a "
                             "directory that has one, pass --catalog DIR or set RUNBOOK_CATALOG")
        return found

    def load(self, warn: bool = True) -> Catalog:
        catalog = load_catalog(self.catalog_paths())
        if warn and catalog.errors:
            click.echo(f"runbook: warning: the catalog has {len(catalog.errors)} error(s); invalid documents "
                       "are left out (run `runbook validate`)", err=True)
        return catalog


def _dump(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@click.group(cls=RunbookGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--catalog", "catalogs", multiple=True, envvar="RUNBOOK_CATALOG", metavar="PATH",
              type=click.Path(), help=CATALOG_HELP)
@click.option("--db", metavar="FILE", envvar="RUNBOOK_DB", type=click.Path(dir_okay=False),
              help="Incident database. Env: RUNBOOK_DB. Default: ~/.local/share/runbook/runbook.db.")
@click.option("--plugins-dir", metavar="DIR", envvar="RUNBOOK_PLUGINS_DIR", type=click.Path(file_okay=False),
              help="Load *.py plugins from DIR (default ./plugins). Env: RUNBOOK_PLUGINS_DIR.")
@click.version_option(__version__, prog_name="runbook")
@click.pass_context
def cli(ctx, catalogs, db, plugins_dir):
    """Incident-response runbooks in the terminal: walk a responder through the right playbook,
    with escalation timers and one-key degradation switches.

    \b
    Start here:
      runbook                           the TUI: open incidents, playbooks, drills
      runbook match "video freezing"    which playbook fits what you see
      runbook open video-call-degraded  open an incident and walk it in the TUI
      runbook incident --help           the same from scripts and chat-ops
      runbook drill run surprise-ack --auto --runs 1000
      runbook report                    response times against targets
      runbook validate --strict         check every document (CI-friendly)
    """
    ctx.obj = Context(catalogs, plugins_dir, db)
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            _run_tui(ctx.obj)
        else:
            _overview(ctx.obj)


def _run_tui(ctx: Context, incident: str | None = None, engine: Engine | None = None, actor: str | None = None):
    import gc

    from runbook.cli_incident import default_actor

    gc.disable()  # until the first frame: see runbook/__main__.py; the app turns it back on
    from runbook.tui.app import build_app  # textual loads only when the TUI runs

    engine = engine or ctx.engine()
    paths = ctx.catalog_paths()
    catalog = engine.catalog or (lambda: load_catalog(paths))
    app = build_app(engine, catalog, actor or default_actor(), incident)
    app.run()
    # the screen is gone; a check or a step's command may still be finishing its event
    app.gateway.wait_idle(lambda: click.echo("runbook: waiting for a running check or command to finish "
                                             "and record its result…", err=True))


def _overview(ctx: Context) -> None:
    catalog = ctx.load(warn=False)
    counts = {}
    for doc in catalog.documents:
        counts[doc.kind] = counts.get(doc.kind, 0) + 1
    summary = ", ".join(_plural(n, k) for k, n in counts.items()) or "no documents"
    click.echo(f"runbook {__version__} · catalog {', '.join(ctx.catalog_paths())}: {summary}")
    if catalog.errors:
        click.secho(f"{_plural(len(catalog.errors), 'error')} in the catalog; run `runbook validate`",
                    fg="red")
    elif catalog.warnings:
        click.echo(f"valid, {_plural(len(catalog.warnings), 'warning')} (run `runbook validate` to see them)")
    else:
        click.echo("valid")
    playbooks = catalog.of_kind("Playbook")
    if playbooks:
        click.echo("")
        width = max(len(d.id) for d in playbooks)
        for doc in playbooks:
            click.echo(f"  {doc.id:<{width}}  {doc.model.severity:<5} {doc.model.title}")
    click.echo("\nNext: runbook match \"WHAT YOU SEE\" · runbook show ID · runbook validate · runbook --help")


@cli.command(short_help="Check documents; report every problem as FILE:LINE:COL.")
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
        context = [p for p in ctx.catalogs or DEFAULT_CATALOG if Path(p).exists()]
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
        _dump({"valid": not failed, "strict": strict, "files": len(files), "documents": len(documents),
               "errors": [p.to_dict() for p in errors], "warnings": [p.to_dict() for p in warnings]})
    else:
        for problem in problems:
            click.echo(problem.format())
        verdict = "invalid" if failed else "valid"
        click.echo(f"{verdict}: {_plural(len(errors), 'error')}, {_plural(len(warnings), 'warning')} in "
                   f"{_plural(len(files), 'file')} ({_plural(len(documents), 'valid document')})",
                   err=bool(problems))
    sys.exit(1 if failed else 0)


def _files_under(paths):
    from runbook.catalog.loader import discover

    return discover(paths)[0]


@cli.command("list", short_help="List the documents in the catalog.")
@click.option("--kind", help="Only documents of this kind (Playbook, SeverityPolicy, EscalationPolicy, Roster...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def list_documents(ctx: Context, kind, as_json):
    """List the documents in the catalog."""
    kind_name = None
    if kind:
        found = kinds.kind_named(kind)
        if not found:
            raise UsageError(f"unknown kind '{kind}', expected one of: {', '.join(kinds.KINDS)}"
                             f"{did_you_mean(kind, kinds.KINDS)}")
        kind_name = found.name
    catalog = ctx.load()
    docs = [d for d in catalog.documents if kind_name is None or d.kind == kind_name]
    rows = [{"kind": d.kind, "id": d.id, "title": getattr(d.model, "title", "") or d.id,
             "file": d.file, "line": d.source.line} for d in docs]
    if as_json:
        _dump(rows)
        return
    if not rows:
        click.echo("no documents" + (f" of kind {kind_name}" if kind_name else ""))
        return
    kw = max(len(r["kind"]) for r in rows)
    iw = max(len(r["id"]) for r in rows)
    for r in rows:
        click.echo(f"{r['kind']:<{kw}}  {r['id']:<{iw}}  {r['title']}  ({r['file']})")


@cli.command(short_help="Readable overview of a playbook or policy.")
@click.argument("doc_id", metavar="ID")
@click.option("--kind", help="Pick the kind when several documents share the id.")
@click.option("--json", "as_json", is_flag=True, help="Print the document as JSON.")
@click.pass_obj
def show(ctx: Context, doc_id, kind, as_json):
    """Show a readable overview of a document: for a playbook its symptoms, severity and targets,
    escalation ladder with delays, degradations and steps as an outline with branches."""
    catalog = ctx.load()
    kind_name = kinds.kind_named(kind).name if kind and kinds.kind_named(kind) else kind
    doc = catalog.find(doc_id, kind_name)
    if doc is None:
        raise NotFoundError(f"no document with id '{doc_id}'{did_you_mean(doc_id, catalog.ids())} "
                            "(see `runbook list`)")
    if as_json:
        _dump({"kind": doc.kind, "id": doc.id, "file": doc.file, "document": doc.data})
        return
    from runbook.catalog.outline import outline

    for line in outline(doc, catalog, datetime.now(timezone.utc)):
        click.echo(line)


@cli.command(short_help="Rank playbooks for free text and/or alert labels.")
@click.argument("text", required=False, default="")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="An alert label, e.g. --label alertname=RtcVideoPacketLoss; repeatable.")
@click.option("--limit", default=5, show_default=True, type=click.IntRange(min=1), help="Show at most N playbooks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_obj
def match(ctx: Context, text, labels, limit, as_json):
    """Rank playbooks for what you see: free TEXT and/or alert labels, with the reason for each match.

    \b
    Examples:
      runbook match "video freezing in one region"
      runbook match --label alertname=RtcVideoPacketLoss --label region=eu-west
    """
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
        _dump([m.to_dict() for m in matches])
        return
    if not matches:
        click.echo("no playbook matches; try other words or `runbook list --kind Playbook`")
        return
    for number, m in enumerate(matches, 1):
        click.echo(f"{number}. {m.playbook}  {m.title}  (score {m.score:.2f})")
        for reason in m.reasons:
            click.echo(f"     {reason}")


@cli.command(short_help="Print the JSON Schema of a document kind.")
@click.argument("kind", required=False)
@click.pass_obj
def schema(ctx: Context, kind):
    """Print the JSON Schema of a document KIND (without KIND: list the kinds).

    Save it and point your editor at it with a modeline on the first line of a document:
    # yaml-language-server: $schema=playbook.schema.json
    """
    if not kind:
        for name, spec in kinds.KINDS.items():
            click.echo(f"{name:<18} {spec.summary}")
        return
    found = kinds.kind_named(kind)
    if not found:
        raise UsageError(f"unknown kind '{kind}', expected one of: {', '.join(kinds.KINDS)}"
                         f"{did_you_mean(kind, kinds.KINDS)}")
    _dump(kinds.schema(found.name))


@cli.command("open", short_help="Open an incident on a playbook, straight into the TUI.")
@click.argument("playbook")
@click.option("--symptom", help="Which of the playbook's symptoms was seen (default: the first).")
@click.option("--severity", help="Severity level (default: the playbook's).")
@click.option("--drill", is_flag=True, help="A rehearsal: marked DRILL, flags go to the sandbox file.")
@click.option("--as", "actor", metavar="NAME", help="Who you are (default: $RUNBOOK_USER or your login).")
@click.pass_obj
def open_incident(ctx: Context, playbook, symptom, severity, drill, actor):
    """Open an incident on PLAYBOOK and walk it in the TUI (pages escalation level 1)."""
    from runbook.cli_incident import default_actor

    engine = ctx.engine(catalog=True)
    actor = actor or default_actor()
    state = engine.open(playbook, actor, symptom=symptom, severity=severity, drill=drill)
    _run_tui(ctx, state.id, engine, actor)


@cli.command(short_help="Reopen an incident in the TUI (default: the latest open one).")
@click.argument("incident_id", metavar="[ID]", required=False)
@click.option("--as", "actor", metavar="NAME", help="Who you are (default: $RUNBOOK_USER or your login).")
@click.pass_obj
def resume(ctx: Context, incident_id, actor):
    """Reopen incident ID in the TUI after settling anything a crash left half-done."""
    engine = ctx.engine()
    if incident_id is None:
        rows = engine.list(open_only=True)
        if not rows:
            raise NotFoundError("no open incident to resume (see `runbook incident list --all`)")
        incident_id = rows[0]["id"]
    incident_id = engine.resolve_id(incident_id)
    engine.reconcile(incident_id, force=True)
    _run_tui(ctx, incident_id, engine, actor)


from runbook import cli_drills, cli_incident, cli_plugins  # noqa: E402  (they add their commands to the group)

cli_plugins.attach(cli)
cli_incident.attach(cli)
cli_drills.attach(cli)


def main() -> None:
    try:
        cli.main(prog_name="runbook")
    except KeyboardInterrupt:
        click.echo("runbook: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a traceback shown to a user is a bug; keep it reportable
        if os.environ.get("RUNBOOK_DEBUG"):
            raise
        click.echo(f"runbook: internal error: {type(exc).__name__}: {exc} "
                   "(this is a bug; rerun with RUNBOOK_DEBUG=1 for details)", err=True)
        sys.exit(70)
