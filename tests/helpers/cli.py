"""`runbook ARGS` in a child process, as a user runs it (tests/conftest.py's `rb` fixture)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


class Runbook:
    """Runs `python -m runbook [--catalog C]... ARGS` in `cwd` with `env`, checks its exit status
    (`expect`) and that it printed no traceback. Tests adjust `cwd`, `env` and `catalogs` first."""

    def __init__(self, env: dict, cwd: Path, catalogs: list | None = None):
        self.env, self.cwd, self.catalogs = env, cwd, list(catalogs or [])

    @property
    def db(self) -> Path:
        return Path(self.env["RUNBOOK_DB"])

    def run(self, *args, expect: int | None = 0, **extra_env) -> subprocess.CompletedProcess:
        """The finished process; its exit status must be `expect` (None: any, the caller looks)."""
        catalogs = [arg for catalog in self.catalogs for arg in ("--catalog", str(catalog))]
        proc = subprocess.run([sys.executable, "-m", "runbook", *catalogs, *args], cwd=self.cwd,
                              env={**self.env, **extra_env}, capture_output=True, text=True)
        assert expect is None or proc.returncode == expect, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def __call__(self, *args, expect: int = 0, stream: str | None = None, **extra_env) -> str:
        """What it printed: its output, or, when it is expected to fail, its error (unless `stream` says)."""
        proc = self.run(*args, expect=expect, **extra_env)
        return getattr(proc, stream or ("stdout" if expect == 0 else "stderr"))
