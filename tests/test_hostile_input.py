"""Hostile files get one clear problem each, in bounded memory, and never an exception."""

from __future__ import annotations

import tracemalloc

import pytest

from runbook.catalog import yamlsource
from runbook.catalog.loader import load_file


def load(tmp_path, content, name="doc.yaml"):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return load_file(str(path))


def only_problem(result):
    docs, problems = result
    assert docs == []
    assert len(problems) == 1, [p.format() for p in problems]
    return problems[0]


def billion_laughs(levels=10):
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_expansion_bomb_is_refused_in_bounded_memory(tmp_path):
    tracemalloc.start()
    try:
        problem = only_problem(load(tmp_path, billion_laughs()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "alias expansion bomb" in problem.message
    assert problem.code == "limit"
    assert peak < 50 * 1024 * 1024


def test_recursive_alias_is_refused(tmp_path):
    problem = only_problem(load(tmp_path, "a: &loop [1, *loop]\n"))
    assert (problem.line, problem.column) == (1, 14)
    assert "alias *loop" in problem.message


@pytest.mark.parametrize("text", [
    "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 60)) + "  " * 60 + "x: 1\n",
    "- " * 5000 + "x\n",
])
def test_deep_block_nesting_is_refused(tmp_path, text):
    problem = only_problem(load(tmp_path, text))
    assert f"deeper than {yamlsource.MAX_DEPTH} levels" in problem.message


def test_deep_flow_nesting_is_refused(tmp_path):
    problem = only_problem(load(tmp_path, "[" * 200_000 + "]" * 200_000))
    assert problem.message.startswith(("invalid YAML", "nesting is deeper"))


def test_huge_file_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as handle:
        handle.truncate(yamlsource.MAX_FILE_BYTES + 1)
    problem = only_problem(load_file(str(path)))
    assert "larger than" in problem.message and "refused" in problem.message


def test_binary_file_is_named_as_binary(tmp_path):
    problem = only_problem(load(tmp_path, b"apiVersion: runbook/v1\nkind: \x00\x01\x02"))
    assert (problem.line, problem.column) == (2, 7)
    assert "binary" in problem.message


def test_non_utf8_byte_is_located(tmp_path):
    problem = only_problem(load(tmp_path, b"apiVersion: runbook/v1\ntitle: caf\xe9\n"))
    assert (problem.line, problem.column) == (2, 11)
    assert "0xe9 is not valid UTF-8" in problem.message


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    _docs, problems = load(tmp_path, "\ufeffapiVersion: runbook/v1\nkind: Nope\n")
    assert [p.message for p in problems] == [
        "the text 'Nope' is not a document kind, expected one of: Playbook, SeverityPolicy, "
        "EscalationPolicy, Roster, Drill, Procedure, Shared, StatusPage"]


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "---\n...\n"])
def test_empty_file_says_what_is_expected(tmp_path, content):
    problem = only_problem(load(tmp_path, content))
    assert problem.message.startswith("file holds no document, expected a mapping with apiVersion")


@pytest.mark.parametrize("content, got", [
    ("- apiVersion: runbook/v1\n- kind: Playbook\n", "got a list"),
    ("just some words\n", "got the text 'just some words'"),
    ("42\n", "got the number 42"),
])
def test_top_level_must_be_a_mapping(tmp_path, content, got):
    problem = only_problem(load(tmp_path, content))
    assert problem.message == f"expected a mapping with apiVersion and kind, {got}"
    assert (problem.line, problem.column) == (1, 1)


def test_unsupported_tags_are_refused(tmp_path):
    problem = only_problem(load(tmp_path, "a: !!python/object:os.system echo\n"))
    assert problem.message == "tag !!python/object:os.system is not supported; use plain YAML values"
    assert (problem.line, problem.column) == (1, 4)


def test_unreadable_path_is_a_problem_not_an_exception(tmp_path):
    problem = only_problem(load_file(str(tmp_path / "missing.yaml")))
    assert problem.message.startswith("cannot read file")


@pytest.mark.parametrize("bom, name", [(b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"),
                                       (b"\xff\xfe\x00\x00", "UTF-32")])
def test_wide_encodings_are_named(tmp_path, bom, name):
    codec = {"UTF-16": "utf-16-le" if bom == b"\xff\xfe" else "utf-16-be", "UTF-32": "utf-32-le"}[name]
    problem = only_problem(load(tmp_path, bom + "apiVersion: runbook/v1\n".encode(codec)))
    assert problem.message == f"file is encoded as {name}, expected UTF-8; save it as UTF-8"
    assert (problem.line, problem.column) == (1, 1)


def test_bad_byte_column_counts_characters(tmp_path):
    problem = only_problem(load(tmp_path, "title: café ".encode() + b"\xff\n"))
    assert (problem.line, problem.column) == (1, 13)


# --- hostile alert deliveries (runbook serve): each malformed alert one clear reason, never an exception


def delivery(alert_json: bytes) -> bytes:
    return b'{"version": "4", "receiver": "runbook", "alerts": [' + alert_json + b', ' + GOOD + b"]}"


GOOD = (b'{"status": "firing", "labels": {"alertname": "DiskFull"}, "startsAt": "2026-11-30T10:00:00Z", '
        b'"fingerprint": "600d"}')
FIRING = b'{"status": "firing", "startsAt": "2026-11-30T10:00:00Z", "labels": '


@pytest.mark.parametrize("alert_json, reason", [
    (FIRING + b'{"alertname": ' + b"[" * 900 + b"]" * 900 + b"}}", "labels.alertname: expected a string, got a list"),
    (FIRING + b'{"alertname": NaN}}', "labels.alertname: expected a string, got a number"),
    (FIRING + b'{"alertname": -' + b"9" * 100_000 + b"}}", "got a number of 100,000 digits"),
    (FIRING + b'{"alertname": 1' + b"0" * 100_000 + b".5e99999}}", "got a number of 100,007 digits"),
    (FIRING + b'{"\\udc80": "x"}}', '"\\udc80" is not a label name'),
    (FIRING + b'{"alertname": "\\ud800\\ud800"}}', "holds a lone surrogate (\\ud800) at character 1"),
    (FIRING + b'{"alertname": "x"}, "annotations": {"\\udc80": "x"}}', '"\\udc80" is not an annotation name'),
    (FIRING + b'{"alertname": "x"}, "fingerprint": "\\udc80"}', 'fingerprint: expected a hexadecimal hash'),
    (FIRING + b"null}", "labels: expected an object of strings, got null"),
    (b"[]", "alerts[0]: expected an object, got a list"),
])
def test_a_hostile_alert_is_rejected_with_one_reason_and_the_next_is_taken(alert_json, reason):
    from runbook.serve.alertmanager import parse

    tracemalloc.start()
    try:
        (bad, good), _ = parse(delivery(alert_json))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert bad.rejected.startswith("alerts[0]") and reason in bad.rejected, bad.rejected
    assert len(bad.rejected) < 300 and bad.rejected.isascii()  # one line, safe to log
    assert good.rejected is None and good.fingerprint == "600d"
    assert peak < 20 * 1024 * 1024
