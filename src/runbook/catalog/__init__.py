"""Documents: YAML with positions -> JSON Schema -> model -> cross-document lint; symptom matching.

Pure: no database, no clock, no plugins. The loader (and PyYAML behind it) is imported on
first use, so code that only needs models or flow does not pay for it.
"""

from runbook.catalog.problems import ERROR, WARNING, Problem

__all__ = ["ERROR", "WARNING", "Catalog", "Document", "Problem", "load", "load_catalog"]


def __getattr__(name):
    if name in ("Catalog", "Document", "load", "load_catalog"):
        from runbook.catalog import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'runbook.catalog' has no attribute {name!r}")
