"""Parameters: the values an incident's playbook is filled with, and where each came from."""

from __future__ import annotations

from dataclasses import field

from runbook.engine.events.base import EventRecord, record


@record("parameters_set")
class ParametersSet(EventRecord):
    values: dict
    sources: dict = field(default_factory=dict)  # name -> param, label, form or default

    def fold(self, state, event):
        state.parameters.update(self.values)
        state.parameter_sources.update(self.sources)

    def describe(self):
        return "parameters: " + ", ".join(f"{name}={value}" + (f" ({self.sources[name]})" if name in self.sources
                                                               else "") for name, value in self.values.items())
