"""The `runbook` command: the root group, its global options, and `main`.

Each command group lives in its own module with its commands declared at module level
(catalog, tui, incident, drills, report, flags, plugins); options shared between them are in
`options`, the per-invocation `Context` in `context`. Those modules never import this package
module back: it names their commands here (`COMMANDS`) and imports a module when one of its
commands is asked for, so the imports run one way and `runbook resume` or `runbook drill run`
does not load the code (and the libraries) of every other command before it starts.

No logic lives in the commands beyond reading arguments and printing results; every error a
user can cause is a RunbookError and is printed as one line, never as a traceback.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import MutableMapping
from importlib import import_module

import click

from runbook import __version__
from runbook.cli.context import CATALOG_HELP, Context
from runbook.cli.options import default_actor
from runbook.cli.output import echo, plural, secho
from runbook.errors import RunbookError, UsageError
from runbook.settings import Settings
from runbook.text import check_actor, error_message, one_line, shown

# each command of the root group: (its module in runbook.cli, the command's name there, modules
# that add subcommands to it)
COMMANDS = {
    "validate": ("catalog", "validate", ()),
    "list": ("catalog", "list_documents", ()),
    "show": ("catalog", "show", ()),
    "match": ("catalog", "match", ()),
    "schema": ("catalog", "schema", ()),
    "open": ("tui", "open_incident", ()),
    "resume": ("tui", "resume", ()),
    # incident_flow adds restart and alert; learning adds review and similar
    "incident": ("incident", "group", ("incident_flow", "learning")),
    "actions": ("learning", "actions", ()),
    "drill": ("drills", "group", ()),
    "report": ("report", "report", ()),
    "flags": ("flags", "group", ()),
    "plugins": ("plugins", "plugins", ()),
    "serve": ("serve", "serve", ()),
    "alerts": ("serve", "alerts", ()),
    "maintenance": ("maintenance", "group", ()),
    "subscribers": ("subscribers", "group", ()),
    "db": ("database", "group", ()),
}


class LazyCommands(MutableMapping):
    """The root group's commands by name, each imported from its module when first looked up
    (click's lazy-group pattern): the names are known without importing anything."""

    def __init__(self, table: dict):
        self._table = dict(table)
        self._loaded: dict = {}

    def __getitem__(self, name):
        if name not in self._loaded:
            module, attribute, extensions = self._table[name]  # KeyError: not a command
            enabled = gc.isenabled()
            gc.disable()  # loading code: no cycles to collect yet (see runbook/__main__.py)
            try:
                command = getattr(import_module(f"runbook.cli.{module}"), attribute)
                for extension in extensions:
                    import_module(f"runbook.cli.{extension}")
            finally:
                if enabled:
                    gc.freeze()
                    gc.enable()
            self._loaded[name] = command
        return self._loaded[name]

    def __setitem__(self, name, command):
        self._table.pop(name, None)
        self._loaded[name] = command

    def __delitem__(self, name):
        if name not in self._table and name not in self._loaded:
            raise KeyError(name)
        self._table.pop(name, None)
        self._loaded.pop(name, None)

    def __iter__(self):
        return iter({**dict.fromkeys(self._table), **dict.fromkeys(self._loaded)})

    def __len__(self):
        return len(set(self._table) | set(self._loaded))

    def __contains__(self, name):
        return name in self._table or name in self._loaded


class RunbookGroup(click.Group):
    """Prints RunbookErrors as one plain line and exits with the error's code; adds plugin commands."""

    def _plugin_commands(self, ctx) -> dict:
        plugins_dir = ctx.params.get("plugins_dir") if ctx else None
        cache = self.__dict__.setdefault("_from_plugins", {})  # per plugins directory: tests invoke it with several
        if plugins_dir not in cache:
            from runbook.plugins import PluginHost

            collector = click.Group()
            try:
                PluginHost(Settings.from_environment(plugins_dir=plugins_dir)).register_commands(collector)
            except RunbookError:
                pass
            cache[plugins_dir] = {n: c for n, c in collector.commands.items() if n not in self.commands}
        return cache[plugins_dir]

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._plugin_commands(ctx)))

    def get_command(self, ctx, name):
        return super().get_command(ctx, name) or self._plugin_commands(ctx).get(name)

    def main(self, args=None, **extra):
        """Refuse bytes that are not UTF-8 before anything reads them: the shell passes them
        through as they are, and they could be neither stored nor printed."""
        args = sys.argv[1:] if args is None else list(args)
        problem = undecodable(args, os.environ)
        if problem:
            echo(f"runbook: error: {problem}", err=True)
            sys.exit(UsageError.exit_code)
        return super().main(args, **extra)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.ClickException as exc:  # the root's own options (--db, --catalog, an unknown one)
            if isinstance(exc, click.exceptions.NoArgsIsHelpError):
                raise
            echo(f"runbook: error: {click_message(exc)}", err=True)
            sys.exit(click_exit_code(exc))

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RunbookError as exc:
            echo(f"runbook: error: {error_message(exc)}", err=True)
            ctx.exit(exc.exit_code)
        except click.ClickException as exc:  # a subcommand's usage: one line, not Usage + Try + Error
            if isinstance(exc, click.exceptions.NoArgsIsHelpError):
                raise
            echo(f"runbook: error: {click_message(exc)}", err=True)
            ctx.exit(click_exit_code(exc))


