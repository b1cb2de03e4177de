"""A document that passed its schema, as the loader reads it and the linter checks it (its own
module: the loader runs the linter, which must not import the loader back)."""

from __future__ import annotations

from dataclasses import dataclass, field

from runbook.catalog.problems import ERROR, WARNING, Problem, format_path
from runbook.catalog.sourcedoc import SourceDocument

HIDDEN = "hidden"


@dataclass
class Document:
    """A document that passed its schema: its kind, id, model and where it came from."""

    kind: str
    id: str
    model: object
    source: SourceDocument
    text: str = field(repr=False, default="")
    authored: object = field(repr=False, default=None)  # a playbook with includes: the model as written
    # its data with shared definitions (catalog/sharing.py) and includes (a playbook's) expanded
    expanded: dict | None = field(repr=False, default=None)
    broken: tuple = ()  # a document with schema errors, checked in parts: the paths of its broken units
    repaired: dict | None = field(repr=False, default=None)  # ... and its data with those units stood in for

    @property
    def file(self) -> str:
        return self.source.file

    @property
    def data(self) -> dict:
        return self.source.value if self.repaired is None else self.repaired

    def problem(self, path, message, severity=ERROR, code="lint", at_key=False) -> Problem:
        path = tuple(path)
        if self.broken and (severity == WARNING or code in ("loop", "unreachable")
                            or any(path[:len(unit)] == unit for unit in self.broken)):
            code = HIDDEN  # the schema errors of a partial document speak for it
        if at_key:
            line, col = self.source.locate_key(path)
        else:
            line, col, _ = self.source.locate(path)
        return Problem(self.file, line, col, format_path(path), message, severity, code)
