"""The parse cache (catalog/parse_cache.py): a catalog read from the cache is the catalog parsed
from its YAML (the same documents, models, problems and positions), without importing PyYAML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.catalog import parse_cache
from runbook.catalog.loader import load_catalog
from runbook.settings import cache_dir

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
CATALOGS = [[ROOT / "playbooks", ROOT / "drills"], [TESTS / "fixtures" / "catalog"], [TESTS / "bad_documents"],
            [TESTS / "engine_catalog"], [TESTS / "params_catalog"], [TESTS / "waits_catalog"],
            [TESTS / "followup_catalog"], [TESTS / "reuse_catalog"], [TESTS / "serve_catalog"],
            [TESTS / "metrics_catalog"]]


def _seen(catalog) -> tuple:
    documents = [(d.kind, d.id, d.model, d.data, d.source.line, d.source.column,
                  sorted((str(path), d.source.locate(path)) for path in _paths(d.data)))
                 for d in catalog.documents]
    return documents, catalog.problems, catalog.left_out


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, path + (i,))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RUNBOOK_PARSE_CACHE", raising=False)
    monkeypatch.delenv("RUNBOOK_SCHEMA_CACHE", raising=False)
    return cache_dir() / parse_cache.FILE


@pytest.mark.parametrize("paths", CATALOGS, ids=lambda paths: paths[0].name)
def test_a_catalog_read_from_the_cache_is_the_catalog_parsed(paths, fresh_cache, monkeypatch):
    paths = [str(p) for p in paths if p.exists()]
    monkeypatch.setenv("RUNBOOK_PARSE_CACHE", "0")
    parsed = _seen(load_catalog(paths))
    monkeypatch.delenv("RUNBOOK_PARSE_CACHE")
    cold = _seen(load_catalog(paths))
    assert fresh_cache.exists()
    kept = json.loads(fresh_cache.read_text())
    warm = _seen(load_catalog(paths))
    assert cold == parsed and warm == parsed
    assert kept, "nothing was kept"


def test_a_warm_cache_needs_no_pyyaml_and_an_edit_is_parsed_again(tmp_path, fresh_cache):
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for name in ("severity.yaml", "escalation-rtc-default.yaml", "roster.yaml", "video-call-degraded.yaml"):
        (catalog / name).write_text((ROOT / "playbooks" / name).read_text())
    code = ("import sys; from runbook.catalog.loader import load_catalog; c = load_catalog([sys.argv[1]]); "
            "print(len(c.documents), len(c.errors), 'yaml' in sys.modules, c.find('video-call-degraded').model.title)")
    env = {**os.environ, "XDG_CACHE_HOME": str(fresh_cache.parent.parent)}

    def run():
        return subprocess.run([sys.executable, "-c", code, str(catalog)], env=env, capture_output=True, text=True,
                              check=True).stdout.split(maxsplit=3)

    first, second = run(), run()
    assert first[:2] == second[:2] and first[2] == "True" and second[2] == "False", (first, second)
    playbook = catalog / "video-call-degraded.yaml"
    playbook.write_text(playbook.read_text().replace("title: Video calls degraded", "title: Edited title", 1))
    edited = run()
    assert edited[2] == "True" and edited[3].strip() == "Edited title"


def test_an_alias_shared_between_two_places_is_parsed_every_time(tmp_path, fresh_cache):
    playbook = tmp_path / "odd.yaml"
    text = (ROOT / "playbooks" / "video-call-degraded.yaml").read_text()
    playbook.write_text(text.replace("kind: Playbook", "kind: Playbook\nx-one: &shared {a: 1}\nx-two: *shared", 1))
    first = _seen(load_catalog([str(tmp_path)]))
    assert not fresh_cache.exists() or json.loads(fresh_cache.read_text()) == {}  # one object in two places: not kept
    assert _seen(load_catalog([str(tmp_path)])) == first


def test_a_damaged_cache_is_not_used(tmp_path, fresh_cache):
    paths = [str(ROOT / "playbooks")]
    parsed = _seen(load_catalog(paths))
    entries = json.loads(fresh_cache.read_text())
    for damaged in ("not json", json.dumps([1, 2]),
                    json.dumps({k: [{"value": 1}] for k in entries}),
                    json.dumps({k: [{**doc, "positions": [[["no", "such", "path"], {}]]} for doc in v]
                                for k, v in entries.items()})):
        fresh_cache.write_text(damaged)
        assert _seen(load_catalog(paths)) == parsed


def test_validate_parses_in_full(tmp_path, fresh_cache):
    paths = [str(ROOT / "playbooks")]
    load_catalog(paths)
    entries = json.loads(fresh_cache.read_text())
    lie = {k: [{**doc, "value": {**doc["value"], "title": "FROM THE CACHE"}} if doc["value"].get("kind") == "Playbook"
               else doc for doc in v] for k, v in entries.items()}
    fresh_cache.write_text(json.dumps(lie))
    assert all(d.model.title != "FROM THE CACHE" for d in load_catalog(paths, trust_cache=False).of_kind("Playbook"))
