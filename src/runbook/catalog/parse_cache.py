"""Remembers what each document file parsed to, so everyday commands skip PyYAML.

Importing PyYAML (its reader compiles a large Unicode class) and parsing a catalog cost a
one-run drill or a listing about a tenth of its start-up. A file parses to the same values and
positions for as long as its path, its text and the parser are unchanged, so the values, the
position of every key and item, and the parser's notes are kept as JSON under the SHA-256 of
the parser's own source, the path and the text. Only plain data is kept (text keys; strings,
numbers, booleans, null, lists and mappings, no alias shared between two places); any other file
is parsed every time. `runbook validate` always parses in full. The cache holds the files the
last command read, in $XDG_CACHE_HOME/runbook (or ~/.cache/runbook) beside the schema cache;
RUNBOOK_PARSE_CACHE=0 (or RUNBOOK_SCHEMA_CACHE=0) turns it off.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache

from runbook.catalog.problems import Problem
from runbook.catalog.sourcedoc import SourceDocument
from runbook.settings import read_cache, write_cache

FILE = "parsed.json"
FORMAT = 1
HERE = os.path.dirname(os.path.abspath(__file__))


def enabled() -> bool:
    return os.environ.get("RUNBOOK_PARSE_CACHE", "1") != "0" and os.environ.get("RUNBOOK_SCHEMA_CACHE", "1") != "0"


@cache
def _parser_digest() -> bytes:
    digest = hashlib.sha256(str(FORMAT).encode())
    for name in ("yamlsource.py", "sourcedoc.py", "parse_cache.py"):
        with open(os.path.join(HERE, name), "rb") as handle:
            digest.update(handle.read())
    return digest.digest()


def key(path: str, text: str) -> str:
    return hashlib.sha256(_parser_digest() + path.encode("utf-8", "surrogatepass") + b"\0" +
                          text.encode("utf-8", "surrogatepass")).hexdigest()


class _Uncacheable(Exception):
    pass


def encode(source: SourceDocument) -> dict:
    """A document as plain JSON: its value, and the positions of each container by its path."""
    positions: list = []
    seen: set[int] = set()

    def walk(node, path):
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                raise _Uncacheable  # an alias: one object in two places
            seen.add(id(node))
            pos = source.positions.get(id(node))
            if isinstance(node, dict):
                if pos is not None:
                    positions.append([path, {k: list(v) for k, v in pos.items()}])
                for k, v in node.items():
                    if type(k) is not str:
                        raise _Uncacheable
                    walk(v, path + [k])
            else:
                if pos is not None:
                    positions.append([path, [list(v) for v in pos]])
                for i, v in enumerate(node):
                    walk(v, path + [i])
        elif node is not None and type(node) not in (str, int, float, bool):
            raise _Uncacheable  # a date, bytes, a set...

    walk(source.value, [])
    return {"index": source.index, "line": source.line, "column": source.column, "value": source.value,
            "positions": positions, "notes": [list(n) for n in source.notes]}


def decode(entry: dict, file: str) -> SourceDocument:
    value = entry["value"]
    positions = {}
    for path, pos in entry["positions"]:
        node = value
        for part in path:
            node = node[part]
        positions[id(node)] = ({k: tuple(v) for k, v in pos.items()} if isinstance(pos, dict)
                               else [tuple(v) for v in pos])
    return SourceDocument(file, entry["index"], value, entry["line"], entry["column"], positions,
                          [Problem(*n) for n in entry["notes"]])


class ParseCache:
    def __init__(self):
        self.entries: dict = {}
        self.used: dict = {}
        self.changed = False
        if enabled():
            found = read_cache(FILE)
            self.entries = found if isinstance(found, dict) else {}

    def get(self, text_key: str, file: str) -> list[SourceDocument] | None:
        entry = self.entries.get(text_key)
        if entry is None:
            return None
        try:
            sources = [decode(doc, file) for doc in entry]
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return None  # not what this runbook writes: parsed again
        self.used[text_key] = entry
        return sources

    def put(self, text_key: str, sources: list[SourceDocument]) -> None:
        try:
            self.used[text_key] = [encode(source) for source in sources]
        except _Uncacheable:
            return
        self.changed = True

    def save(self) -> None:
        """Keep the files this command read (a catalog's files, not every file ever read)."""
        if enabled() and (self.changed or self.used.keys() != self.entries.keys()):
            write_cache(FILE, self.used)
