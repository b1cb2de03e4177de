"""Layering rules from DESIGN.md that keep the core usable without the TUI."""

from __future__ import annotations

import ast
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


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_store_speaks_sql():
    speakers = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                      if imported_modules(p) & {"sqlite3", "sqlite_utils", "psycopg"})
    assert speakers == ["store/postgres.py", "store/sqlite.py"]


def test_catalog_engine_store_and_drills_never_import_textual():
    # also imports inside functions, which the import-time test above cannot see
    offenders = [str(path.relative_to(SRC)) for path in core_files() if "textual" in imported_modules(path)]
    assert offenders == []
