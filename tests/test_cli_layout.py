"""The CLI's shape: one module per command group, imports that run one way, shared options that agree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import click
import pytest

from runbook.cli import cli
from runbook.cli.options import default_actor

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "runbook" / "cli"
MODULES = sorted(f"runbook.cli.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__")

COMMANDS = ["actions", "alerts", "db", "drill", "flags", "incident", "list", "maintenance", "match", "open", "plugins",
            "report", "resume", "schema", "serve", "show", "subscribers", "validate"]


def imports_of(module: str) -> set[str]:
    """The modules of the runbook.cli package that `module` imports, at the top or inside functions;
    "runbook.cli" is the package's own code (the root group), which the other modules must not need."""
    path = PACKAGE / ("__init__.py" if module == "runbook.cli" else f"{module.rsplit('.', 1)[1]}.py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "runbook.cli":  # submodules, or the package's names
            found |= {f"runbook.cli.{alias.name}" if f"runbook.cli.{alias.name}" in MODULES else "runbook.cli"
                      for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return {name for name in found if name == "runbook.cli" or name in MODULES}


def test_the_cli_modules_import_each_other_one_way():
    graph = {module: imports_of(module) for module in ["runbook.cli", *MODULES]}
    assert all("runbook.cli" not in graph[module] for module in MODULES), \
        {m: graph[m] for m in MODULES if "runbook.cli" in graph[m]}

    def cycle_from(module, trail):
        if module in trail:
            return trail[trail.index(module):] + [module]
        return next((found for nxt in sorted(graph[module]) if (found := cycle_from(nxt, trail + [module]))), None)

    cycles = [c for m in graph if (c := cycle_from(m, []))]
    assert cycles == []


@pytest.mark.parametrize("module", MODULES)
def test_each_cli_module_imports_first_in_a_fresh_interpreter(module, fixture_env):
    code = f"import {module}, runbook.cli; print(sorted(runbook.cli.cli.commands))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=fixture_env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(COMMANDS)


def test_only_the_entry_point_imports_the_cli():
    source = PACKAGE.parent
    importers = sorted(str(p.relative_to(source)) for p in source.rglob("*.py")
                       if PACKAGE not in p.parents and "runbook.cli" in p.read_text())
    assert importers == ["__main__.py"]


def test_help_lists_every_command(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no ./plugins: only runbook's own commands
    monkeypatch.delenv("RUNBOOK_PLUGINS_DIR", raising=False)
    assert sorted(cli.list_commands(click.Context(cli))) == COMMANDS


def every_command():
    def walk(command, path):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])
    return list(walk(cli, ["runbook"]))


def test_as_is_one_option_with_one_default_everywhere(monkeypatch):
    monkeypatch.setenv("RUNBOOK_USER", "ana")
    options = [(" ".join(path), p) for path, command in every_command() for p in command.params if "--as" in p.opts]
    assert {"runbook open", "runbook resume", "runbook incident ack", "runbook drill run",
            "runbook drill schedule"} <= {path for path, _ in options}
    assert {(p.name, p.metavar, p.default, p.help, p.show_default) for _, p in options} == {
        ("actor", "NAME", default_actor, "Who you are, recorded as the actor of every event.",
         "$RUNBOOK_USER, else your login name")}
    assert default_actor() == "ana"


def test_json_is_one_flag_everywhere():
    flags = [p for _, command in every_command() for p in command.params if "--json" in p.opts]
    assert len(flags) >= 20
    assert {(p.name, p.is_flag, tuple(p.opts)) for p in flags} == {("as_json", True, ("--json",))}


def test_the_root_group_imports_a_commands_module_when_the_command_is_asked_for(fixture_env):
    """`runbook resume` and `runbook drill run` start without the code of the other commands."""
    code = ("import sys, click, runbook.cli as c; "
            "before = sorted(m for m in sys.modules if m.startswith('runbook.cli.')); "
            "c.cli.get_command(click.Context(c.cli), 'drill'); "
            "after = sorted(m for m in sys.modules if m.startswith('runbook.cli.')); print(before); print(after)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=fixture_env)
    assert out.returncode == 0, out.stderr
    before, after = out.stdout.splitlines()
    assert before == str(["runbook.cli.context", "runbook.cli.options", "runbook.cli.output"])
    assert "runbook.cli.drills" in after and "runbook.cli.catalog" not in after and "runbook.cli.incident" not in after


def test_each_command_is_found_under_its_own_name():
    """The lazy table's names are the commands' own names, and the incident group has the
    subcommands incident_flow adds whichever module was imported first."""
    ctx = click.Context(cli)
    assert all(cli.get_command(ctx, name).name == name for name in COMMANDS)
    assert {"restart", "alert"} <= set(cli.get_command(ctx, "incident").commands)


def test_help_is_the_same_whether_or_not_the_command_modules_were_imported_first(fixture_env):
    every = "; ".join(f"import {module}" for module in MODULES)
    outputs = []
    for first in ("", every):
        code = f"{first}\nfrom runbook.cli import main\nmain()"
        for args in (["--help"], ["incident", "--help"], ["drill", "run", "--help"], ["resume", "--help"]):
            out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=fixture_env)
            outputs.append((args, out.returncode, out.stdout, out.stderr))
    lazy, eager = outputs[:4], outputs[4:]
    assert lazy == eager
    assert all(code == 0 and "Usage:" in stdout for _, code, stdout, _ in lazy)
