"""What the test command holds itself to: ruff's rules and import-linter's layer contracts (both
configured in pyproject.toml) fail the run on any finding, like any other test; a real program a
test drives that is missing fails the test (tests/helpers/components.py); the CLI is run through
one runner, the `rb` fixture (tests/helpers/cli.py)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import runbook

ROOT = Path(__file__).resolve().parent.parent


def tool(name: str) -> str:
    # the one installed next to this Python (the `test` extra), else the one on PATH
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def test_ruff_finds_nothing():
    proc = subprocess.run([tool("ruff"), "check", "--no-cache", "src", "tests", "benchmarks", "docs"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_import_contracts_hold():
    # the runbook these tests import, not another checkout installed in the environment
    source = str(Path(runbook.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([tool("lint-imports"), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_missing_component_fails_the_test_unless_skipping_is_asked_for(monkeypatch):
    from helpers.components import OPT_OUT, missing

    monkeypatch.delenv(OPT_OUT, raising=False)
    with pytest.raises(pytest.fail.Exception, match="tmux is not installed: apt-get install tmux"):
        missing("tmux", "apt-get install tmux")
    monkeypatch.setenv(OPT_OUT, "1")
    with pytest.raises(pytest.skip.Exception, match="tmux is not installed"):
        missing("tmux", "apt-get install tmux")


def imports_click_testing(source: str) -> bool:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        if any(module == "click.testing" or module.startswith("click.testing.") for module in modules):
            return True
    return False


def test_only_the_shared_cli_runner_imports_click_testing():
    """A CLI test runs the command with `rb` (in a child process, or `rb.inproc` in this one), so
    every one checks the exit status and for a traceback the same way."""
    for source in ("from click.testing import CliRunner", "import click.testing as t",
                   "def f():\n    from click import testing"):
        assert imports_click_testing(source), source
    assert not imports_click_testing("import click\nfrom click import echo\nfrom click.types import Path")
    tests, offenders = ROOT / "tests", []
    for path in sorted(tests.rglob("*.py")):
        try:
            if path != tests / "helpers" / "cli.py" and imports_click_testing(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
        except SyntaxError:  # tests/plugins/misbehaving/syntax_error.py, a plugin that cannot load
            continue
    assert offenders == [], (f"{', '.join(offenders)}: run the CLI with the rb fixture "
                             "(tests/helpers/cli.py; rb.inproc for a call in this process)")


CRASHING_PLUGIN = """\
from runbook.pluginapi import hookimpl


@hookimpl
def register_commands(cli):
    @cli.command()
    def crash():
        raise ValueError("a bug")
"""


def test_the_cli_runner_fails_a_test_on_another_exit_status_or_a_crash_in_either_mode(rb, tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "crashing.py").write_text(CRASHING_PLUGIN)
    rb.env["RUNBOOK_PLUGINS_DIR"] = str(tmp_path / "plugins")
    rb.env.pop("RUNBOOK_DEBUG", None)
    for run in (rb, rb.inproc):
        assert "did you mean 'video-call-degraded'?" in run("show", "video-call-degrade", expect=3)
        with pytest.raises(AssertionError, match="did you mean"):
            run("show", "video-call-degrade")
    with pytest.raises(AssertionError, match="internal error"):
        rb("crash")  # exit 70
    with pytest.raises(AssertionError, match="Traceback"):
        rb("crash", expect=None, RUNBOOK_DEBUG="1")
    with pytest.raises(ValueError, match="a bug"):
        rb.inproc("crash", expect=None)


def test_the_cli_runner_in_process_sees_its_own_directory_and_environment_alone(rb, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no catalog here
    monkeypatch.setenv("RUNBOOK_CATALOG", str(tmp_path / "nowhere"))  # the test's, not the command's
    assert "video-call-degraded" in rb.inproc("list")
    assert "no catalog at" in rb.inproc("list", RUNBOOK_CATALOG=str(tmp_path / "nowhere"), expect=2)
