"""Layering rules from DESIGN.md that keep the core usable without the TUI. The import contracts
(which module may import which, imports inside functions included) are import-linter's, in
pyproject.toml, run by tests/test_lint.py; this checks what importing the core really loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "runbook"

# DESIGN.md: "catalog, engine, store, drills never import textual".
CORE_PACKAGES = ("catalog", "engine", "drills", "store")
CORE_FILES = ()


def core_files() -> list[Path]:
    files = [path for package in CORE_PACKAGES for path in sorted((SRC / package).rglob("*.py"))]
    return files + [SRC / name for name in CORE_FILES]


def module_name(path: Path) -> str:
    parts = ("runbook",) + path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_core_imports_without_textual_or_rich():
    # every module of the core, found on disk, so a new one is covered without editing this list
    modules = [module_name(path) for path in core_files()] + ["runbook.plugins", "runbook.cli"]
    assert {"runbook.drills.simulate", "runbook.drills.scheduler", "runbook.engine", "runbook.store"} <= set(modules)
    code = (f"import importlib, sys\nfor name in {modules!r}: importlib.import_module(name)\n"
            "print([m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# DESIGN.md, round three: "the TUI, CLI and server only call the engine service". The CLI's
# commands go through `Context.engine_service()`; none reaches into an engine's store, and only
# context.py makes the engine (tui.py and drills.py hand it to the TUI, whose gateway puts its
# own service on it; serve.py checks the catalog on it before listening). `runbook db`
# (database.py) works on the store itself, before and around migrations.
ENGINE_HANDED_ON = {"context.py", "tui.py", "drills.py", "serve.py"}


def test_the_cli_goes_through_the_engine_service():
    import re

    files = sorted((SRC / "cli").glob("*.py"))
    assert len(files) > 5
    store = [f"{p.name}:{n}" for p in files for n, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"\bengine\.store\b|\._?store\(\)\.|\.store\.(?!import)", line)]
    assert store == [], f"the CLI reaches into an engine's store: {store}"
    direct = [f"{p.name}:{n}" for p in files if p.name not in ENGINE_HANDED_ON
              for n, line in enumerate(p.read_text().splitlines(), 1)
              if re.search(r"\b(ctx|context|self)\.engine\(", line)]
    assert direct == [], f"CLI commands call the engine, not the service: {direct}"
