"""Every file in tests/bad_documents/ is a broken document with the errors it must produce.

Each `# expect: LINE:COL TEXT` comment at the top of a file names one problem: the reported
line and column, and text the message must contain. The file must produce exactly those
problems (several expects may describe the same problem), so a new spurious error fails too.
Files are loaded after _context/, a small valid catalog the bad documents refer to, so a
duplicate id is blamed on the bad file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runbook.catalog import load_catalog

HERE = Path(__file__).parent / "bad_documents"
CASES = sorted(p for p in HERE.glob("*.y*ml"))
EXPECT = re.compile(r"^# expect(?P<warning>-warning)?: (?P<line>\d+):(?P<col>\d+) (?P<text>.+)$")


def expectations(path: Path):
    out = []
    for raw in path.read_bytes().split(b"\n"):
        line = raw.decode("utf-8", "replace")
        if m := EXPECT.match(line):
            out.append((int(m["line"]), int(m["col"]), m["text"].strip(), "warning" if m["warning"] else "error"))
    return out


def test_corpus_is_large_enough():
    assert len(CASES) >= 40


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_document_reports_line_and_message(path: Path):
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect: LINE:COL TEXT' comment"
    catalog = load_catalog([str(HERE / "_context"), str(path)])
    context_problems = [p for p in catalog.problems if "_context" in p.file]
    assert context_problems == []
    found = [p for p in catalog.problems if p.file == str(path)]
    rendered = "\n".join(p.format() for p in found)
    for line, col, text, severity in expected:
        hits = [p for p in found if (p.line, p.column) == (line, col) and text in p.format()
                and p.severity == severity]
        assert hits, f"expected {severity} at {line}:{col} containing {text!r}; got:\n{rendered}"
    explained = {(p.line, p.column, p.message) for p in found
                 for line, col, text, severity in expected
                 if (p.line, p.column) == (line, col) and text in p.format() and p.severity == severity}
    unexplained = [p.format() for p in found if (p.line, p.column, p.message) not in explained]
    assert unexplained == [], "problems without an expect comment:\n" + "\n".join(unexplained)
    for problem in found:
        assert problem.format().startswith(f"{path}:{problem.line}:{problem.column}: ")
