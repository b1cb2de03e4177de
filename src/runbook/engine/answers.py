"""Captures recorded, and the answer a decision's `from:` suggests (catalog/captures.py).

After a step's command ran, `recorded` turns its captures into events: one `parameters_set`
(source `capture:STEP`) with every value taken, and one `capture_missed` per capture that took
nothing, saying why. `suggestion` derives, from the state alone, the option a decision suggests:
nothing is recorded until the responder chooses, and `decision_made` then says whether the
choice followed the suggestion or overrode it.
"""

from __future__ import annotations

from typing import NamedTuple

from runbook.catalog import captures
from runbook.catalog.models import Step
from runbook.engine.events import CAPTURE, CaptureMissed, EventRecord, ParametersSet
from runbook.engine.state import IncidentState


def recorded(state: IncidentState, step: Step, output: str) -> list[EventRecord]:
    if not step.captures:
        return []
    taken = captures.run(state.playbook, step, output)
    values = {c.name: c.value for c in taken if c.value is not None}
    out: list[EventRecord] = []
    if values:
        out.append(ParametersSet(values, {name: CAPTURE + step.id for name in values}))
    suggestions = {c.name: c.suggest for c in step.captures}
    out += [CaptureMissed(step.id, c.name, c.why, suggestions.get(c.name, "")) for c in taken if c.value is None]
    return out


def values(records: list[EventRecord]) -> dict:
    """The parameters these records (not yet appended) set: what a next step's when: reads."""
    out: dict = {}
    for record in records:
        if isinstance(record, ParametersSet):
            out.update(record.values)
    return out


class Suggestion(NamedTuple):
    index: int  # 0-based option
    label: str
    source: str  # what it was read from: "check-disk: used=93", "recheck: exit code 0"
    value: str


def source_value(state: IncidentState, step: Step) -> tuple[str, str] | None:
    """The value a decision's from: reads now, and how to say where it came from; None when
    there is none yet (the step has not run, or its last run captured nothing)."""
    source = step.answer_from
    if source is None or source.step not in state.steps:
        return None
    run = state.steps[source.step]
    if source.exit_code:
        if run.exit_code is None:
            return None
        return str(run.exit_code), f"{source.step}: exit code {run.exit_code}"
    value = run.captures.get(source.capture)
    if value is None:
        return None
    return value, f"{source.step}: {source.capture}={value}"


def suggestion(state: IncidentState, step: Step) -> Suggestion | None:
    found = source_value(state, step)
    if found is None:
        return None
    value, where = found
    for index, option in enumerate(step.options):
        if option.when is not None and not option.when.subject and captures.holds(option.when, value):
            return Suggestion(index, option.label, where, value)
    return None


def why_none(state: IncidentState, step: Step) -> str:
    """Why `step` has no suggestion, in words for an error."""
    source = step.answer_from
    if source is None:
        return f"step '{step.id}' does not suggest an answer (it has no from:)"
    found = source_value(state, step)
    if found is None:
        what = "an exit code" if source.exit_code else f"a value for {source.capture}"
        return f"step '{step.id}' has no suggestion: step '{source.step}' has not captured {what} yet"
    return f"step '{step.id}' has no suggestion: no option's when: holds for {found[1]}"
