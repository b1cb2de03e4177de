"""`when:` on steps and options, read against the incident: its parameters, the alert labels it
was opened with, its severity and the symptom that fired (catalog/models.py When).

Pure: each function reads the state (and values set in the same append, not yet folded) and says
why a condition does not hold, in words for the timeline, or None when it holds.
"""

from __future__ import annotations

from runbook.catalog import captures
from runbook.catalog.models import When
from runbook.engine.state import IncidentState


def unmet(state: IncidentState, when: When | None, values: dict | None = None) -> str | None:
    """Why `when` does not hold for the incident now, or None when it holds (or there is none).
    `values`: parameters set in the same append as the question is asked (an ask step's answer,
    a capture), which the state does not hold yet."""
    if when is None or not when.subject:
        return None
    if when.severity and state.severity not in when.severity:
        return f"severity is {state.severity}, not {_either(when.severity)}"
    if when.symptom and state.symptom not in when.symptom:
        return f"the symptom that fired is {state.symptom or 'none'}, not {_either(when.symptom)}"
    if when.param or when.label:
        known = {**state.parameters, **(values or {})} if when.param else state.labels
        name = when.param or when.label
        what = f"parameter {name}" if when.param else f"label {name}"
        value = known.get(name)
        if value is None:
            return f"{what} has no value"
        if not captures.holds(when, str(value)):
            return f"{what} is {value!r}, not {captures.describe_when(when)}"
    return None


def _either(names: tuple[str, ...]) -> str:
    return " or ".join(names)