def click_message(exc: click.ClickException) -> str:
    """Click's own message on one line, with where to read the command's usage."""
    message = " ".join(shown(exc.format_message()).split()).rstrip(".")
    usage_of = getattr(exc, "ctx", None)
    path = usage_of.command_path if usage_of is not None else "runbook"
    return f"{message}; see `{path} --help`"


def click_exit_code(exc: click.ClickException) -> int:
    """Usage errors exit 2 (docs/commands.md); click's other errors keep theirs, a file click could
    not open is a usage error."""
    if isinstance(exc, (click.UsageError, click.FileError)):
        return UsageError.exit_code
    return exc.exit_code


@click.group(cls=RunbookGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--catalog", "catalogs", multiple=True, envvar="RUNBOOK_CATALOG", metavar="PATH",
              type=click.Path(), help=CATALOG_HELP)
# the store says what is wrong with a --db
@click.option("--db", metavar="FILE|URL", envvar="RUNBOOK_DB", type=click.Path(),
              help="Incident database: a SQLite file, or postgresql://USER@HOST/DB for a team. Env: RUNBOOK_DB. "
                   "Default: ~/.local/share/runbook/runbook.db.")
@click.option("--plugins-dir", metavar="DIR", envvar="RUNBOOK_PLUGINS_DIR", type=click.Path(file_okay=False),
              is_eager=True,  # read before --help, which lists the commands plugins add
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

    Incident IDs may be shortened to a unique start in any case, with or without INC-
    (`runbook incident ack 854`). Exit status: 0 done, 1 invalid documents, 2 usage error,
    3 not found, 4 a plugin or an action failed, 5 the command does not fit the incident's
    state, 6 the incident kept changing under the command, 7 the incident database cannot be
    used (read-only, damaged, not reachable).
    """
    ctx.obj = Context(catalogs, plugins_dir, db)
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            from runbook.cli.tui import run_tui

            run_tui(ctx.obj, check_actor(default_actor()))
        else:
            _overview(ctx.obj)


def undecodable(args, environ) -> str | None:
    """What is not valid UTF-8 among the arguments and runbook's environment variables, if anything."""
    def bad(text: str) -> str | None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return None

    for number, arg in enumerate(args, 1):
        if (shown := bad(arg)) is not None:
            return f"argument {number} ({shown}) is not valid UTF-8; runbook takes text in UTF-8"
    for name, value in environ.items():
        if name.startswith("RUNBOOK_") and (shown := bad(value)) is not None:
            return f"environment variable {name} ({shown}) is not valid UTF-8; runbook takes text in UTF-8"
    return None


def _overview(ctx: Context) -> None:
    catalog = ctx.load(warn=False)
    counts = {}
    for doc in catalog.documents:
        counts[doc.kind] = counts.get(doc.kind, 0) + 1
    summary = ", ".join(plural(n, k) for k, n in counts.items()) or "no documents"
    echo(f"runbook {__version__} · catalog {', '.join(ctx.catalog_paths())}: {summary}")
    if catalog.errors:
        secho(f"{plural(len(catalog.errors), 'error')} in the catalog; run `runbook validate`",
                    fg="red")
    elif catalog.warnings:
        echo(f"valid, {plural(len(catalog.warnings), 'warning')} (run `runbook validate` to see them)")
    else:
        echo("valid")
    playbooks = catalog.of_kind("Playbook")
    if playbooks:
        echo("")
        width = max(len(d.id) for d in playbooks)
        from runbook.catalog.preview import title

        for doc in playbooks:
            echo(f"  {doc.id:<{width}}  {doc.model.severity:<5} {one_line(title(doc.model))}")
    echo("\nNext: runbook match \"WHAT YOU SEE\" · runbook show ID · runbook validate · runbook --help")


cli.commands = LazyCommands(COMMANDS)


def main() -> None:
    try:
        cli.main(prog_name="runbook")
    except KeyboardInterrupt:
        echo("runbook: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a traceback shown to a user is a bug; keep it reportable
        if os.environ.get("RUNBOOK_DEBUG"):
            raise
        echo(f"runbook: internal error: {type(exc).__name__}: {exc} "
             "(this is a bug; rerun with RUNBOOK_DEBUG=1 for details)", err=True)
        sys.exit(70)
