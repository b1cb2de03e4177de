"""The incident as an event log: events, the pure fold to state, commands, timers and metrics.

Takes a Clock and a plugin host; never imports textual.
"""

from runbook.engine.clock import SystemClock, VirtualClock
from runbook.engine.engine import CommandError, Engine
from runbook.engine.state import IncidentState

__all__ = ["CommandError", "Engine", "IncidentState", "SystemClock", "VirtualClock"]
