"""Safe YAML reading that remembers where every key and value came from.

PyYAML's composer is recursive and expands aliases as it goes, so a hostile file can
exhaust the stack or the memory. This module builds plain Python values straight from
libyaml's event stream with an explicit stack, so nesting depth, node count (including
alias expansion) and file size are all bounded, and every value keeps its source line
and column for error messages.
"""

from __future__ import annotations

import re

import yaml
from yaml.nodes import ScalarNode

from runbook.catalog.problems import Problem
from runbook.catalog.sourcedoc import (  # noqa: F401
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_NODES,
    SourceDocument,
    SourceError,
    decode,
    read_text,
)

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
    __slots__ = ("anchor", "key", "key_mark", "merges", "positions", "start", "value", "weight")

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
