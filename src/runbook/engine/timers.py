"""Timers are derived from the log, never kept in memory: restart and they are exactly where they were.

Every function here is pure: given the incident state (and a moment), it says what is due
when. The engine's `tick` fires what is due, earliest first; the TUI shows the same due times
as countdowns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from runbook.catalog.models import EscalationLevel, EscalationPolicy
from runbook.catalog.oncall import find_person, find_rotation, on_call
from runbook.engine import alerts, backoff, cadence, safeguards, stages, waits
from runbook.engine.state import ACTIVE, FAILED, IncidentState
from runbook.pluginapi import Recipient

TARGETS = ("acknowledge", "mitigate", "resolve")
DEFAULT_POLL = waits.DEFAULT_POLL


@dataclass(frozen=True, order=True)
class Timer:
    at: datetime
    order: int  # ties fire in a stable order: escalations, deadlines, rises, waits and retries, reminders and posts
    kind: str = field(compare=False)
    data: dict = field(compare=False, default_factory=dict)


def _delta(seconds) -> timedelta:
    return timedelta(seconds=seconds)


TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")


def paging_label(state: IncidentState) -> bool | None:
    """What the playbook's page_label: says, from the labels recorded at open: True pages, False
    does not, None when it has no such label (or a value that is neither): the severity decides."""
    name = state.playbook.page_label
    value = str(state.labels.get(name, "")).strip().lower() if name else ""
    return True if value in TRUE else False if value in FALSE else None


def pages(state: IncidentState) -> bool:
    by_label = paging_label(state)
    if by_label is not None:
        return by_label
    level = state.snapshot.level(state.severity)
    return level is None or level.pages


def ladder(state: IncidentState, policy_id: str | None = None) -> EscalationPolicy | None:
    """The escalation policy named `policy_id`, else the one in force: the current severity's."""
    return state.snapshot.escalations.get(policy_id or state.escalation.policy)


def next_escalation(state: IncidentState) -> Timer | None:
    """The next escalation level to notify, if nobody has acknowledged and the ladder is not exhausted.

    The ladder is the current severity's; one that came into force by a severity change starts
    at level 1 from the change."""
    policy = ladder(state)
    if policy is None or not policy.levels or state.acknowledged_at or state.resolved or not pages(state):
        return None
    esc = state.escalation
    if esc.by_pager and esc.paged:  # RUNBOOK_ESCALATION=pager: the pager's own policy escalates
        return None
    if esc.paged == 0:
        start = max(state.paging_since or state.opened_at, esc.since or state.opened_at)
        return Timer(start, 0, "escalation", {"level": 1, "round": 0, "count": esc.count})
    index, rnd = esc.level - 1, esc.round
    after = policy.levels[index].escalate_after
    index += 1
    if index >= len(policy.levels):
        index, rnd = 0, rnd + 1
        if rnd > policy.repeat:
            return None
    # count: how many pages the log held when this timer was read (pages.escalate fires it only then)
    return Timer(esc.last_due + _delta(after), 0, "escalation", {"level": index + 1, "round": rnd, "count": esc.count})


def recipients(state: IncidentState, level: EscalationLevel, at: datetime) -> list[Recipient]:
    """Who a level reaches at `at`: rotations resolved against the roster, people as named."""
    out = []
    for target in level.notify:
        if target.kind == "rotation":
            found = find_rotation(state.snapshot.rosters, target.id)
            try:
                person = on_call(found[0], found[1], at) if found else None
            except ValueError:
                person = None
            via = f"rotation {target.id}"
        else:
            person, via = find_person(state.snapshot.rosters, target.id), "person"
        if person:
            out.append(Recipient(person.id, person.name, person.email, person.phone, person.chat, person.pager, via))
        else:
            out.append(Recipient(target.id, f"nobody on {target.id}", via=via))
    return out


def deadlines(state: IncidentState) -> dict[str, tuple[datetime, datetime | None]]:
    """target -> (deadline, when it was met or None): a rehearsal's own targets, else the current
    severity's response targets."""
    level = state.snapshot.level(state.severity)
    drill = state.snapshot.drill
    targets = drill.targets if drill is not None and drill.targets else (level.targets if level else None)
    if not targets or state.opened_at is None:
        return {}
    met = {"acknowledge": state.acknowledged_at, "mitigate": state.mitigated_at or state.resolved_at,
           "resolve": state.resolved_at}
    return {name: (state.opened_at + _delta(targets[name]), met[name]) for name in TARGETS if name in targets}


def _reminder_window(state: IncidentState, reminder):
    # plain comparisons, not lookup tables: this runs for every reminder after every event
    start = reminder.start
    begins = (state.opened_at if start == "opened" else state.acknowledged_at if start == "acknowledged"
              else state.mitigated_at if start == "mitigated" else None)
    if start == "public-update":  # the cadence of public updates: counted from the last one posted
        begins = next((e.at for e in reversed(state.messages) if e.record.audience == "customers"),
                      state.opened_at)
    until = reminder.until
    stops = (state.acknowledged_at if until == "acknowledged" else
             (state.mitigated_at or state.resolved_at) if until == "mitigated" else
             state.resolved_at if until == "resolved" else None)
    return begins, stops or state.resolved_at


def pending(state: IncidentState) -> list[Timer]:
    """Every timer that will fire unless something happens first, earliest first.

    A pure function of the log, so it is computed once per event appended (timers do not
    depend on the current time; `due` compares them with it).
    """
    cached = state.derived.get("pending")
    if cached is not None and cached[0] == state.last_seq:
        return cached[1]
    timers = _pending(state)
    state.derived["pending"] = (state.last_seq, timers)
    return timers


