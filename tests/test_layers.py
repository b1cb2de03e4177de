"""Layering rules from DESIGN.md that keep the core usable without the TUI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "runbook"


def test_core_imports_without_textual_or_rich():
    code = ("import sys, runbook.catalog, runbook.catalog.lint, runbook.catalog.outline, runbook.engine, "
            "runbook.engine.metrics, runbook.store, runbook.plugins, runbook.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]; print(bad)")
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
                      if imported_modules(p) & {"sqlite3", "sqlite_utils"})
    assert speakers == ["store.py"]


def test_catalog_engine_store_never_import_textual():
    for package in ("catalog", "engine"):
        for path in (SRC / package).rglob("*.py"):
            assert "textual" not in imported_modules(path), path
    assert "textual" not in imported_modules(SRC / "store.py")
