"""Safe YAML reading that remembers where every key and value came from.

PyYAML's composer is recursive and expands aliases as it goes, so a hostile file can
exhaust the stack or the memory. This module builds plain Python values straight from
libyaml's event stream with an explicit stack, so nesting depth, node count (including
alias expansion) and file size are all bounded, and every value keeps its source line
and column for error messages.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import yaml
from yaml.nodes import ScalarNode

from runbook.catalog.problems import Problem

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 40
MAX_NODES = 100_000

try:  # libyaml is bundled in PyYAML's wheels; the pure-Python parser is the fallback.
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

_TAG = "tag:yaml.org,2002:"
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
# Plain words that YAML 1.1 turns into booleans although a person meant text.
AMBIGUOUS_BOOLEANS = frozenset(
    w for base in ("yes", "no", "on", "off", "y", "n") for w in (base, base.upper(), base.title())
)


class SourceError(Exception):
    """Raised inside this module; carries one Problem. Callers turn it into a report."""

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


def parse(text: str, path: str) -> list[SourceDocument]:
    """Parse every document in `text`. Raises SourceError on the first YAML problem."""
    try:
        return _Builder(path, text).run(yaml.parse(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        line, col, message = explain_yaml_error(exc, text)
        raise SourceError(Problem(path, line, col, "", f"invalid YAML: {message}", code="yaml")) from None
    except yaml.YAMLError as exc:  # reader errors carry no mark
        raise SourceError(Problem(path, 1, 1, "", f"invalid YAML: {exc}", code="yaml")) from None


def explain_yaml_error(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, int, str]:
    """Line, column and a plain-words message for libyaml's most common complaints.

    libyaml reports where it gave up; a person needs where the mistake is (the opening quote
    that never closes, the line that is indented wrongly) and what to do about it.
    """
    problem, context = exc.problem or "", exc.context or ""
    mark, cmark = exc.problem_mark, exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    lines = text.splitlines()
    source = lines[line - 1] if 0 < line <= len(lines) else ""
    if "quoted scalar" in context and cmark:
        return cmark.line + 1, cmark.column + 1, "this quoted text is never closed, expected a matching closing quote"
    if context.startswith("while parsing a flow") and cmark and problem.startswith("did not find expected"):
        opener, closer = ("[", "]") if "sequence" in context else ("{", "}")
        return (cmark.line + 1, cmark.column + 1,
                f"this '{opener}' is never closed, expected '{closer}' (and ',' between items)")
    if problem.startswith("mapping values are not allowed"):
        first_colon = source.find(": ")
        indent = len(source) - len(source.lstrip())
        if 0 <= first_colon < col - 1:
            key, value = source[:first_colon].strip().lstrip("- "), source[first_colon + 2:].strip()
            return (line, first_colon + 3, f"the value '{value}' contains ': ', which YAML reads as a new key; "
                    f"quote the whole value: {key}: \"{value}\"")
        return (line, indent + 1, "this line is indented more than the line above it, so YAML reads it as part "
                "of the value above; indent it like its siblings")
    if problem.startswith(("did not find expected '-' indicator", "did not find expected key")) and cmark:
        indent = len(source) - len(source.lstrip())
        return (line, indent + 1, f"this line is indented to column {indent + 1}, which lines up with nothing "
                f"above it (the block starting at line {cmark.line + 1}, column {cmark.column + 1}); indent it "
                "like its siblings")
    if "tab character" in problem or ("cannot start any token" in problem and "\\t" in problem):
        return line, col, "a tab character is used for indentation, expected spaces (YAML indents with spaces only)"
    message = problem or "not valid YAML"
    if context:
        message = f"{message} ({context})"
    return line, col, message


class _Frame:
    __slots__ = ("value", "positions", "key", "key_mark", "anchor", "weight", "merges", "start")

    def __init__(self, value, positions, anchor, start):
        self.value = value
        self.positions = positions
        self.key = _NO_KEY
        self.key_mark = None
        self.anchor = anchor
        self.weight = 1
        self.merges = None
        self.start = start


_NO_KEY = object()
_COLLECTION_TAGS = frozenset((None, "!", _TAG + "map", _TAG + "seq"))


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag
_MERGE = object()


_HIDDEN_COMMENT = re.compile(r"[ \t]+#\w")


class _Builder:
    def __init__(self, path: str, text: str = ""):
        self.path = path
        self.text = text
        self.lines: list[str] | None = None
        self.notes: list[Problem] = []
        self.positions: dict = {}
        self.anchors: dict = {}
        self.nodes = 0

    def fail(self, mark, message: str, code: str = "yaml"):
        raise SourceError(Problem(self.path, mark.line + 1, mark.column + 1, "", message, code=code))

    def run(self, events) -> list[SourceDocument]:
        docs: list[SourceDocument] = []
        stack: list[_Frame] = []
        root = None
        root_mark = None
        for event in events:
            kind = type(event)
            if kind is yaml.ScalarEvent:
                value, raw = self.scalar(event)
                if not event.style and isinstance(value, str):
                    self.check_hidden_comment(event)
                self.add(stack, value, event.start_mark, raw, 1)
                if event.anchor:
                    self.anchors[event.anchor] = (value, 1)
                if not stack:
                    root, root_mark = value, event.start_mark
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                if len(stack) >= MAX_DEPTH:
                    self.fail(event.start_mark, f"nesting is deeper than {MAX_DEPTH} levels; "
                              "runbook documents are never that deep", code="limit")
                if event.tag not in _COLLECTION_TAGS:
                    self.fail(event.start_mark, f"tag {_short_tag(event.tag)} is not supported; use plain YAML "
                              "mappings and lists")
                value = {} if kind is yaml.MappingStartEvent else []
                pos = {} if kind is yaml.MappingStartEvent else []
                self.positions[id(value)] = pos
                stack.append(_Frame(value, pos, event.anchor, event.start_mark))
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                if frame.merges:
                    self.apply_merges(frame)
                if frame.anchor:
                    self.anchors[frame.anchor] = (frame.value, frame.weight)
                self.add(stack, frame.value, frame.start, None, frame.weight)
                if not stack:
                    root, root_mark = frame.value, frame.start
            elif kind is yaml.AliasEvent:
                if event.anchor not in self.anchors:
                    self.fail(event.start_mark, f"alias *{event.anchor} refers to no complete "
                              f"anchor &{event.anchor} above it (undefined or recursive)")
                value, weight = self.anchors[event.anchor]
                self.add(stack, value, event.start_mark, None, weight, count=weight)
                if not stack:
                    root, root_mark = value, event.start_mark
            elif kind is yaml.DocumentStartEvent:
                root, root_mark = None, event.start_mark
                self.anchors = {}
            elif kind is yaml.DocumentEndEvent:
                if root is not None:
                    docs.append(SourceDocument(self.path, len(docs), root, root_mark.line + 1,
                                               root_mark.column + 1, self.positions, self.notes))
                self.positions, self.notes = {}, []
        return docs

    def check_hidden_comment(self, event):
        """Warn when ' #word' after plain text was probably meant as part of it (#incidents)."""
        if self.lines is None:
            self.lines = self.text.splitlines()
        mark = event.end_mark
        if mark.line >= len(self.lines):
            return
        rest = self.lines[mark.line][mark.column:]
        if _HIDDEN_COMMENT.match(rest):
            hash_col = mark.column + rest.index("#") + 1
            self.notes.append(Problem(
                self.path, mark.line + 1, hash_col, "",
                f"'{rest.strip()}' is a YAML comment, not part of the value '{event.value}'; "
                "quote the whole value if it belongs to it", severity="warning", code="yaml-comment"))

    def add(self, stack, value, mark, raw, weight, count=1):
        """Attach a finished value to the open container; `weight` is its expanded size."""
        self.nodes += count
        if self.nodes > MAX_NODES:
            self.fail(mark, f"document has more than {MAX_NODES:,} values, counting what "
                      "aliases expand to (an alias expansion bomb?)", code="limit")
        if not stack:
            return
        frame = stack[-1]
        frame.weight += weight
        line, col = mark.line + 1, mark.column + 1
        if isinstance(frame.value, list):
            frame.value.append(value)
            frame.positions.append((line, col, raw))
            return
        if frame.key is _NO_KEY:
            frame.key = self.key(value, raw, mark, frame)
            frame.key_mark = (line, col)
            return
        key, (kline, kcol) = frame.key, frame.key_mark
        frame.key = _NO_KEY
        if key is _MERGE:
            merges = value if isinstance(value, list) else [value]
            if not all(isinstance(m, dict) for m in merges):
                self.fail(mark, "merge key << needs a mapping or a list of mappings")
            frame.merges = (frame.merges or []) + merges
            return
        frame.value[key] = value
        frame.positions[key] = (kline, kcol, line, col, raw)

    def key(self, value, raw, mark, frame):
        if value is _MERGE:
            return _MERGE
        if isinstance(value, (dict, list)):
            self.fail(mark, "a mapping key must be plain text, not a mapping or list")
        if isinstance(value, bool):
            if raw is not None:
                self.fail(mark, f"key {raw} is read by YAML as the boolean {str(value).lower()}; "
                          f"quote it (\"{raw}\") to use it as text", code="yaml-boolean")
            value = str(value).lower()
        elif value is None:
            self.fail(mark, "empty (null) mapping key, expected a name")
        elif not isinstance(value, str):
            value = str(value)
        if value in frame.value or value in frame.positions:
            first = frame.positions[value][0]
            self.fail(mark, f"duplicate key '{value}' (first defined on line {first})")
        return value

    def apply_merges(self, frame):
        for merged in frame.merges:
            pos = self.positions.get(id(merged), {})
            for key, value in merged.items():
                if key not in frame.value:
                    frame.value[key] = value
                    frame.positions[key] = pos.get(key, (1, 1, 1, 1, None))

    def scalar(self, event):
        tag = event.tag
        if tag is None or tag == "!":
            tag = _RESOLVER.resolve(ScalarNode, event.value, event.implicit)
        if not tag.startswith(_TAG):
            self.fail(event.start_mark, f"tag {_short_tag(tag)} is not supported; use plain YAML values")
        short = tag[len(_TAG):]
        text = event.value
        if short == "str" or short == "timestamp":
            return text, None
        if short == "bool":
            return text.lower() in ("yes", "true", "on", "y"), (text if text in AMBIGUOUS_BOOLEANS else None)
        if short == "null":
            return None, None
        if short == "merge":
            return _MERGE, None
        node = ScalarNode(tag, text, event.start_mark, event.end_mark)
        try:
            if short == "int":
                return _CONSTRUCTOR.construct_yaml_int(node), None
            if short == "float":
                return _CONSTRUCTOR.construct_yaml_float(node), None
        except (ValueError, yaml.YAMLError):
            self.fail(event.start_mark, f"'{text}' is not a valid {short}")
        self.fail(event.start_mark, f"tag !!{short} is not supported; use plain YAML values")
