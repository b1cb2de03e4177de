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
from runbook.pluginapi import ActionResult, hookimpl, record_process_group

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


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
