"""Built-in action: run a step's `run:` command as an argv list, never through a shell.

Parameters from `with:` replace whole arguments only ("{node}" -> the node name), so a value
can never smuggle in another argument or shell syntax. Output is captured and truncated; the
exit status is the outcome; a command that outlives its timeout is killed with its children.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

from runbook.pluginapi import ActionResult, hookimpl, record_process_group

MAX_OUTPUT = 16 * 1024
_PARAM = re.compile(r"\{([A-Za-z0-9_.-]+)\}")


class ArgumentError(ValueError):
    pass


def substitute(argv, params: dict) -> list[str]:
    """Replace arguments that are exactly "{name}" with the parameter's value; refuse anything else."""
    out = []
    for arg in argv:
        whole = _PARAM.fullmatch(arg)
        if whole:
            name = whole.group(1)
            if name not in params:
                raise ArgumentError(f"parameter {{{name}}} has no value")
            value = params[name]
            if isinstance(value, (dict, list)) or value is None:
                raise ArgumentError(f"parameter {{{name}}} must be text or a number, got {type(value).__name__}")
            out.append(str(value).lower() if isinstance(value, bool) else str(value))
        elif _PARAM.search(arg):
            raise ArgumentError(f"argument {arg!r} embeds a parameter inside other text; a parameter must "
                                "be a whole argument")
        else:
            out.append(arg)
    return out


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
        argv = substitute(request.argv, request.params)
    except ArgumentError as exc:
        return ActionResult(False, f"not run: {exc}", handler="shell")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
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
        return ActionResult(False, f"timed out after {request.timeout:g}s: {' '.join(argv)}", None,
                            truncate(out.decode("utf-8", "replace")), time.monotonic() - start, "shell")
    text = truncate(out.decode("utf-8", "replace"))
    ok = proc.returncode == 0
    summary = f"{'succeeded' if ok else f'failed with exit status {proc.returncode}'}: {' '.join(argv)}"
    return ActionResult(ok, summary, proc.returncode, text, time.monotonic() - start, "shell")


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
