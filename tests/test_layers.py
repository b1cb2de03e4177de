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
