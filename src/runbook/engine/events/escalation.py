"""Pages, reminders and drill injects."""

from __future__ import annotations

from dataclasses import field

from runbook.engine import backoff
from runbook.engine.clock import parse
from runbook.engine.events.base import EventRecord, record
from runbook.engine.state import Delivery


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
        esc.pages[event.seq] = event
        if self.policy is None or self.policy == esc.policy:  # not a page of a ladder no longer in force
            esc.paged += 1
            esc.level, esc.round, esc.last_due = self.level, self.round, parse(self.due_at)
            esc.reached = max(esc.reached, self.level)

    def describe(self):
        names = ", ".join(r["name"] for r in self.recipients)
        return f"escalation level {self.level}" + (f" (round {self.round + 1})" if self.round else "") + f": {names}"


@record("notified")
class Notified(EventRecord):
    """What the notifiers did with a page: every plugin at first, then only the one retried."""

    level: int
    round: int
    results: list = field(default_factory=list)  # NotifyResult dicts
    failures: list = field(default_factory=list)  # HookFailure dicts
    page: int | None = None  # seq of the escalated event it answers (recorded since pager retries)
    attempt: int = 1

    def fold(self, state, event):
        esc = state.escalation
        if self.page is None:  # recorded before pages were named: the page of that level and round
            page = next((e.seq for e in esc.unnotified if e.record.level == self.level
                         and e.record.round == self.round), None)
            esc.unnotified = [e for e in esc.unnotified
                              if not (e.record.level == self.level and e.record.round == self.round)]
        else:
            page = self.page
            esc.unnotified = [e for e in esc.unnotified if e.seq != page]
        if page is not None:
            record_deliveries(state, page, self.results, self.failures, self.attempt, event.at)

    def describe(self):
        sent = [r["channel"] for r in self.results if r["delivered"]]
        others = [delivery_text(r, self.attempt) for r in self.results if not r["delivered"]]
        others += [failure_text(f, self.attempt) for f in self.failures]
        head = f"level {self.level} " + (f"retry {self.attempt - 1}: " if self.attempt > 1 else "")
        if sent:
            return head + "notified via " + ", ".join(sent) + "".join(f"; {text}" for text in others)
        return head + ("; ".join(others) if others else "notified via no channel")


@record("pager_updated")
class PagerUpdated(EventRecord):
    """What the pagers that opened alerts did with an acknowledge or resolve recorded in runbook."""

    action: str  # "acknowledge" or "resolve"
    results: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    attempt: int = 1

    def fold(self, state, event):
        record_deliveries(state, self.action, self.results, self.failures, self.attempt, event.at)

    def describe(self):
        done = {"acknowledge": "acknowledged", "resolve": "resolved"}.get(self.action, self.action)
        lines = []
        for r in self.results:
            if r["delivered"] or r.get("skipped"):
                lines.append(f"{r['channel']}: {r.get('detail') or done}")
            else:
                lines.append(f"{r['channel']} {self.action} FAILED ({r.get('detail') or 'no detail'})"
                             + backoff.after_failure(self.attempt, r.get("retryable", False)))
        lines += [f"{f['plugin']} {self.action} FAILED ({f['message']})"
                  + backoff.after_failure(self.attempt, f.get("kind") == "timeout") for f in self.failures]
        prefix = f"retry {self.attempt - 1}: " if self.attempt > 1 else ""
        return prefix + ("; ".join(lines) or f"{self.action}: no pager answered")


@record("pager_reported", tone="info")
class PagerReported(EventRecord):
    """What a pager said happened to one of the alerts runbook opened there (an acknowledgement,
    a resolve or a reassignment made in the pager's own app), as its signed webhook said it."""

    pager: str  # "pagerduty"
    action: str  # "acknowledged", "resolved" or "reassigned"
    pager_event: str  # the pager's id of this event: a delivery seen twice records nothing
    key: str  # the alert's dedup key (runbook-INC-x-L1)
    agent: str  # who did it, as the pager names them
    person: str | None = None  # the roster person mapped from the pager's user id
    pager_incident: str = ""  # the pager's own incident id
    to: list = field(default_factory=list)  # a reassignment's new assignees, as the pager names them
    occurred_at: str = ""

    def fold(self, state, event):
        state.escalation.reported[self.pager_event] = event.seq

    def describe(self):
        label = {"pagerduty": "PagerDuty"}.get(self.pager, self.pager)
        what = f"reassigned to {', '.join(self.to) or 'nobody'}" if self.action == "reassigned" else self.action
        return f"{label}: {what} by {self.agent} (alert {self.key})"


def record_deliveries(state, target, results, failures, attempt, at) -> None:
    """Each plugin's latest try at `target` (a page's seq, or an update's action), and the alerts
    a page opened at pagers (a result naming a dedup key, delivered or to be retried)."""
    esc = state.escalation
    for r in results:
        plugin = r.get("plugin") or r["channel"]
        retryable = bool(r.get("retryable")) and not r["delivered"]
        esc.deliveries[(target, plugin)] = Delivery(plugin, r["channel"], attempt, at, r["delivered"], retryable,
                                                    r.get("detail", ""))
        if r.get("dedup_key") and isinstance(target, int) and (r["delivered"] or retryable):
            esc.alerts.setdefault(plugin, {})[r["dedup_key"]] = target
    for f in failures:  # a plugin that hung may have been on a slow network: tried again; one that raised is not
        esc.deliveries[(target, f["plugin"])] = Delivery(f["plugin"], f["plugin"], attempt, at, False,
                                                         f.get("kind") == "timeout", f["message"])


def delivery_text(result: dict, attempt: int) -> str:
    if result.get("skipped"):
        return f"{result['channel']}: {result.get('detail', '')}"
    detail = f" ({result['detail']})" if result.get("detail") else ""
    return f"{result['channel']} FAILED{detail}" + backoff.after_failure(attempt, result.get("retryable", False))


def failure_text(failure: dict, attempt: int) -> str:
    return (f"{failure['plugin']} FAILED ({failure['message']})"
            + backoff.after_failure(attempt, failure.get("kind") == "timeout"))


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
