"""`runbook open` and `runbook resume`: into the TUI, and `run_tui` for every command that ends there.

`runbook resume` is what a responder types first, so it shows its first frame as early as it
can: it forks, and while the child loads the engine, settles what a crash left half-done and
builds the incident's view, this process loads Textual and the screens (two cores do the two
halves at once). The child hands the view back over a pipe and exits; this process draws it and
makes its own engine after the first frame. Where there is no fork, or the child leaves no
answer, the same work runs here, one half after the other.
"""

from __future__ import annotations

import gc
import os
import pickle
import sys
from typing import TYPE_CHECKING

import click

from runbook.cli.context import Context, load_catalog
from runbook.cli.options import actor_option, incident_argument, opening_options
from runbook.cli.output import echo
from runbook.errors import NotFoundError, RunbookError, UsageError

if TYPE_CHECKING:
    from runbook.engine import Engine


def run_tui(ctx: Context, actor: str, incident: str | None = None, engine: Engine | None = None,
            opening: dict | None = None, first_view=None, observe_later=None) -> None:
    """Run the Textual app (on `incident`, else the home screen) until the user quits. `engine`
    may be a function that makes one (then the engine and its store are closed here)."""
    gc.disable()  # until the first frame: see runbook/__main__.py; the app turns it back on
    from runbook.tui.app import build_app  # textual loads only when the TUI runs

    engine = engine or ctx.engine()
    paths = ctx.catalog_paths()
    catalog = (None if callable(engine) else engine.catalog) or (lambda: load_catalog(paths))
    # the plugins load on this thread right after the first frame (the engines' work runs on workers)
    app = build_app(engine, catalog, actor, incident, opening=opening, first_view=first_view, preload=ctx.host,
                    observe_later=observe_later)
    try:
        app.run()
        # the screen is gone; a check or a step's command may still be finishing its event
        app.gateway.wait_idle(lambda: echo("runbook: waiting for a running check or command to finish "
                                                 "and record its result…", err=True))
    finally:
        app.gateway.release()
    if app.fatal is not None:
        raise app.fatal


def require_terminal(command: str, instead: str) -> None:
    """UsageError unless stdin and stdout are both a terminal: the TUI would write escape sequences
    into a pipe or file and wait for keys that never come. Checked before anything is opened."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(f"runbook {command} needs a terminal; use {instead} for scripts")


@click.command("open", short_help="Open an incident on a playbook, straight into the TUI.")
@opening_options
@click.pass_obj
def open_incident(ctx: Context, playbook, symptom, severity, drill, params, labels, actor):
    """Open an incident on PLAYBOOK and walk it in the TUI (pages escalation level 1).

    Parameters come from --param KEY=VALUE and the alert's --label KEY=VALUE; when a required
    one is missing, a form asks for it before the incident opens. `runbook match "WHAT YOU SEE"`
    finds the playbook; `runbook incident open` does the same without the TUI."""
    require_terminal("open", "`runbook incident open`")
    from runbook.engine.engine import MissingParameters

    engine = ctx.engine(catalog=True)
    try:
        state = engine.open(playbook, actor, symptom=symptom, severity=severity, drill=drill, params=params,
                            labels=labels)
    except MissingParameters:
        run_tui(ctx, actor, engine=engine, opening={"playbook": playbook, "params": params, "labels": labels,
                                                    "symptom": symptom, "severity": severity, "drill": drill})
        return
    run_tui(ctx, actor, state.id, engine)


@click.command(short_help="Reopen an incident in the TUI (default: the latest open one).")
@incident_argument(required=False, resolve=False)  # resolved by `prepare`, in the child
@actor_option
@click.pass_obj
def resume(ctx: Context, incident_id, actor):
    """Reopen incident ID in the TUI after settling anything a crash left half-done.

    ID may be shortened to a unique start, in any case, with or without INC-: 854 finds
    INC-854ABC. Without ID: the incident opened most recently that is not resolved."""
    require_terminal("resume", "`runbook incident resume`")
    child = Preparation.start(ctx, incident_id)
    gc.disable()  # see run_tui
    import runbook.tui.app  # noqa: F401  (Textual and the screens, while the child prepares)

    prepared = child.result() if child is not None else None
    if prepared is None:  # no fork, or the child left no answer: the same work, here
        engine = ctx.engine()
        incident_id, view = prepare(engine, incident_id)
        run_tui(ctx, actor, incident_id, engine, first_view=view)
    else:
        incident_id, view, settled = prepared
        run_tui(ctx, actor, incident_id, ctx.new_engine, first_view=view, observe_later=(incident_id, settled))


def prepare(engine: Engine, typed: str | None):
    """What resume does before its first frame: the incident's full id (from what was typed, or
    the latest open one), anything a crash left half-done settled, and the incident's view."""
    from runbook.views import incident_view

    if typed is None:
        rows = engine.list(open_only=True)
        if not rows:
            raise NotFoundError("no open incident to resume (see `runbook incident list --all`)")
        incident = rows[0]["id"]
    else:
        incident = engine.resolve_id(typed)
    engine.reconcile(incident, force=True)
    return incident, incident_view(engine, incident)[0]


