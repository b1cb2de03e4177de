"""Built-in action: run a step's `run:` command as an argv list, never through a shell.

The engine hands over the argv with its templates already filled by the one renderer
(`request.rendered`), so what runs is exactly what was shown; a value is a substring of one
argument and can never smuggle in another argument or shell syntax. A request built by other
callers (argv templates plus `params`) is filled here by the same renderer, in the plain mode
of playbooks without parameters (only `{name}` is a field), which refuses a field with no value.
`cwd` must be an existing directory; `env` is added to runbook's environment. Output is captured
and truncated; the exit status is the outcome; a command that outlives its timeout is killed with
its children.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from runbook.catalog.templates import PLAIN, TemplateError, command_line, render_argv
from runbook.pluginapi import ActionResult, hookimpl, process_start, record_process_group

MAX_OUTPUT = 16 * 1024


class ArgumentError(ValueError):
    pass


def substitute(argv, params: dict) -> list[str]:
    """Fill each argument's `{name}` fields from `params` (other braces are text); refuse a
    field with no value."""
    try:
        return list(render_argv(argv, params, PLAIN))
    except TemplateError as exc:
        message = str(exc).replace(f"{{{exc.name}}}", f"parameter {{{exc.name}}}", 1) if exc.name else str(exc)
        raise ArgumentError(message) from None


def truncate(text: str, limit: int = MAX_OUTPUT) -> str:
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters cut ...]\n" + text[-limit:]


@hookimpl(trylast=True)
def run_action(settings, request):
    if request.argv is None:
        return None
    start = time.monotonic()
    try:
        argv = list(request.argv) if request.rendered else substitute(request.argv, request.params)
    except ArgumentError as exc:
        return ActionResult(False, f"not run: {exc}", handler="shell")
    if request.cwd is not None and not os.path.isdir(request.cwd):
        return ActionResult(False, f"not run: working directory {request.cwd} does not exist", handler="shell")
    env = {**os.environ, **{str(k): str(v) for k, v in request.env.items()}} if request.env else None
    if request.output is not None:
        return _background(request, argv, env, start)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=request.cwd, env=env)
    except FileNotFoundError:
        return ActionResult(False, f"command not found: {argv[0]}", handler="shell")
    except OSError as exc:
        return ActionResult(False, f"cannot run {argv[0]}: {exc.strerror or exc}", handler="shell")
    try:
        record_process_group(request, proc.pid)
    except OSError:
        pass  # the action still runs; only its clean-up after a crash is lost
    try:
        out, _ = proc.communicate(timeout=request.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, _ = proc.communicate()
        return ActionResult(False, f"timed out after {request.timeout:g}s: {command_line(argv)}", None,
                            truncate(out.decode("utf-8", "replace")), time.monotonic() - start, "shell")
    text = truncate(out.decode("utf-8", "replace"))
    ok = proc.returncode == 0
    summary = f"{'succeeded' if ok else f'failed with exit status {proc.returncode}'}: {command_line(argv)}"
    return ActionResult(ok, summary, proc.returncode, text, time.monotonic() - start, "shell")


# Background commands started here, kept so that their Popen objects are never collected: a
# collected Popen that has not been waited for is reaped by the next subprocess call, and the
# engine, which reaps them itself (os.waitpid), would lose their exit status.
_STARTED: list = []


def _background(request, argv, env, start: float) -> ActionResult:
    """Start a background command (background:) in a session of its own, output to `request.output`
    (appended: a restarted step keeps what the earlier run printed), and return at once."""
    try:
        os.makedirs(os.path.dirname(request.output), mode=0o700, exist_ok=True)
        out = os.open(request.output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError as exc:
        return ActionResult(False, f"not run: cannot write its output to {request.output}: {exc.strerror or exc}",
                            handler="shell")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=request.cwd, env=env)
    except FileNotFoundError:
        return ActionResult(False, f"command not found: {argv[0]}", handler="shell")
    except OSError as exc:
        return ActionResult(False, f"cannot run {argv[0]}: {exc.strerror or exc}", handler="shell")
    finally:
        os.close(out)
    _STARTED.append(proc)
    try:
        record_process_group(request, proc.pid)
    except OSError:
        pass  # it still runs; only its clean-up after a crash is lost
    process = {"pid": proc.pid, "pgid": proc.pid, "start": process_start(proc.pid)}
    return ActionResult(True, f"started in the background (pid {proc.pid}): {command_line(argv)}", None, "",
                        time.monotonic() - start, "shell", process)


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class AttachedTerminal:
    """Runs an interactive step's command (interactive: true) attached to the responder's
    terminal: it gets the terminal's foreground and reads and writes it directly (an editor, a
    shell, `top`); nothing is captured. `where` is recorded with the run. A face passes one to
    the engine's `run` (the TUI first suspends itself)."""

    where = "terminal"

    def __call__(self, request) -> ActionResult:
        start = time.monotonic()
        argv = list(request.argv)
        env = {**os.environ, **{str(k): str(v) for k, v in request.env.items()}} if request.env else None
        try:
            tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
        except OSError:
            return ActionResult(False, f"not run: an interactive command needs a terminal: {command_line(argv)}",
                                handler="terminal")
        # SIGTTOU is blocked (this thread) so runbook may hand the terminal over and take it back
        # from the background; the command runs in its own process group, in the foreground, so a
        # Ctrl-C reaches the command and not runbook
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
        try:
            ours = os.tcgetpgrp(tty)
            try:
                proc = subprocess.Popen(argv, process_group=0, cwd=request.cwd, env=env)
            except FileNotFoundError:
                return ActionResult(False, f"command not found: {argv[0]}", handler="terminal")
            except OSError as exc:
                return ActionResult(False, f"cannot run {argv[0]}: {exc.strerror or exc}", handler="terminal")
            try:
                record_process_group(request, proc.pid)
            except OSError:
                pass  # it still runs; only its clean-up after a crash is lost
            try:
                os.tcsetpgrp(tty, proc.pid)
                os.killpg(proc.pid, signal.SIGCONT)  # had it read the terminal before it was given it, it stopped
            except OSError:
                pass  # it ended already
            code = proc.wait()
            os.tcsetpgrp(tty, ours)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            os.close(tty)
        return _attached_result(argv, code, time.monotonic() - start, "terminal")