def _pending(state: IncidentState) -> list[Timer]:
    if state.opened_at is None:
        return []
    timers = []
    esc = next_escalation(state)
    if esc:
        timers.append(esc)
    timers += pager_retries(state)
    if not state.resolved:
        for name, (deadline, met) in deadlines(state).items():
            if met is None and name not in state.breaches:
                timers.append(Timer(deadline, 1, "breach", {"target": name, "deadline": deadline}))
        symptom = next((s for s in state.playbook.symptoms if s.id == state.symptom), None)
        if symptom and state.mitigated_at is None:
            for index, (after, to) in enumerate(symptom.severity_rises):
                if index not in state.rises and state.snapshot.rank(to) < state.snapshot.rank(state.severity):
                    at = alerts.rise_due(state, after)  # counts only the time the alert fired
                    if at is not None:
                        timers.append(Timer(at, 2, "rise", {"rise": index, "to": to, "after": after}))
        for step_id in state.current.values():
            if step_id is None:
                continue
            step, run = state.playbook.step(step_id), state.steps[step_id]
            if run.status == FAILED and run.retry_at is not None and step.id not in state.actions_pending:
                timers.append(Timer(run.retry_at, 3, "retry", {"step": step.id, "attempt": run.attempt}))
                continue
            if step.kind != "wait" or run.status != ACTIVE or step.id in state.actions_pending:
                continue
            if step.timed:
                if run.due_at is None:
                    timers.append(Timer(run.started_at + _delta(step.wait_time), 3, "wait_due",
                                        {"step": step.id, "attempt": run.attempt}))
                continue
            if step.wait_alert:  # fires when the alert's source says so (engine.alert_state); only its timeout here
                if step.timeout:
                    timers.append(Timer(run.started_at + _delta(step.timeout), 3, "wait_timeout", {"step": step.id}))
                continue
            if not step.automated:
                continue
            next_poll = run.started_at + _delta(waits.offset(step, run.polls + 1))
            ends = run.started_at + _delta(step.timeout or 0)
            if next_poll < ends:
                timers.append(Timer(next_poll, 3, "poll", {"step": step.id, "poll": run.polls + 1,
                                                           "start": run.started_at, "ends": ends}))
            else:
                timers.append(Timer(ends, 3, "wait_timeout", {"step": step.id}))
    for at, kind, data in stages.due_timers(state):  # staged degradations: checks, the next stage
        timers.append(Timer(at, 2, kind, data))
    guard = safeguards.guard_timer(state)  # a drill's guard checks
    if guard is not None:
        timers.append(Timer(guard[0], 1, guard[1], guard[2]))
    drill = state.snapshot.drill
    if drill is not None and not state.resolved and state.injects < len(drill.injects):
        inject = drill.injects[state.injects]
        timers.append(Timer(state.opened_at + _delta(inject.at), 1, "inject",
                            {"n": state.injects + 1, "message": inject.message, "signal": inject.signal}))
    for reminder in state.playbook.reminders:
        start, stop = _reminder_window(state, reminder)
        if start is None or state.resolved:
            continue
        n = state.reminders.get(reminder.id, 0) + 1
        at = start + _delta(reminder.every * n)
        if stop is None or at < stop:
            timers.append(Timer(at, 4, "reminder", {"reminder": reminder.id, "n": n, "message": reminder.message,
                                                    "role": reminder.role, "start": start, "every": reminder.every}))
    for at, data in cadence.timers(state):  # communicate steps posting again (repeat:)
        timers.append(Timer(at, 4, "repeat_post", data))
    return sorted(timers)


def page_moot(state: IncidentState, target) -> bool:
    """Whether trying `target` again is pointless: a page once the incident is resolved or was
    acknowledged after it was recorded; an acknowledge once resolved."""
    updates = state.escalation.updates
    if isinstance(target, int):
        return "resolve" in updates or updates.get("acknowledge", 0) > target
    return target == "acknowledge" and "resolve" in updates


def update_owed(state: IncidentState, action: str) -> list[str]:
    """The plugins to tell about `action` that have no outcome for it yet: those holding alerts
    paged before it was recorded."""
    esc = state.escalation
    seq = esc.updates.get(action)
    if seq is None or page_moot(state, action):
        return []
    return [plugin for plugin, keys in esc.alerts.items()
            if (action, plugin) not in esc.deliveries and any(page < seq for page in keys.values())]


def pager_retries(state: IncidentState) -> list[Timer]:
    """Pages and pager updates to try again: after a passing failure, with backoff; and those a
    crash left without an outcome, after a grace (another process may still be sending them)."""
    esc = state.escalation
    out = []
    for (target, plugin), delivery in esc.deliveries.items():
        if delivery.delivered or not delivery.retryable or delivery.attempts >= backoff.ATTEMPTS \
                or page_moot(state, target):
            continue
        out.append(Timer(delivery.last_at + _delta(backoff.delay(delivery.attempts)), 0, "page_retry",
                         {"target": target, "plugins": [plugin], "attempt": delivery.attempts + 1}))
    for event in esc.unnotified:
        if not page_moot(state, event.seq):
            out.append(Timer(event.at + backoff.STALE_INTENT, 0, "page_retry",
                             {"target": event.seq, "plugins": None, "attempt": 1}))
    for action in ("acknowledge", "resolve"):
        owed = update_owed(state, action)
        if owed:
            at = state.acknowledged_at if action == "acknowledge" else state.resolved_at
            out.append(Timer(at + backoff.STALE_INTENT, 0, "page_retry",
                             {"target": action, "plugins": owed, "attempt": 1}))
    return out


def due(state: IncidentState, now: datetime) -> list[Timer]:
    return [t for t in pending(state) if t.at <= now]
