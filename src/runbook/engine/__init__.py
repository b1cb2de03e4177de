"""The incident as an event log: events, the pure fold to state, commands, timers and metrics.

Takes a Clock and a plugin host; never imports textual.
"""

from importlib import import_module

__all__ = ["CommandError", "Engine", "IncidentState", "SystemClock", "VirtualClock"]

# Each name is imported from its module on first use (PEP 562), so that importing one small
# module of the package (the clock, the view models' helpers) does not load the whole engine:
# `runbook resume` draws its first frame before a worker loads the engine (IncidentScreen.settle).
_WHERE = {"SystemClock": "clock", "VirtualClock": "clock", "CommandError": "engine", "Engine": "engine",
          "IncidentState": "state"}


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"runbook.engine.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
