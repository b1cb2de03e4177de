"""Pages, reminders and drill injects."""

from __future__ import annotations

from dataclasses import field

from runbook.engine.clock import parse
from runbook.engine.events.base import EventRecord, record


@record("escalated", loud="warning", tone="warning")
class Escalated(EventRecord):
    level: int  # 1-based
    round: int
    due_at: str
    reason: str  # "timer" or "manual"
    recipients: list  # [{"id", "name", "via"}]
    policy: str | None = None  # the ladder paged, when the playbook has one per severity

    def fold(self, state, event):
        esc = state.escalation
        esc.count += 1
        esc.highest = max(esc.highest, self.level)
        esc.unnotified.append(event)
        if self.policy is None or self.policy == esc.policy:  # not a page of a ladder no longer in force
            esc.paged += 1
            esc.level, esc.round, esc.last_due = self.level, self.round, parse(self.due_at)
            esc.reached = max(esc.reached, self.level)

    def describe(self):
        names = ", ".join(r["name"] for r in self.recipients)
        return f"escalation level {self.level}" + (f" (round {self.round + 1})" if self.round else "") + f": {names}"


@record("notified")
class Notified(EventRecord):
    level: int
    round: int
    results: list = field(default_factory=list)
    failures: list = field(default_factory=list)

    def fold(self, state, event):
        state.escalation.unnotified = [e for e in state.escalation.unnotified
                                       if not (e.record.level == self.level and e.record.round == self.round)]

    def describe(self):
        sent = ", ".join(f"{r['channel']}{'' if r['delivered'] else ' FAILED'}" for r in self.results) or "no channel"
        return f"level {self.level} notified via {sent}"


@record("reminder_fired", loud="warning", tone="reminder")
class ReminderFired(EventRecord):
    reminder: str
    n: int
    message: str
    role: str | None = None
    missed: int = 0

    def fold(self, state, event):
        state.reminders[self.reminder] = self.n

    def describe(self):
        return f"reminder: {self.message}" + (f" ({self.missed} missed)" if self.missed else "")


@record("drill_inject", loud="warning")
class DrillInject(EventRecord):
    n: int
    message: str = ""
    signal: dict | None = None
    due_at: str | None = None

    def fold(self, state, event):
        state.injects = max(state.injects, self.n)

    def describe(self):
        return f"inject: {self.message}"
