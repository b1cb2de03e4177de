"""Degradations in two phases: started (the intent), each flag changed, then the result."""

from __future__ import annotations

import json
from typing import Any

from runbook.engine.events.base import EventRecord, degradation, record


@record("degradation_started")
class DegradationStarted(EventRecord):
    degradation: str
    op: str  # "apply" or "restore"
    flags: dict  # flag -> {"old": FlagState dict, "new": value, "share"} (restore: + "restore_to", "held_by")
    step: str | None = None
    option: int | None = None  # 0-based option of the decision that chose it
    owner: dict | None = None  # the process carrying it out (engine/owner.py)
    lease_until: str | None = None  # after this, an owner on another host counts as gone
    stage: int | None = None  # a staged degradation: the stage (0-based) being applied
    share: int | None = None  # ...and its share in percent
    said: list | None = None  # what it writes, as the dialogs and the CLI stated it (engine/flips.py)

    def fold(self, state, event):
        deg = degradation(state, self.degradation)
        deg.pending, deg.pending_seq, deg.pending_at, deg.pending_by = self.to_data(), event.seq, event.at, event.actor
        if self.op == "apply" and (self.stage in (None, 0) or not deg.applied_by):
            deg.applied_by = event.actor
        elif self.op == "restore":
            deg.applied_by = ""

    def describe(self):
        if self.stage is not None:
            text = f"moving degradation {self.degradation} to stage {self.stage + 1} ({self.share}%)"
        else:
            text = f"{'applying' if self.op == 'apply' else 'restoring'} degradation {self.degradation}"
        return text + (": " + "; ".join(self.said) if self.said else "")


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
    share: int | None = None  # a staged degradation: the share of contexts given the new value

    def fold(self, state, event):
        deg = degradation(state, self.degradation)
        if self.op == "apply":
            deg.flags[self.flag] = {"old": self.old, "new": self.new, "location": self.location,
                                    "at": event.at.isoformat(), "share": self.share}
        else:
            deg.flags.pop(self.flag, None)

    def describe(self):
        if self.held_by:
            share = f" for {self.share}% of users" if self.share is not None and self.share < 100 else ""
            # "now", not "left": the share may have narrowed to the remaining holder's
            return f"flag {self.flag} now {json.dumps(self.new)}{share}, as {self.held_by} still holds it"
        old = self.old["value"] if isinstance(self.old, dict) and self.old.get("exists") else "(absent)"
        new = "(absent)" if self.op == "restore" and self.new is None else json.dumps(self.new)
        share = f" for {self.share}% of users" if self.share is not None and self.share < 100 else ""
        return f"flag {self.flag}: {json.dumps(old) if old != '(absent)' else old} → {new}{share}"


@record("degradation_applied")
class DegradationApplied(EventRecord):
    degradation: str
    step: str | None = None
    reconciled: bool = False
    stage: int | None = None  # a staged degradation: the stage now applied (0-based) and its share
    share: int | None = None
    of: int | None = None  # how many stages it has

    def fold(self, state, event):
        deg = degradation(state, self.degradation)
        deg.pending, deg.pending_at, deg.applied = None, None, True
        if self.stage is not None:
            deg.stage, deg.share, deg.stage_at, deg.checks, deg.checked_at = self.stage, self.share, event.at, {}, None

    def describe(self):
        if self.stage is not None:
            return f"degradation {self.degradation} at stage {self.stage + 1} of {self.of}: {self.share}% of users"
        return f"degradation {self.degradation} applied"


@record("degradation_restored")
class DegradationRestored(EventRecord):
    degradation: str
    step: str | None = None
    reconciled: bool = False

    def fold(self, state, event):
        deg = degradation(state, self.degradation)
        deg.pending, deg.pending_at, deg.applied = None, None, False
        deg.stage, deg.share, deg.stage_at, deg.held, deg.checks, deg.checked_at = -1, None, None, False, {}, None
        deg.unwinding = False

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


@record("stage_checked", tone="reminder")
class StageChecked(EventRecord):
    """The checks of a staged degradation's current stage ran: each one's outcome (holds,
    not-yet: its condition is not met, broken: it could not be evaluated), value and detail."""

    degradation: str
    stage: int
    results: list  # [{"check", "outcome", "value", "detail"}]

    def fold(self, state, event):
        deg = degradation(state, self.degradation)
        deg.checked_at = event.at
        for r in self.results:
            deg.checks[r["check"]] = (r["outcome"], r.get("value"), r.get("detail", ""), event.at)

    def describe(self):
        shown = "; ".join(f"{r['check']} {r['outcome']}" + (f": {r['detail']}" if r.get("detail") else "")
                          for r in self.results)
        return f"{self.degradation} stage {self.stage + 1} checks: {shown}"


@record("stage_steered", loud="warning", tone="warning")
class StageSteered(EventRecord):
    """A staged degradation was held, let go, advanced or rolled back, by a responder or by its
    checks (actor runbook), and why."""

    degradation: str
    action: str  # hold, resume, advance, rollback, unwind (restore in stages)
    stage: int  # the stage it was at
    to: int | None = None  # advance/rollback: the stage it goes to (-1: restored fully)
    reason: str = ""
    automatic: bool = False

    def fold(self, state, event):
        deg = degradation(state, self.degradation)
        if self.action == "hold":
            deg.held, deg.held_by, deg.held_reason = True, event.actor, self.reason
        elif self.action == "resume":
            deg.held = False
        elif self.action == "unwind":
            deg.unwinding, deg.held = True, False
        elif self.action == "advance":
            deg.unwinding = False  # widening again ends a staged restore

    def describe(self):
        who = "automatically: " if self.automatic else ""
        if self.action == "unwind":
            return (f"{self.degradation} restoring in stages from stage {self.stage + 1}, one stage down after "
                    f"each hold" + (f": {self.reason}" if self.reason else ""))
        if self.action in ("hold", "resume"):
            what = "held at" if self.action == "hold" else "let go from"
            return f"{self.degradation} {what} stage {self.stage + 1}" + (f": {self.reason}" if self.reason else "")
        target = "restore fully" if self.to == -1 else f"stage {self.to + 1}"
        return f"{who}{self.degradation} {self.action} from stage {self.stage + 1} to {target}" + (
            f": {self.reason}" if self.reason else "")


@record("mitigation_awaited")
class MitigationAwaited(EventRecord):
    """A step with mitigates: true applied a staged degradation short of the stage that mitigates:
    the step is done, and the incident is marked mitigated when that stage is reached, not before."""

    step: str
    degradation: str
    stage: int  # 0-based: the stage that mitigates (the rollout's mitigates_at, else its last)
    share: int
    of: int

    def fold(self, state, event):
        degradation(state, self.degradation).awaiting = self.step

    def describe(self):
        return (f"{self.step} is done; the incident counts as mitigated once {self.degradation} reaches "
                f"stage {self.stage + 1} of {self.of} ({self.share}% of users), not before")
