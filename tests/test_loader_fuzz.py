"""Property: whatever bytes a file holds, loading reports problems and never raises."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbook.catalog.loader import load, load_document, load_file
from runbook.catalog.problems import Problem
from runbook.catalog.yamlsource import SourceError, parse
from runbook.errors import DocumentError, RunbookError

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

yaml_ish = st.text(alphabet=st.sampled_from(list("abc:-[]{}&*!|>'\"#\n\t ,?%@`~01yesno.\\")), max_size=200)


@SETTINGS
@given(st.binary(max_size=400) | yaml_ish.map(str.encode))
def test_any_bytes_load_to_problems_only(tmp_path, data):
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    try:
        load([str(path)])
    except RunbookError as exc:
        assert isinstance(exc, DocumentError) and exc.problems
    _documents, problems = load_file(str(path))
    assert all(isinstance(p, Problem) for p in problems)
    for problem in problems:
        assert problem.line >= 1 and problem.column >= 1
        assert problem.format().startswith(f"{path}:")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
step_like = st.fixed_dictionaries({}, optional={
    "id": st.text(max_size=6), "kind": st.sampled_from(["check", "action", "decision", "choose", "degrade",
                                                        "restore", "wait", "verify", "communicate", "x"]),
    "title": json_values, "next": json_values, "options": json_values, "degradation": json_values,
    "run": json_values, "with": json_values, "timeout": st.sampled_from(["5m", "0s", "x", 3]),
})


@SETTINGS
@given(
    steps=st.lists(step_like | st.text(max_size=10), max_size=5),
    extra=st.dictionaries(st.sampled_from(["roles", "degradations", "symptoms", "tracks", "reminders"]),
                          json_values, max_size=3),
)
def test_structurally_random_playbooks_never_raise(steps, extra):
    doc = {"apiVersion": "runbook/v1", "kind": "Playbook", "id": "p", "title": "t", "service": "s",
           "severity": "SEV1", "escalation": "e", "steps": steps, **extra}
    try:
        sources = parse(json.dumps(doc), "random.yaml")
    except SourceError:
        return
    from runbook.catalog.lint import lint

    document, problems = load_document(sources[0])
    assert all(isinstance(p, Problem) for p in problems)
    if document is not None:
        assert all(isinstance(p, Problem) for p in lint([document]))
