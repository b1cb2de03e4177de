"""`expect:` — whether a command's result passes by what it printed, not only by its exit status.

The value tested is the JSON path's (json:), else the whole output, trimmed; the tests are those of
a decision's when: (equals, matches, above, below). Exit statuses listed under `findings:` report
what was looked for (git fsck exits 1 when it finds something): the step is done and the finding
said, not failed. Pure: the engine records the result as observed and this judgement beside it.
"""

from __future__ import annotations

from typing import NamedTuple

from runbook.catalog import captures
from runbook.catalog.models import Capture, Step


class Judgement(NamedTuple):
    passed: bool
    summary: str  # for the outcome or the failure reason
    answered: bool = True  # the command answered (exit status 0 or a finding): a wait's "not yet" when not passed


def judge(step: Step, ok: bool, exit_code: int | None, output: str, summary: str) -> Judgement:
    """The step's result under its expect: (`ok`, `exit_code`, `output`, `summary`: the run's own)."""
    expect = step.expect
    finding = step.run is not None and exit_code is not None and exit_code in expect.findings
    answered = finding or (ok if step.run is None else exit_code == 0)
    if not answered:
        return Judgement(False, summary, answered=False)
    said = f"finding: exit status {exit_code}" if finding else ""
    tests = expect.tests
    if not any(x is not None for x in (expect.equals, expect.matches, expect.above, expect.below)) \
            and expect.json is None:
        return Judgement(True, said or summary)
    if expect.json is not None:
        got = captures.extract(Capture("expect", json=expect.json), output or "")
        if got.value is None:
            return Judgement(False, f"expected {describe(step)}: {got.why}")
        value = got.value
    else:
        value = (output or "").strip()
    if not captures.holds(tests, value):
        shown = value if len(value) <= 60 else value[:60] + "…"
        return Judgement(False, f"expected {describe(step)}, got {shown!r}")
    return Judgement(True, "; ".join(x for x in (said, f"{describe(step)}: {value[:60]!r}") if x))


def describe(step: Step) -> str:
    """What the step expects, in words: "status.allocations = 0", "output matches Up"."""
    expect = step.expect
    tests = captures.describe_when(expect.tests)
    subject = expect.json or "output"
    return f"{subject} {tests}" if tests else (f"{subject} present" if expect.json else "")


def in_words(step: Step) -> str:
    """What a step's expect: says its output must say, and the exit statuses that are findings
    ("output matches ^Up ", "exit 1 is a finding"); "" without expect:."""
    if step.expect is None:
        return ""
    findings = step.expect.findings
    said = describe(step) or ("exit status 0" if not findings else "")
    finding = f"exit {', '.join(map(str, findings))} is a finding" if findings else ""
    return "; ".join(x for x in (said, finding) if x)
