"""The shipped schemas: a Playbook and a Procedure take the definitions they share from one file
(shared.defs.json); an editor reading the shipped files resolves it beside them, and what runbook
publishes (`runbook schema KIND`, the validators) stands alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from runbook.catalog import kinds

SCHEMAS = Path(kinds.__file__).parent / "schemas"
HERE = Path(__file__).parent


def refs(node) -> list[str]:
    """Every $ref in a schema."""
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    if not isinstance(node, dict):
        return []
    found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    return found + [ref for value in node.values() for ref in refs(value)]


@pytest.mark.parametrize("kind", sorted(kinds.KINDS))
def test_a_published_schema_needs_no_other_file(kind):
    schema = kinds.schema(kind)
    assert schema["$id"] == f"https://runbook.dev/schemas/v1/{kinds.KINDS[kind].schema_file}"
    for ref in refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in schema["$defs"], ref
    Draft202012Validator.check_schema(schema)


def test_a_playbook_and_a_procedure_share_their_definitions_from_one_file():
    for file in ("playbook.schema.json", "procedure.schema.json"):
        text = json.loads((SCHEMAS / file).read_text())
        assert "$defs" not in text and "$id" not in text  # an $id would send relative references to the web
        assert {ref.partition("#")[0] for ref in refs(text)} == {"shared.defs.json"}
    assert kinds.schema("Procedure")["$defs"] == kinds.schema("Playbook")["$defs"]


def editor_validator(file: str) -> Draft202012Validator:
    """A validator that reads the shipped file as an editor given its path does: references to
    other files are found beside it."""
    def retrieve(uri: str) -> Resource:
        return Resource.from_contents(json.loads(Path(uri.removeprefix("file://")).read_text()))

    uri = (SCHEMAS / file).as_uri()
    registry = Registry(retrieve=retrieve).with_resource(uri, retrieve(uri))
    return Draft202012Validator({"$ref": uri}, registry=registry)


@pytest.mark.parametrize(("kind", "documents"), [
    ("Playbook", sorted((HERE / "fixtures" / "catalog" / "playbooks").glob("*.yaml"))),
    ("Procedure", [HERE / "reuse_catalog" / "procedures.yaml"]),
])
def test_the_shipped_files_judge_documents_as_the_published_schema_does(kind, documents):
    ours, editors = kinds.validator(kind), editor_validator(kinds.KINDS[kind].schema_file)
    checked = 0
    for path in documents:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == kind:
                broken = dict(doc, steps="not a list")
                for candidate in (doc, broken):
                    assert ([e.message for e in ours.iter_errors(candidate)]
                            == [e.message for e in editors.iter_errors(candidate)]), path
                assert not ours.is_valid(broken)
                checked += 1
    assert checked
