"""Layering rules from DESIGN.md that keep the core usable without the TUI."""

from __future__ import annotations

import subprocess
import sys


def test_catalog_and_cli_import_without_textual_or_rich():
    code = ("import sys, runbook.catalog, runbook.catalog.lint, runbook.catalog.outline, runbook.cli; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
