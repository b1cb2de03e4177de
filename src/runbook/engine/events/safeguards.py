"""What runbook does on its own to protect users: drills stopped by their guard, degradations
applied automatically (the latter are ordinary degradation events with the actor auto-degrade)."""

from __future__ import annotations

from runbook.engine.events.base import EventRecord, record


@record("drill_guard_checked", tone="reminder")
class DrillGuardChecked(EventRecord):
    """A drill's guard checks ran: each one's outcome (holds, not-yet: breached, broken)."""

    results: list  # [{"check", "outcome", "value", "detail"}]

    def fold(self, state, event):
        state.guard_checked_at = event.at

    def describe(self):
        return "drill guard: " + "; ".join(f"{r['check']} {r['outcome']}" + (f": {r['detail']}" if r.get("detail")
                                                                            else "") for r in self.results)


@record("drill_stopped", loud="error", tone="error")
class DrillStopped(EventRecord):
    """The drill was stopped to protect real users: a real incident opened on its service, or
    its guard breached. Everything it applied is restored (it is resolved next)."""

    reason: str
    incident: str | None = None  # the real incident that stopped it

    def fold(self, state, event):
        pass

    def describe(self):
        return f"DRILL STOPPED: {self.reason}"
