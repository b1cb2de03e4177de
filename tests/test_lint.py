"""The linters are part of the test command: ruff's rules and import-linter's layer contracts
(both configured in pyproject.toml) fail the run on any finding, like any other test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import runbook

ROOT = Path(__file__).resolve().parent.parent


def tool(name: str) -> str:
    # the one installed next to this Python (the `test` extra), else the one on PATH
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def test_ruff_finds_nothing():
    proc = subprocess.run([tool("ruff"), "check", "--no-cache", "src", "tests", "benchmarks"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_contracts_hold():
    # the runbook these tests import, not another checkout installed in the environment
    source = str(Path(runbook.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([tool("lint-imports"), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
