"""The compiled validator (jsonschema-rs) only decides faster: with it on or off, the same
documents are accepted and the same problems reported, at the same places."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.catalog import compiled_schema, kinds, load_catalog
from runbook.catalog.loader import load_document
from runbook.catalog.yamlsource import SourceError, parse, read_text

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
CATALOGS = [ROOT / "playbooks", TESTS / "fixtures" / "catalog",
            *sorted(p for p in TESTS.glob("*_catalog") if p.is_dir())]
BAD = sorted(p for p in (TESTS / "bad_documents").glob("*.y*ml"))
CONTEXT = TESTS / "bad_documents" / "_context"


def outcome(paths, monkeypatch, compiled: bool):
    monkeypatch.setenv("RUNBOOK_COMPILED_SCHEMA", "1" if compiled else "0")
    catalog = load_catalog([str(p) for p in paths], trust_cache=False)
    return ([(d.kind, d.id, d.file, d.broken) for d in catalog.documents],
            [(p.file, p.line, p.column, p.path, p.message, p.severity, p.code) for p in catalog.problems],
            catalog.left_out)


@pytest.mark.parametrize("catalog", CATALOGS, ids=[p.name if p.name != "catalog" else "fixtures" for p in CATALOGS])
def test_catalogs_load_the_same_with_and_without_it(catalog, monkeypatch):
    assert outcome([catalog], monkeypatch, compiled=True) == outcome([catalog], monkeypatch, compiled=False)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_documents_report_the_same_with_and_without_it(path, monkeypatch):
    on = outcome([CONTEXT, path], monkeypatch, compiled=True)
    assert on[1], "a bad document reports problems"
    assert on == outcome([CONTEXT, path], monkeypatch, compiled=False)


def sources(paths):
    for path in paths:
        files = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
        for file in files:
            try:
                yield from parse(read_text(str(file)), str(file))
            except SourceError:  # a file that is not YAML has no document to check
                continue


def exact_passes(kind_name, value) -> bool:
    return next(kinds.validator(kind_name).iter_errors(value), None) is None


def test_it_passes_exactly_what_jsonschema_passes_in_every_catalog_and_bad_document():
    checked = passed = 0
    for source in sources(CATALOGS + [CONTEXT] + BAD):
        value = source.value
        if not isinstance(value, dict) or not isinstance(value.get("kind"), str) or value["kind"] not in kinds.KINDS:
            continue
        checked += 1
        fast = compiled_schema.passes(value["kind"], value)
        assert fast == exact_passes(value["kind"], value), source.file
        passed += fast
    # jsonschema-rs is a dependency: without it nothing would pass here and every document
    # would quietly take the slow path
    assert checked > 100 and passed > 50


# Where jsonschema-rs and jsonschema were seen to differ, and what must come of it.
def shipped(path: Path) -> dict:
    return parse(read_text(str(path)), str(path))[0].value


EVERYTHING = shipped(TESTS / "params_catalog" / "everything.yaml")
DRILL = shipped(TESTS / "fixtures" / "catalog" / "drills" / "weekly-audio-fallback.yaml")


def changed(doc: dict, path: tuple, value) -> dict:
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


def guarded(expect: str) -> dict:
    return changed(DRILL, ("guard",), {"checks": [{"prometheus": {"query": "up", "expect": expect}}]})


WAITS = shipped(TESTS / "waits_catalog" / "waits-pb.yaml")


def step_index(doc: dict, step_id: str) -> int:
    return next(i for i, step in enumerate(doc["steps"]) if isinstance(step, dict) and step.get("id") == step_id)


POD = step_index(EVERYTHING, "get-pod")
EDGES = {
    # Rust's regex reads \s without \x1c-\x1f and \x85 and with \ufeff, \d as ASCII only and $ as the
    # very end; jsonschema-rs takes no key that is not text; NaN, integers past 64 bits, 1 == 1.0
    "file separator in a dotted path": ("Playbook", changed(EVERYTHING, ("steps", POD, "capture", "pod", "json"),
                                                            "items.0\x1cname")),
    "next line in a dotted path": ("Playbook", changed(EVERYTHING, ("steps", POD, "capture", "pod", "json"),
                                                       "items\x85.0")),
    "byte order mark in a comparison": ("Drill", guarded("\ufeff< 0.02")),
    "a comparison as it should be": ("Drill", guarded(" < 0.02")),
    "arabic digit in a duration": ("Playbook", changed(EVERYTHING, ("steps", POD, "timebox"), "\u0665m")),
    "trailing newline in an id": ("Playbook", changed(EVERYTHING, ("id",), "abc\n")),
    "not a number": ("Playbook", changed(EVERYTHING, ("steps", POD, "timebox"), math.nan)),
    "huge integer": ("Playbook", changed(EVERYTHING, ("steps", POD, "title"), 10**30)),
    "integer key": ("Playbook", changed(EVERYTHING, ("roles", 1), {"title": "x"})),
    "null key": ("Playbook", changed(EVERYTHING, ("roles", None), {"title": "x"})),
    "unpaired surrogate": ("Playbook", changed(EVERYTHING, ("title",), "\ud800")),
    "1 and 1.0 in a unique list": ("Playbook", changed(WAITS, ("steps", step_index(WAITS, "drained"), "not_yet"),
                                                       [1, 1.0])),
}


@pytest.mark.parametrize("kind_name, value", EDGES.values(), ids=EDGES.keys())
def test_where_jsonschema_rs_reads_a_value_otherwise_it_still_answers_as_jsonschema(kind_name, value):
    assert compiled_schema.passes(kind_name, value) == exact_passes(kind_name, value)


LEAVES = (st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.floats()
          | st.text(alphabet=st.sampled_from(list("aZ09_.-:  \t\n\x1c\x85\ufeff\u0665{}<>=!%wdhms")), max_size=12))


def paths_in(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_in(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_in(item, prefix + (index,))


SHIPPED_VALUES = [(s.value["kind"], s.value) for s in sources([ROOT / "playbooks", TESTS / "fixtures" / "catalog"])
                  if isinstance(s.value, dict) and s.value.get("kind") in kinds.KINDS]


@st.composite
def mutated_documents(draw):
    """A shipped document with one to three values replaced, keys added or items dropped."""
    kind_name, value = draw(st.sampled_from(SHIPPED_VALUES))
    doc = copy.deepcopy(value)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths_in(doc))[1:]))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "add key", "drop"]))
        if action == "replace":
            parent[path[-1]] = draw(LEAVES | st.lists(LEAVES, max_size=3)
                                    | st.dictionaries(st.text(max_size=5), LEAVES, max_size=3))
        elif action == "add key" and isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(["kind", "next", "id", "x", "include", "title"]))] = draw(LEAVES)
        elif action == "drop":
            del parent[path[-1]]
    return kind_name, doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_documents())
def test_mutated_documents_report_the_same_with_and_without_it(kind_and_doc):
    kind_name, doc = kind_and_doc
    if compiled_schema.passes(kind_name, doc):
        assert exact_passes(kind_name, doc)
    try:
        text = json.dumps(doc, allow_nan=True)
    except (TypeError, ValueError):
        return
    try:
        source = parse(text, "mutated.yaml")[0]
    except SourceError:  # JSON that YAML refuses (a control character): no document to load
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RUNBOOK_COMPILED_SCHEMA", "0")
        _, exact = load_document(source)
    _, fast = load_document(source)
    assert fast == exact
