"""Documents: YAML with positions -> JSON Schema -> model -> cross-document lint; symptom matching.

Pure: no database, no clock, no plugins.
"""

from runbook.catalog.loader import Catalog, Document, load, load_catalog
from runbook.catalog.problems import ERROR, WARNING, Problem

__all__ = ["Catalog", "Document", "ERROR", "Problem", "WARNING", "load", "load_catalog"]
