"""Into the TUI: `run_tui`, and `runbook resume`'s head start.

`runbook resume` is what a responder types first, so its first frame comes as early as it can.
The process forks at once, before the command line is even parsed (`Preparation`). The child
parses it with the real CLI and, if it is a resume, loads the engine, settles what a crash left
half-done, resolves the id and builds the incident's view; it hands that back over a pipe and
exits. Meanwhile this process loads Textual and the screens (two cores do the two halves at
once), then draws the child's view and makes its own engine after the first frame. Whenever the
child does not answer with a view (the command line turned out to be something else, a usage
error, `--help`, a child that died), this process runs the command the usual way: the child has
done nothing by then that the usual way would not do.

This module imports neither click nor the CLI package, so that this process's start is only
Python's own; what it composes comes from runbook/runtime.py.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from runbook.errors import NotFoundError, RunbookError
from runbook.runtime import Runtime, load_catalog
from runbook.text import error_message, shown

if TYPE_CHECKING:
    from runbook.engine import Engine

# The root command's options that take a value (cli/__init__.py; a test holds the two together),
# so that the value of `--db resume` is not taken for the command.
ROOT_OPTIONS_WITH_VALUES = frozenset({"--catalog", "--db", "--plugins-dir"})


def say(text: str) -> None:
    """One line to stderr, made safe (the CLI's `echo(..., err=True)`, without loading click)."""
    sys.stderr.write(shown(text) + "\n")
    sys.stderr.flush()


def run_tui(ctx: Runtime, actor: str, incident: str | None = None, engine: Engine | None = None,
            opening: dict | None = None, first_view=None, observe_later=None) -> None:
    """Run the Textual app (on `incident`, else the home screen) until the user quits. `engine`
    may be a function that makes one (then the engine and its store are closed here)."""
    import gc

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
        app.gateway.wait_idle(lambda: say("runbook: waiting for a running check or command to finish "
                                          "and record its result…"))
    finally:
        app.gateway.release()
    if app.fatal is not None:
        raise app.fatal


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


def forking_allowed(environ=os.environ) -> bool:
    """RUNBOOK_NO_FORK (any value but "", 0, no, false) does everything in one process."""
    return hasattr(os, "fork") and environ.get("RUNBOOK_NO_FORK", "").strip().lower() in ("", "0", "no", "false")


def resume_requested(argv: list[str]) -> bool:
    """Whether `argv` reads as `runbook [ROOT OPTIONS] resume [ID] [--as NAME]` without --help:
    the root's options and their values skipped, the first word is `resume`. A guess only (the
    child parses for real); a wrong guess costs this process the TUI's import, never a result."""
    words = iter(argv)
    for word in words:
        if word in ROOT_OPTIONS_WITH_VALUES:
            next(words, None)
        elif word.split("=", 1)[0] in ROOT_OPTIONS_WITH_VALUES and "=" in word:
            continue
        elif word != "resume":
            return False  # another command, --help, --version, `--`
        else:
            return not any(rest in ("-h", "--help") for rest in words)
    return False


class Preparation:
    """The forked child that prepares resume's first view, and the answer it leaves: ("ok", id,
    view, seqs of the events it appended, the session, actor), ("error", exit code, message)
    for a RunbookError, or ("usual",) when the command line is not a resume it can prepare."""

    answer_to: int | None = None  # in the child: the pipe its answer goes down

    def __init__(self, pid: int, pipe: int):
        self.pid, self.pipe = pid, pipe

    @classmethod
    def fork(cls, run_cli) -> Preparation | None:
        """Fork; the child runs `run_cli()` (the CLI on this command line) with its output going
        nowhere, and exits. None where no process could be made."""
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
        try:
            # the terminal belongs to the screen being drawn: nothing from here may reach it
            quiet = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(quiet, fd)
            sys.stdout = sys.stderr = open(os.devnull, "w")  # and whatever Python had them point at
            sys.stdin = open(os.devnull)
            Preparation.answer_to = write
            # A process this one forks (a plugin's helper, multiprocessing) must not hold the
            # answer's pipe open: the parent reads it to the end and would wait for that one too.
            os.register_at_fork(after_in_child=Preparation._not_the_answerer)
            run_cli()  # a resume answers and exits in `answer`; anything else ends here
        except BaseException:  # noqa: BLE001  (no view: this process's parent runs the command itself)
            pass
        cls._send(write, ("usual",))

    @staticmethod
    def _send(pipe: int, answer: tuple) -> None:
        try:
            import pickle

            data = pickle.dumps(answer)
            with os.fdopen(pipe, "wb") as out:
                out.write(data)
        except BaseException:  # noqa: BLE001  (a half answer does not unpickle: the parent does the work)
            pass
        finally:
            os._exit(0)

    @staticmethod
    def _not_the_answerer() -> None:
        pipe, Preparation.answer_to = Preparation.answer_to, None
        if pipe is not None:
            try:
                os.close(pipe)
            except OSError:
                pass

    @staticmethod
    def preparing() -> bool:
        """Whether this process is the child that prepares resume's first view."""
        return Preparation.answer_to is not None

    @staticmethod
    def answer(ctx: Runtime, typed: str | None, actor: str) -> None:
        """In the child, from resume's command: prepare, send the answer, exit."""
        engine = None
        try:
            ctx.catalog_paths()  # a TUI that could not start must not have settled anything first
            engine = ctx.new_engine()
            # The observers are this process's to feed only if it lives on: it exits at once,
            # so the events it appends (settling a crash) are handed to the TUI's process,
            # which gives them to its observers once its engines are ready.
            settled: list[int] = []
            engine.plugins.observe = lambda incident, event: settled.append(event.seq)
            answer = ("ok", *prepare(engine, typed), settled, ctx.spec(), actor)
        except RunbookError as exc:
            answer = ("error", exc.exit_code, error_message(exc))
        except BaseException:  # noqa: BLE001  (anything else: the parent runs resume itself and shows it)
            answer = ("usual",)
        finally:
            if engine is not None:
                try:
                    engine.close()
                    engine.store.close()
                except BaseException:  # noqa: BLE001
                    answer = ("usual",)
        Preparation._send(Preparation.answer_to, answer)

    def result(self) -> tuple | None:
        """The child's answer: ("ok", id, view, seqs, session spec, actor); None when the command
        is to run the usual way (not a resume, or the child left no whole answer). A RunbookError
        it met is raised."""
        import pickle

        chunks = []
        with os.fdopen(self.pipe, "rb") as pipe:
            while chunk := pipe.read(1 << 16):
                chunks.append(chunk)
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:  # reaped already: started with SIGCHLD ignored (some supervisors do)
            pass
        try:
            answer = pickle.loads(b"".join(chunks))
        except Exception:  # noqa: BLE001  (killed half-way, or nothing written)
            return None
        if answer[0] == "error":
            raise RelayedError(answer[2], answer[1])
        return answer if answer[0] == "ok" else None

    def run(self) -> bool:
        """This process's half: load the TUI, then run it on the child's view. False when the
        command is to run the usual way instead; exits with the CLI's code on an error."""
        import gc

        gc.disable()  # see run_tui
        from importlib import import_module

        import_module("runbook.tui.app")  # Textual and the screens, while the child prepares

        try:
            answer = self.result()
            if answer is None:
                gc.enable()
                return False
            _, incident, view, settled, spec, actor = answer
            session = Runtime(*spec)
            run_tui(session, actor, incident, session.new_engine, first_view=view, observe_later=(incident, settled))
        except RunbookError as exc:  # as the CLI prints it (cli/__init__.py, RunbookGroup.invoke)
            say(f"runbook: error: {error_message(exc)}")
            sys.exit(exc.exit_code)
        return True


class RelayedError(RunbookError):
    """A RunbookError met by the child, its message already as the CLI prints it."""

    formatted = True  # see text.error_message

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def guarded(run):
    """`run()`'s result, run as the command line runs everything: Ctrl-C is one line and exit 130;
    an error that is not a RunbookError is a bug, shown as one line (exit 70) unless RUNBOOK_DEBUG
    is set."""
    try:
        return run()
    except KeyboardInterrupt:
        say("runbook: interrupted")
        sys.exit(130)
    except Exception as exc:  # a traceback shown to a user is a bug; keep it reportable
        if os.environ.get("RUNBOOK_DEBUG"):
            raise
        say(f"runbook: internal error: {type(exc).__name__}: {exc} "
            "(this is a bug; rerun with RUNBOOK_DEBUG=1 for details)")
        sys.exit(70)
