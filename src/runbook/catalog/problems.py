"""A problem found in a document: where it is, what is wrong, how bad."""

from __future__ import annotations

from typing import NamedTuple

ERROR = "error"
WARNING = "warning"


class Problem(NamedTuple):
    file: str
    line: int
    column: int
    path: str
    message: str
    severity: str = ERROR
    code: str = "schema"

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}:"
        label = " warning:" if self.severity == WARNING else ""
        path = f" {self.path}:" if self.path else ""
        return f"{where}{label}{path} {self.message}"

    def to_dict(self) -> dict:
        return self._asdict()


def format_path(parts) -> str:
    """Render a path inside a document the way a person reads it: steps[2].options[0].next."""
    out = []
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part and all(c.isalnum() or c in "_-" for c in part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{part!r}]")
    return "".join(out)