class Preparation:
    """`prepare` in a forked child, which writes its answer to a pipe and exits: ("ok", id,
    view, seqs of the events it appended), or ("error", exit code, message) for a RunbookError,
    printed here as if raised here."""

    def __init__(self, pid: int, pipe: int):
        self.pid, self.pipe = pid, pipe

    @classmethod
    def start(cls, ctx: Context, typed: str | None) -> Preparation | None:
        if not hasattr(os, "fork") or os.environ.get("RUNBOOK_NO_FORK", "").strip().lower() not in ("", "0", "no",
                                                                                                    "false"):
            return None
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no room for a process: do it here
            os.close(read)
            os.close(write)
            return None
        if pid:
            os.close(write)
            return cls(pid, read)
        os.close(read)
        cls._child(ctx, typed, write)  # never returns

    @staticmethod
    def _child(ctx: Context, typed: str | None, pipe: int) -> None:
        try:
            from runbook.cli.output import error_message

            # the terminal belongs to the screen being drawn: nothing from here may reach it
            quiet = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(quiet, fd)
            sys.stdout = sys.stderr = open(os.devnull, "w")  # and whatever Python had them point at
            engine = None
            try:
                engine = ctx.new_engine()
                # The observers are this process's to feed only if it lives on: it exits at once,
                # so the events it appends (settling a crash) are handed to the TUI's process,
                # which gives them to its observers once its engines are ready.
                settled: list[int] = []
                engine.plugins.observe = lambda incident, event: settled.append(event.seq)
                answer = ("ok", *prepare(engine, typed), settled)
            except RunbookError as exc:
                answer = ("error", exc.exit_code, error_message(exc))
            finally:
                if engine is not None:
                    engine.close()
                    engine.store.close()
            data = pickle.dumps(answer)
            with os.fdopen(pipe, "wb") as out:
                out.write(data)
        except BaseException:  # noqa: BLE001  (no answer: the parent does the work itself and shows what fails)
            pass
        finally:
            os._exit(0)

    def result(self):
        """(id, view, the seqs of the events it appended); None when the child left no whole
        answer. A RunbookError it met is raised."""
        chunks = []
        with os.fdopen(self.pipe, "rb") as pipe:
            while chunk := pipe.read(1 << 16):
                chunks.append(chunk)
        os.waitpid(self.pid, 0)
        try:
            answer = pickle.loads(b"".join(chunks))
        except Exception:  # noqa: BLE001  (killed half-way, or nothing written)
            return None
        if answer[0] == "error":
            raise RelayedError(answer[2], answer[1])
        return answer[1], answer[2], answer[3]


class RelayedError(RunbookError):
    """A RunbookError met by the child, its message already as the CLI prints it."""

    formatted = True  # see cli.output.error_message

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
