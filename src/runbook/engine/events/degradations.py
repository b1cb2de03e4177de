"""Degradations in two phases: started (the intent), each flag changed, then the result."""

from __future__ import annotations

import json
from typing import Any

from runbook.engine.events.base import EventRecord, degradation, record


@record("degradation_started")
class DegradationStarted(EventRecord):
    degradation: str
    op: str  # "apply" or "restore"
    flags: dict  # flag -> {"old": FlagState dict, "new": value} (restore: + "restore_to")
    step: str | None = None
    option: int | None = None  # 0-based option of the decision that chose it
    owner: dict | None = None  # the process carrying it out (engine/owner.py)
    lease_until: str | None = None  # after this, an owner on another host counts as gone

    def fold(self, state, event):
        deg = degradation(state, self.degradation)
        deg.pending, deg.pending_seq, deg.pending_at, deg.pending_by = self.to_data(), event.seq, event.at, event.actor

    def describe(self):
        return f"{'applying' if self.op == 'apply' else 'restoring'} degradation {self.degradation}"


@record("flag_changed", tone="flag")
class FlagChanged(EventRecord):
    degradation: str
    flag: str
    op: str
    old: dict | None
    new: Any
    location: str = ""
    reconciled: bool = False  # settled after a crash by reading the flag backend
    held_by: str | None = None  # a restore that left the flag as it is: another degradation still holds it

    def fold(self, state, event):
        deg = degradation(state, self.degradation)
        if self.op == "apply":
            deg.flags[self.flag] = {"old": self.old, "new": self.new, "location": self.location,
                                    "at": event.at.isoformat()}
        else:
            deg.flags.pop(self.flag, None)

    def describe(self):
        if self.held_by:
            return f"flag {self.flag} left at {json.dumps(self.new)}: {self.held_by} still holds it"
        old = self.old["value"] if isinstance(self.old, dict) and self.old.get("exists") else "(absent)"
        new = "(absent)" if self.op == "restore" and self.new is None else json.dumps(self.new)
        return f"flag {self.flag}: {json.dumps(old) if old != '(absent)' else old} → {new}"


@record("degradation_applied")
class DegradationApplied(EventRecord):
    degradation: str
    step: str | None = None
    reconciled: bool = False

    def fold(self, state, event):
        deg = degradation(state, self.degradation)
        deg.pending, deg.pending_at, deg.applied = None, None, True

    def describe(self):
        return f"degradation {self.degradation} applied"


@record("degradation_restored")
class DegradationRestored(EventRecord):
    degradation: str
    step: str | None = None
    reconciled: bool = False

    def fold(self, state, event):
        deg = degradation(state, self.degradation)
        deg.pending, deg.pending_at, deg.applied = None, None, False

    def describe(self):
        return f"degradation {self.degradation} restored"


@record("degradation_failed", loud="error", tone="error")
class DegradationFailed(EventRecord):
    degradation: str
    op: str
    reason: str
    reconciled: bool = False

    def fold(self, state, event):
        deg = degradation(state, self.degradation)
        deg.pending, deg.pending_at, deg.applied = None, None, bool(deg.flags)

    def describe(self):
        return f"degradation {self.degradation} FAILED: {self.reason}"
