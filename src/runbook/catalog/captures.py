"""Captures: values read from a step's output, and the answers they suggest to a decision.

A step that runs a command may `capture:` named values from its output (stdout and stderr
together, as recorded): `{regex: "pid=(\\d+)"}` takes the one group of the first match
(re.search, `^`/`$` match at line ends), `{json: items.0.metadata.name}` reads the output as
JSON and follows the dotted path (integer parts index lists). The value must then fit the
parameter of that name when one is declared under `parameters:` (its type and pattern), and
always the rules every parameter value follows (one line of text, at most 1024 characters).

A decision's `from:` names a step and one of its captures (or its exit code); the first option
whose `when:` holds for that value is the suggested answer. Pure: the engine records the values
and the TUI and CLI show the suggestion.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from runbook.catalog.models import Capture, Parameter, Playbook, Step, When
from runbook.text import one_line


class Captured(NamedTuple):
    name: str
    value: str | None  # None: nothing captured, `why` says why
    why: str = ""


def groups(regex: str) -> int:
    return re.compile(regex).groups


def extract(capture: Capture, output: str) -> Captured:
    """The value `capture` takes from `output`, or why there is none."""
    if capture.regex is not None:
        try:
            match = re.search(capture.regex, output, re.MULTILINE)
        except re.error as exc:
            return Captured(capture.name, None, f"its regex is not valid ({exc})")
        if match is None:
            return Captured(capture.name, None, f"no match for {capture.regex}")
        if match.re.groups != 1 or match.group(1) is None:
            return Captured(capture.name, None, f"{capture.regex} matched without its one group")
        return Captured(capture.name, match.group(1))
    if capture.jmespath is not None:
        return _jmespath(capture, output)
    return _json(capture, output)


def _jmespath(capture: Capture, output: str) -> Captured:
    import jmespath  # on first use: most captures are regexes
    from jmespath.exceptions import JMESPathError

    try:
        document = json.loads(output)
    except ValueError as exc:
        return Captured(capture.name, None, f"the output is not JSON ({exc.args[0] if exc.args else exc})")
    try:
        value = jmespath.search(capture.jmespath, document)
    except JMESPathError as exc:
        return Captured(capture.name, None, f"{capture.jmespath} cannot be evaluated ({one_line(str(exc))})")
    if isinstance(value, list) and len(value) == 1:
        value = value[0]  # a filter that found one item
    if value is None or value == []:
        return Captured(capture.name, None, f"{capture.jmespath} selects nothing")
    if isinstance(value, list):
        return Captured(capture.name, None, f"{capture.jmespath} selects {len(value)} values, expected one "
                                            "(add | [0] for the first)")
    return _scalar(capture.name, capture.jmespath, value)


def _json(capture: Capture, output: str) -> Captured:
    try:
        value = json.loads(output)
    except ValueError as exc:
        return Captured(capture.name, None, f"the output is not JSON ({exc.args[0] if exc.args else exc})")
    walked = []
    for part in capture.json.split("."):
        if isinstance(value, list) and re.fullmatch(r"-?[0-9]+", part) and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            where = ".".join(walked) or "the top"
            return Captured(capture.name, None, f"{capture.json}: no '{part}' under {where}")
        walked.append(part)
    return _scalar(capture.name, capture.json, value)


def _scalar(name: str, path: str, value) -> Captured:
    if isinstance(value, bool):
        return Captured(name, "true" if value else "false")
    if value is None or isinstance(value, (dict, list)):
        kind = "null" if value is None else ("an object" if isinstance(value, dict) else "a list")
        return Captured(name, None, f"{path} is {kind}, not a text or a number")
    return Captured(name, str(value))


def check(playbook: Playbook, name: str, value: str) -> str | None:
    """Why a captured `value` cannot become parameter `name`, or None when it can."""
    from runbook.catalog.parameters import problem

    return problem(playbook.parameters.get(name) or Parameter(name), value)


def run(playbook: Playbook, step: Step, output: str) -> list[Captured]:
    """Every capture of `step` from `output`, checked: a value that does not fit has value None."""
    out = []
    for capture in step.captures:
        got = extract(capture, output or "")
        if got.value is not None and (why := check(playbook, capture.name, got.value)):
            shown = got.value if len(got.value) <= 60 else got.value[:60] + "…"
            got = Captured(capture.name, None, f"{shown!r} refused: it {why}")
        out.append(got)
    return out


# decisions ----------------------------------------------------------------------------------

def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def holds(when: When, value: str) -> bool:
    """Whether `value` satisfies every condition of `when`."""
    if when.equals is not None:
        if isinstance(when.equals, bool):
            if value != ("true" if when.equals else "false"):
                return False
        elif isinstance(when.equals, (int, float)):
            if _number(value) != when.equals:
                return False
        elif value != when.equals:
            return False
    if when.matches is not None:
        try:
            if re.search(when.matches, value) is None:
                return False
        except re.error:
            return False
    for bound, above in ((when.above, True), (when.below, False)):
        if bound is not None:
            number = _number(value)
            if number is None or (number <= bound if above else number >= bound):
                return False
    return True


def describe_when(when: When) -> str:
    parts = []
    if when.equals is not None:
        parts.append(f"= {when.equals}")
    if when.matches is not None:
        parts.append(f"matches {when.matches}")
    if when.above is not None:
        parts.append(f"> {when.above:g}")
    if when.below is not None:
        parts.append(f"< {when.below:g}")
    return " and ".join(parts)


def describe_condition(when: When) -> str:
    """A `when:` with a subject in words, for `show` and the faces: "severity SEV1 or SEV2",
    "parameter backend matches ^canary"."""
    parts = []
    if when.severity:
        parts.append(f"severity {' or '.join(when.severity)}")
    if when.symptom:
        parts.append(f"symptom {' or '.join(when.symptom)}")
    if when.param or when.label:
        what = f"parameter {when.param}" if when.param else f"label {when.label}"
        tests = describe_when(when)
        parts.append(f"{what} {tests}" if tests else f"{what} is set")
    return " and ".join(parts)
