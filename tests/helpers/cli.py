"""`runbook ARGS` as a test runs it (tests/conftest.py's `rb` fixture): in a child process, as a user
runs it, or, through `rb.inproc`, inside the test's own process. The one module of the suite that
imports click.testing (tests/test_test_command.py holds the others to that)."""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
from pathlib import Path

HANG = 300  # seconds


class Runbook:
    """Runs `python -m runbook [--catalog C]... ARGS` in `cwd` with `env` (and nothing else of the
    test's environment), checks its exit status (`expect`) and that it printed no traceback. Tests
    adjust `cwd`, `env`, `catalogs` and `prefix` (a command the child runs under, e.g. setpriv) first."""

    in_process = False

    def __init__(self, env: dict, cwd: Path, catalogs: list | None = None):
        self.env, self.cwd, self.catalogs = env, cwd, list(catalogs or [])
        self.prefix: list[str] = []

    @property
    def db(self) -> Path:
        return Path(self.env["RUNBOOK_DB"])

    @property
    def inproc(self) -> Runbook:
        """This runner calling the command inside the test's process (click's CliRunner), with the
        same settings, results and checks: for a test that patches something in the process,
        injects a fake, or runs the engine on a virtual clock. An exception the command does not
        handle propagates (where a child would print a traceback)."""
        twin = copy.copy(self)  # made at each use, so it always has the runner's current settings
        twin.in_process = True
        return twin

    def run(self, *args, expect: int | None = 0, **extra_env) -> subprocess.CompletedProcess:
        """The finished command; its exit status must be `expect` (None: any, the caller looks)."""
        argv = [*(arg for catalog in self.catalogs for arg in ("--catalog", str(catalog))), *args]
        env = {**self.env, **extra_env}
        if self.in_process:
            proc = self._invoke(argv, env)
        else:
            # stdin is not a terminal, as in a script, however pytest itself was started; the
            # timeout only ends a hang, far beyond any command's time on a loaded machine
            proc = subprocess.run([*self.prefix, sys.executable, "-m", "runbook", *argv], cwd=self.cwd, env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=HANG)
        assert expect is None or proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def __call__(self, *args, expect: int = 0, stream: str | None = None, **extra_env) -> str:
        """What it printed: its output, or, when it is expected to fail, its error (unless `stream` says)."""
        proc = self.run(*args, expect=expect, **extra_env)
        return getattr(proc, stream or ("stdout" if expect == 0 else "stderr"))

    def _invoke(self, argv: list, env: dict) -> subprocess.CompletedProcess:
        from click.testing import CliRunner

        from runbook.cli import cli

        assert not self.prefix, "a command prefix needs a child process"
        # the child would see `env` alone: unset the rest of the test's environment for the call
        isolated = {**dict.fromkeys(os.environ), **env}
        with contextlib.chdir(self.cwd):
            result = CliRunner(env=isolated).invoke(cli, argv, prog_name="runbook", catch_exceptions=False)
        return subprocess.CompletedProcess(argv, result.exit_code, result.stdout, result.stderr)