class TmuxWindow:
    """Runs an interactive step's command in a new tmux window (runbook itself inside tmux: $TMUX
    set), so runbook stays on screen; waits until the command ends or its window is closed."""

    where = "tmux window"

    def __call__(self, request) -> ActionResult:
        import select
        import tempfile

        start = time.monotonic()
        argv = list(request.argv)
        with tempfile.NamedTemporaryFile(prefix="runbook-status-", delete=False) as status:
            pass  # where the window's shell writes the exit status
        # argv stays a list: tmux executes several arguments directly, and sh only runs "$@"
        # (never the text of an argument) and writes the exit status where runbook reads it
        window = ["tmux", "new-window", "-P", "-F", "#{pane_pid}", "-n", f"runbook-{request.step}",
                  *(["-c", request.cwd] if request.cwd else []),
                  *[x for k, v in request.env.items() for x in ("-e", f"{k}={v}")],
                  "sh", "-c", '"$@"; echo $? > "$0"', status.name, *argv]
        try:
            made = subprocess.run(window, capture_output=True, text=True, timeout=10)
            if made.returncode != 0:
                return ActionResult(False, f"not run: tmux could not open a window: {made.stderr.strip()}",
                                    handler="tmux")
            _wait_for_exit(int(made.stdout.strip()), select)
            with open(status.name, encoding="ascii") as handle:
                text = handle.read().strip()
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            return ActionResult(False, f"not run: tmux could not open a window: {exc}", handler="tmux")
        finally:
            os.unlink(status.name)
        if not text.isdigit():
            return ActionResult(False, f"its tmux window was closed before it ended: {command_line(argv)}",
                                duration=time.monotonic() - start, handler="tmux")
        return _attached_result(argv, int(text), time.monotonic() - start, "tmux")


def attached_terminal():
    """The runner for interactive commands here: a new tmux window inside tmux, else this terminal."""
    return TmuxWindow() if os.environ.get("TMUX") else AttachedTerminal()


def _wait_for_exit(pid: int, select) -> None:
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # it has ended already
    try:
        select.select([handle], [], [])
    finally:
        os.close(handle)


def _attached_result(argv, code: int, duration: float, handler: str) -> ActionResult:
    ok = code == 0
    said = "ended" if ok else f"ended by signal {-code}" if code < 0 else f"failed with exit status {code}"
    return ActionResult(ok, f"{said}: {command_line(argv)}", code, "", duration, handler)
