"""Read document files into a Catalog: YAML with positions -> kind -> schema -> model -> lint.

Loading never stops at the first problem: every file is read, every document checked, and
all problems are collected on the Catalog. Documents that pass their schema get a model;
the linter then checks them against each other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from runbook.catalog import kinds
from runbook.catalog.document import HIDDEN, Document
from runbook.catalog.problems import ERROR, WARNING, Problem
from runbook.catalog.sourcedoc import SourceDocument, SourceError, read_text
from runbook.catalog.validate import describe, did_you_mean, schema_problems

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LeftOut:
    """A document left out of the catalog because it failed its schema, when its kind and id
    could still be read: opening a playbook with that id must not pick another document."""

    kind: str | None
    id: str
    file: str
    line: int
    problems: tuple[Problem, ...]


@dataclass
class Catalog:
    documents: list[Document]
    problems: list[Problem]
    files: list[str]
    left_out: list[LeftOut] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    def of_kind(self, kind: str) -> list[Document]:
        return [d for d in self.documents if d.kind == kind]

    def models(self, kind: str) -> dict:
        """Models of one kind by id; on duplicate ids the first one wins (lint reports the rest)."""
        out = {}
        for doc in self.documents:
            if doc.kind == kind and doc.id not in out:
                out[doc.id] = doc.model
        return out

    def find(self, doc_id: str, kind: str | None = None) -> Document | None:
        for doc in self.documents:
            if doc.id == doc_id and (kind is None or doc.kind == kind):
                return doc
        return None

    def problems_with(self, doc_id: str, kind: str) -> list[Problem]:
        """The errors that make `doc_id` of `kind` ambiguous or broken: the schema errors of a left-out
        document with that id (of that kind, or of a kind that could not be read), and the duplicate-id
        errors among the documents of that kind and id. Empty when the id names one valid document."""
        found = []
        for item in self.left_out:
            if item.id == doc_id and (item.kind == kind or item.kind not in kinds.KINDS):
                found.extend(p for p in item.problems if p.severity == ERROR)
        same = [d for d in self.documents if d.kind == kind and d.id == doc_id]
        if len(same) > 1:
            where = {(d.file, *d.source.locate(("id",))[:2]) for d in same}
            found.extend(p for p in self.errors if p.code == "duplicate" and (p.file, p.line, p.column) in where)
        return sorted(set(found), key=lambda p: (p.file, p.line, p.column, p.message))

    def severity_level(self, level_id: str | None):
        """The SeverityLevel with this id in any severity policy, or None."""
        return next((level for policy in self.models("SeverityPolicy").values() for level in policy.levels
                     if level.id == level_id), None)

    def ids(self, kind: str | None = None) -> list[str]:
        return [d.id for d in self.documents if kind is None or d.kind == kind]


def discover(paths) -> tuple[list[str], list[Problem]]:
    """YAML files under each path (a file is taken as is), in a stable order."""
    files, problems = [], []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                str(p) for p in path.rglob("*")
                if p.suffix in SUFFIXES and p.is_file()
                and not any(part.startswith(".") for part in p.parts[len(path.parts):])
            )
            files.extend(found)
        elif path.is_file():
            files.append(str(path))
        else:
            problems.append(Problem(str(path), 1, 1, "", "no such file or directory", code="file"))
    seen = set()
    unique = [f for f in files if not (os.path.realpath(f) in seen or seen.add(os.path.realpath(f)))]
    return unique, problems


def load_catalog(paths, trust_cache: bool = True) -> Catalog:
    """Load every document under `paths`; never raises for problems in the documents.

    With `trust_cache`, a file whose exact text passed its schema before skips the schema check
    (see schema_cache); lint always runs.
    """
    from runbook.catalog.lint import lint
    from runbook.catalog.schema_cache import SchemaCache

    files, problems = discover(paths)
    documents: list[Document] = []
    left_out: list[LeftOut] = []
    cache = SchemaCache()
    parsed = None
    if trust_cache:
        from runbook.catalog.parse_cache import ParseCache

        parsed = ParseCache()
    for file in files:
        docs, file_problems = load_file(file, cache, trust_cache, left_out, parsed)
        documents.extend(docs)
        problems.extend(file_problems)
    cache.save()
    if parsed is not None:
        parsed.save()
    partial = [doc for doc in documents if doc.broken]
    documents = [doc for doc in documents if not doc.broken]
    expand_includes(documents)
    problems.extend(p for p in lint(documents + partial) if p.code != HIDDEN)
    problems.sort(key=lambda p: (p.file, p.line, p.column, p.message))
    return Catalog(documents, problems, files, left_out)


def expand_includes(documents: list[Document]) -> None:
    """Give every playbook and procedure that takes definitions from Shared documents, and every
    playbook that includes procedures, its expanded model (what runs and what is shown); with
    includes, the model as written (shared references expanded) stays on `authored` for the
    linter, whose step positions it keeps."""
    from runbook.catalog import sharing
    from runbook.catalog.procedures import expand, includes

    shared = {}
    for doc in documents:
        if doc.kind == "Shared":
            shared.setdefault(doc.id, doc.data)
    for doc in documents:
        if doc.kind in ("Playbook", "Procedure") and (expanded := sharing.expand(doc.data, shared)) is not doc.data:
            doc.expanded = expanded
            doc.model = kinds.KINDS[doc.kind].build(expanded)
    procedures = {}
    for doc in documents:
        if doc.kind == "Procedure":
            procedures.setdefault(doc.id, doc.expanded or doc.data)
    for doc in documents:
        data = doc.expanded or doc.data
        if doc.kind == "Playbook" and includes(data):
            doc.authored = doc.model
            doc.expanded = expand(data, procedures)
            doc.model = kinds.KINDS["Playbook"].build(doc.expanded)


def load(paths, strict: bool = False) -> Catalog:
    """Load a catalog for use: raises DocumentError listing every error (and warnings if strict)."""
    from runbook.errors import DocumentError

    catalog = load_catalog(paths)
    failing = catalog.problems if strict else catalog.errors
    if failing:
        raise DocumentError(failing)
    return catalog


def load_file(file: str, cache=None, trust_cache: bool = False,
              left_out: list[LeftOut] | None = None, parsed=None) -> tuple[list[Document], list[Problem]]:
    """The documents of one file that passed their schema, and every problem found in it; each
    document that failed but whose `id` can be read is added to `left_out` (when given). With
    `parsed` (a ParseCache), a text parsed before is not parsed again."""
    try:
        text = read_text(file)
        sources = None
        if parsed is not None:
            from runbook.catalog.parse_cache import key as parse_key

            parsed_key = parse_key(file, text)
            sources = parsed.get(parsed_key, file)
        if sources is None:
            from runbook.catalog.yamlsource import parse

            sources = parse(text, file)
            if parsed is not None:
                parsed.put(parsed_key, sources)
    except SourceError as exc:
        return [], [exc.problem]
    text_key = None
    if cache is not None:
        from runbook.catalog.schema_cache import key

        text_key = key(text)
        trusted = trust_cache and text_key in cache
    if not sources:
        return [], [Problem(file, 1, 1, "", "file holds no document, expected a mapping with "
                            f"apiVersion: {kinds.API_VERSION} and a kind ({', '.join(kinds.KINDS)})",
                            code="empty")]
    documents, problems = [], []
    for source in sources:
        doc, doc_problems = load_document(source, text, check_schema=not (cache is not None and trusted))
        problems.extend(doc_problems)
        if doc is not None:
            documents.append(doc)
        if (doc is None or doc.broken) and left_out is not None and isinstance(source.value, dict) \
                and isinstance(source.value.get("id"), str):  # a partial document is checked, never run
            kind = source.value.get("kind")
            left_out.append(LeftOut(kind if isinstance(kind, str) else None, source.value["id"], source.file,
                                    source.line, tuple(doc_problems)))
    if cache is not None and not any(p.code not in ("yaml-comment",) and p.severity == ERROR for p in problems):
        cache.remember(text_key)
    return documents, problems


def load_document(source: SourceDocument, text: str = "",
                  check_schema: bool = True) -> tuple[Document | None, list[Problem]]:
    value = source.value
    if not isinstance(value, dict):
        return None, [Problem(source.file, source.line, source.column, "",
                              f"expected a mapping with apiVersion and kind, got {describe(value)}",
                              code="schema")]
    kind_name = value.get("kind")
    if not isinstance(kind_name, str) or kind_name not in kinds.KINDS:  # a list or mapping is no key
        line, col, raw = source.locate(("kind",)) if "kind" in value else (source.line, source.column, None)
        known = ", ".join(kinds.KINDS)
        if "kind" not in value:
            message = f"missing required field 'kind', expected one of: {known}"
        else:
            message = (f"{describe(kind_name, raw)} is not a document kind, expected one of: {known}"
                       f"{did_you_mean(kind_name, kinds.KINDS)}")
        return None, [Problem(source.file, line, col, "kind" if "kind" in value else "", message)]
    problems = schema_problems(source, kind_name) if check_schema else []
    if problems:
        return _partial(source, kind_name, text), problems + source.notes
    model = kinds.KINDS[kind_name].build(value)
    return Document(kind_name, value["id"], model, source, text), list(source.notes)


def _partial(source: SourceDocument, kind_name: str, text: str) -> Document | None:
    """The document checked in parts (catalog/partial.py): linted with the catalog, never run."""
    from runbook.catalog.partial import repair

    try:
        repaired = repair(source.value, kind_name)
        if repaired is None:
            return None
        data, broken = repaired
        return Document(kind_name, data["id"], kinds.KINDS[kind_name].build(data), source, text,
                        broken=broken, repaired=data)
    except Exception:  # defensive: a document that cannot be checked in parts keeps its schema errors
        return None
