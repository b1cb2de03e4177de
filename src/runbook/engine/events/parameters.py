"""Parameters: the values an incident's playbook is filled with, and where each came from."""

from __future__ import annotations

from dataclasses import field

from runbook.engine.events.base import EventRecord, record

CAPTURE = "capture:"  # the source of a value captured from a step's output: capture:STEP
ASK = "ask:"  # the source of a value a responder gave an ask step: ask:STEP


@record("parameters_set")
class ParametersSet(EventRecord):
    values: dict
    sources: dict = field(default_factory=dict)  # name -> param, label, form, default, capture:STEP or ask:STEP

    def fold(self, state, event):
        state.parameters.update(self.values)
        state.parameter_sources.update(self.sources)
        for name in self.values:
            state.stale.pop(name, None)
        for name, source in self.sources.items():
            if source.startswith(CAPTURE) and name in self.values:
                step = state.steps.get(source[len(CAPTURE):])
                if step is not None:
                    step.captures[name] = self.values[name]

    def describe(self):
        return "parameters: " + ", ".join(f"{name}={value}" + (f" ({self.sources[name]})" if name in self.sources
                                                               else "") for name, value in self.values.items())


@record("capture_missed", tone="warning")
class CaptureMissed(EventRecord):
    """A capture of a step's last run that took nothing: no match, not JSON, or a value refused by
    its parameter's type or pattern. A value the parameter had is stale from then on: commands
    and messages refuse it until it is set again (a clean fsck must not leave the old bad ref)."""

    step: str
    name: str
    reason: str
    suggestion: str = ""  # the capture's suggest: what to do when it finds nothing

    def fold(self, state, event):
        step = state.steps.get(self.step)
        if step is not None:
            step.captures.pop(self.name, None)
        if self.name in state.parameters:
            state.stale[self.name] = f"the last run of {self.step} captured nothing ({self.reason})"

    def describe(self):
        return (f"{self.step}: nothing captured for {self.name}: {self.reason}"
                + (f"; suggested: {self.suggestion}" if self.suggestion else ""))

    def to_data(self) -> dict:
        data = EventRecord.to_data(self)
        if not self.suggestion:  # stored as before suggestions existed
            del data["suggestion"]
        return data
