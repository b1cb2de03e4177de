"""A parsed YAML document and where its values came from, and reading document files safely.

Kept apart from the parser (`yamlsource`, which imports PyYAML) so that a catalog whose files
were parsed before (`parse_cache`) loads without importing PyYAML at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from runbook.catalog.problems import Problem

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 40
MAX_NODES = 100_000


class SourceError(Exception):
    """Raised while reading or parsing a document file; carries one Problem. Callers report it."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(problem.format())


@dataclass
class SourceDocument:
    """One YAML document: its value, and positions of every mapping key and sequence item.

    `positions` maps id(container) to {key: (key_line, key_col, value_line, value_col, raw)}
    for a dict and to [(line, col, raw), ...] for a list. Lines and columns are 1-based.
    `raw` is the source text of a plain scalar that YAML 1.1 read as a boolean (``yes``),
    kept so errors can say why ``no`` became ``False``.
    """

    file: str
    index: int
    value: object
    line: int
    column: int
    positions: dict = field(repr=False, default_factory=dict)
    notes: list = field(default_factory=list)

    def locate(self, path) -> tuple[int, int, str | None]:
        """Line, column and raw text of the value at `path`; the nearest known ancestor if absent."""
        node = self.value
        line, col, raw = self.line, self.column, None
        for part in path:
            pos = self.positions.get(id(node))
            if pos is None:
                break
            try:
                if isinstance(node, dict):
                    _, _, line, col, raw = pos[part]
                else:
                    line, col, raw = pos[part]
                node = node[part]
            except (KeyError, IndexError, TypeError):
                break
        return line, col, raw

    def locate_value(self, path):
        """The value at `path`, or None when the path does not exist."""
        node = self.value
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def locate_key(self, path) -> tuple[int, int]:
        """Line and column of the key that ends `path` (falls back to the value's position)."""
        if not path:
            return self.line, self.column
        parent = self.value
        for part in path[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                return self.locate(path)[:2]
        pos = self.positions.get(id(parent))
        if isinstance(parent, dict) and pos and path[-1] in pos:
            kline, kcol, _, _, _ = pos[path[-1]]
            return kline, kcol
        return self.locate(path)[:2]


def read_text(path: str) -> str:
    """Read a document file as UTF-8 text, refusing what is too big, binary or mis-encoded."""
    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:
            raise SourceError(Problem(path, 1, 1, "", f"file is {size:,} bytes; documents "
                                      f"larger than {MAX_FILE_BYTES:,} bytes are refused", code="file"))
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SourceError(Problem(path, 1, 1, "", f"cannot read file: {exc.strerror or exc}",
                                  code="file")) from None
    if len(data) > MAX_FILE_BYTES:
        raise SourceError(Problem(path, 1, 1, "", f"file is larger than {MAX_FILE_BYTES:,} bytes; "
                                  "documents that large are refused", code="file"))
    return decode(data, path)


_WIDE_BOMS = ((b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe\x00\x00", "UTF-32"),
              (b"\xfe\xff", "UTF-16"), (b"\xff\xfe", "UTF-16"))


def decode(data: bytes, path: str) -> str:
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            raise SourceError(Problem(path, 1, 1, "", f"file is encoded as {name}, expected UTF-8; "
                                      "save it as UTF-8", code="file"))
    nul = data.find(b"\x00")
    if nul >= 0:
        line, col = _line_col(data, nul)
        raise SourceError(Problem(path, line, col, "", "file is binary (NUL byte), "
                                  "expected UTF-8 YAML text", code="file"))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _line_col(data, exc.start)
        raise SourceError(Problem(path, line, col, "", f"byte 0x{data[exc.start]:02x} is not "
                                  "valid UTF-8, expected UTF-8 YAML text", code="file")) from None


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of a byte offset, the column counted in characters like YAML's."""
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    return line, len(data[start:offset].decode("utf-8", "replace")) + 1
